"""Tables of machine triage: what the model suggested for a case, the corrections people
made, the model versions, and the early-warning assessment tasks (研判任务)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import LargeBinary
from sqlmodel import JSON, Column, Field, SQLModel

from models.enums import Category, Priority
from models.types import UTCDateTime, enum_type


class TriageSuggestion(SQLModel, table=True):
    """The machine's reading of a case at triage, kept beside the person's choice."""

    __tablename__ = "triage_suggestion"

    case_id: int = Field(foreign_key="cases.id", primary_key=True)
    category: Category = Field(sa_type=enum_type(Category))
    priority: Priority = Field(sa_type=enum_type(Priority))
    confidence: float
    # [{"category": ..., "probability": ...}] best first, three at most
    top: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    risk: str = Field(default="none", max_length=16)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    model_version: str = Field(default="shipped", max_length=64)
    # A person's choice that differs from the suggestion (a correction signal).
    disagrees: bool = False
    created_at: datetime = Field(sa_type=UTCDateTime)


class TriageCorrection(SQLModel, table=True):
    """A person set a case's category or priority other than the machine's."""

    __tablename__ = "triage_correction"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    field: str = Field(max_length=16)  # "category" | "priority"
    machine_value: str = Field(max_length=32)
    chosen_value: str = Field(max_length=32)
    # "reclassified" (changed on a case), "assessment" (研判 confirmed), "intake" (the
    # worker's choice at intake differed from the model's)
    source: str = Field(max_length=16)
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


class TriageModelVersion(SQLModel, table=True):
    """A trained model: its metrics, whether it was promoted, and the model itself (gzip
    JSON, see models.classifier)."""

    __tablename__ = "triage_model_version"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    active: bool = Field(default=False, index=True)
    promoted: bool = False
    outcome: str = Field(max_length=200)  # why it was (not) promoted
    accuracy: float  # on the validation split plus the corrections
    emergency_recall: float
    false_emergency_rate: float
    baseline_accuracy: float  # the model it was compared with, on the same examples
    baseline_emergency_recall: float
    corrections: int  # corrections it was trained with
    last_correction_id: int = 0
    confusion: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    blob: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime)
    promoted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RiskWarning(SQLModel, table=True):
    """An early warning (预警) and the assessment task (研判任务) it opens for the street,
    with its responsible leader (包案领导) and deadline."""

    __tablename__ = "risk_warning"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    street_unit_id: int = Field(foreign_key="unit.id", index=True)
    level: str = Field(max_length=16)  # red | orange | yellow
    score: int
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    leader_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    due_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="open", max_length=16)  # open | closed
    created_at: datetime = Field(sa_type=UTCDateTime)
    notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # resolved (化解稳控) | monitoring (持续关注) | escalated (提级督办)
    conclusion: str | None = Field(default=None, max_length=16)
    closed_by_id: int | None = Field(default=None, foreign_key="staff.id")
