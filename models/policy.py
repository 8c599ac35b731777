"""Time-limit policies (时限规则) per category, priority and unit level.

One row says, for the cases it matches, how long the unit holding a case at that level
has, and what happens when that time passes:

====================  =====================================================================
field                 meaning
====================  =====================================================================
``name``              shown on the timeline and in reports (Chinese first, English beside)
``category``          a :class:`~models.enums.Category` value, or NULL for any category
``priority``          a :class:`~models.enums.Priority` value, or NULL for any priority
``level``             the :class:`~models.enums.UnitLevel` holding the case, or NULL for any
``response_value``    how long until the first human contact with the complainant ...
``response_unit``     ... in these units (:class:`LimitUnit`)
``resolution_value``  how long until the case is settled at this level ...
``resolution_unit``   ... in these units
``on_expiry``         what happens when the resolution limit passes: ``escalate`` (提级督办:
                      one level up the tree) or ``refer`` (转结对部门: to the agency paired
                      with the case's community for its category; up the tree when there
                      is none)
====================  =====================================================================

Before the resolution limit passes the unit is always reminded once (催办), at the opening
of the last working day before it. Limits count from when the complaint was received at
the first level, and from the moment the case arrives at every level after that.

A row never sends a case anywhere at assignment: a case leaves people's mediation before
anyone has worked it only for a legal reason recorded on the case
(:data:`models.enums.LEGAL_REFERRAL_REASONS`), never because of a time limit.

The most specific matching row wins (the number of non-NULL fields among category,
priority and level); on a tie, the row stored first. The rows are loaded from a TOML
file by :mod:`models.policy_load` (``tiaojie policies load``), where a row is::

    [[limit]]
    name = "劳动争议/欠薪·社区：10个工作日后转结对部门 Labour at community: 10 days"
    category = "labour"
    level = "community"
    respond = "1 working_day"
    resolve = "10 working_days"
    when_passed = "refer"          # -> on_expiry
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from models.enums import Category, ExpiryAction, Priority, UnitLevel
from models.types import UTCDateTime, enum_type


class LimitUnit(StrEnum):
    SAME_DAY = "same_day"
    WORKING_HOURS = "working_hours"
    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"


class TimeLimitPolicy(SQLModel, table=True):
    """One row of the policy table; see the module docstring for each field."""

    __tablename__ = "time_limit_policy"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    category: Category | None = Field(default=None, sa_type=enum_type(Category))
    priority: Priority | None = Field(default=None, sa_type=enum_type(Priority))
    level: UnitLevel | None = Field(default=None, sa_type=enum_type(UnitLevel))
    response_value: int = Field(default=1, ge=0)
    response_unit: LimitUnit = Field(default=LimitUnit.WORKING_DAYS, sa_type=enum_type(LimitUnit))
    resolution_value: int = Field(default=13, ge=0)
    resolution_unit: LimitUnit = Field(default=LimitUnit.WORKING_DAYS, sa_type=enum_type(LimitUnit))
    on_expiry: ExpiryAction = Field(default=ExpiryAction.ESCALATE, sa_type=enum_type(ExpiryAction))


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
