"""Extensions of a case's handling limit (延期): asked for by the handler before the
deadline, granted or refused by a supervisor."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.enums import ExtensionState
from models.types import UTCDateTime, enum_type


class Extension(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    requested_by_id: int | None = Field(default=None, foreign_key="staff.id")
    requested_at: datetime = Field(sa_type=UTCDateTime)
    old_due_at: datetime = Field(sa_type=UTCDateTime)
    until: datetime = Field(sa_type=UTCDateTime)
    reason: str = Field(max_length=500)
    state: ExtensionState = Field(sa_type=enum_type(ExtensionState), index=True)
    decided_by_id: int | None = Field(default=None, foreign_key="staff.id")
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decision_note: str | None = Field(default=None, max_length=500)
