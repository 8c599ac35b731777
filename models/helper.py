"""Helpers on a case (协办人员) and their own tasks.

Party-building instructors, volunteers, in-service Party members registered with the
community and staff lent by the paired agency (结对共建) help the handler: they assist a
mediation, visit the parties or explain the law (人民调解法 第二十条: people who can help
may be invited). Each has tasks of their own (a visit, a session), counted in their
workload."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.enums import HelperRole, HelperTaskKind
from models.types import UTCDateTime, enum_type


class CaseHelper(SQLModel, table=True):
    __tablename__ = "case_helper"
    __table_args__ = (UniqueConstraint("case_id", "staff_id"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    role: HelperRole = Field(sa_type=enum_type(HelperRole))
    added_by_id: int | None = Field(default=None, foreign_key="staff.id")
    added_at: datetime = Field(sa_type=UTCDateTime)


class HelperTask(SQLModel, table=True):
    """A helper's own piece of work on a case: planned (``due_at``), then done."""

    __tablename__ = "helper_task"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    helper_id: int = Field(foreign_key="case_helper.id", index=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    kind: HelperTaskKind = Field(sa_type=enum_type(HelperTaskKind))
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    note: str | None = Field(default=None, max_length=2000)
    recorded_by_id: int | None = Field(default=None, foreign_key="staff.id")
