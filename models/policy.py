"""Time-limit policies per category, priority and unit level."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from models.enums import Category, Priority, UnitLevel
from models.types import UTCDateTime, enum_type


class LimitUnit(StrEnum):
    SAME_DAY = "same_day"
    WORKING_HOURS = "working_hours"
    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"


class TimeLimitPolicy(SQLModel, table=True):
    """The most specific matching row wins (category, priority, level; NULL = any)."""

    __tablename__ = "time_limit_policy"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    category: Category | None = Field(default=None, sa_type=enum_type(Category))
    priority: Priority | None = Field(default=None, sa_type=enum_type(Priority))
    level: UnitLevel | None = Field(default=None, sa_type=enum_type(UnitLevel))
    response_value: int = 1
    response_unit: LimitUnit = Field(default=LimitUnit.WORKING_DAYS, sa_type=enum_type(LimitUnit))
    resolution_value: int = 13
    resolution_unit: LimitUnit = Field(default=LimitUnit.WORKING_DAYS, sa_type=enum_type(LimitUnit))
    # Agency referral instead of escalation up the tree when this level's limit passes.
    refer_to_agency: bool = False


class PolicySet(SQLModel, table=True):
    """One loaded policy file (``tiaojie policies load``): the set in force is ``active``;
    earlier sets stay as history, with the document as it was loaded."""

    __tablename__ = "policy_set"

    id: int | None = Field(default=None, primary_key=True)
    loaded_at: datetime = Field(sa_type=UTCDateTime, index=True)
    loaded_by: str = Field(max_length=64)
    source: str = Field(max_length=200)
    sha256: str = Field(max_length=64)
    limits: int
    active: bool = Field(default=True, index=True)
    document: str
