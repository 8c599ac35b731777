"""Return visits (回访) with outcome and satisfaction."""

from __future__ import annotations

from datetime import datetime

from pydantic import field_validator, model_validator
from sqlmodel import Field, SQLModel
from sqlmodel._compat import SQLModelConfig

from models import pii
from models.enums import FollowUpKind, FollowUpOutcome
from models.mediation import clean_text
from models.types import UTCDateTime, enum_type


class FollowUp(SQLModel, table=True):
    __tablename__ = "follow_up"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    kind: FollowUpKind = Field(sa_type=enum_type(FollowUpKind))
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    term_id: int | None = Field(default=None, foreign_key="agreement_term.id")
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: FollowUpOutcome | None = Field(default=None, sa_type=enum_type(FollowUpOutcome))
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    unit_at_fault: bool = False
    notes: str | None = Field(default=None, max_length=2000)
    recorded_by_id: int | None = Field(default=None, foreign_key="staff.id")
    # Who is to make the visit (named when it is scheduled; models.follow_ups.pick_visitor).
    visitor_id: int | None = Field(default=None, foreign_key="staff.id")


class FollowUpRecord(SQLModel):
    """What the worker reports after a return visit. A rating of 1-5 (5 = very
    satisfied); none when the resident could not be reached."""

    model_config = SQLModelConfig(extra="forbid")

    outcome: FollowUpOutcome
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    unit_at_fault: bool = False
    notes: str | None = Field(default=None, max_length=2000)
    follow_up_id: int | None = None

    @field_validator("notes")
    @classmethod
    def _notes(cls, value: str | None) -> str | None:
        return None if value is None else (clean_text(value, required=False) or None)

    @model_validator(mode="after")
    def _unreachable_has_no_rating(self) -> FollowUpRecord:
        if self.outcome == FollowUpOutcome.UNREACHABLE and self.satisfaction is not None:
            raise ValueError(
                "未联系上当事人时不能填写满意度 / no satisfaction rating when the "
                "resident was unreachable"
            )
        return self


class FollowUpPublic(SQLModel):
    id: int
    case_id: int
    kind: FollowUpKind
    kind_zh: str
    due_at: datetime
    term_id: int | None
    done_at: datetime | None
    outcome: FollowUpOutcome | None
    satisfaction: int | None
    unit_at_fault: bool
    notes: str | None
    recorded_by_id: int | None

    @classmethod
    def of(cls, row: FollowUp, *, reveal: bool = False) -> FollowUpPublic:
        assert row.id is not None
        notes = row.notes if reveal or row.notes is None else pii.scrub_text(row.notes)
        return cls(
            id=row.id,
            case_id=row.case_id,
            kind=row.kind,
            kind_zh=row.kind.zh,
            due_at=row.due_at,
            term_id=row.term_id,
            done_at=row.done_at,
            outcome=row.outcome,
            satisfaction=row.satisfaction,
            unit_at_fault=row.unit_at_fault,
            notes=notes,
            recorded_by_id=row.recorded_by_id,
        )
