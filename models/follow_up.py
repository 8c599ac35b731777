"""Return visits (回访) with outcome and satisfaction."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.enums import FollowUpKind, FollowUpOutcome
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
