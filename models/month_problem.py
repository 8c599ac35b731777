"""The problem of the month (每月一题): the issue that recurred most across units in a
calendar month, taken up by a lead unit with an action plan.

The metrics find the candidate (:func:`models.metrics.problem_of_the_month`); a
supervisor records the decision: which problem (the candidate or another one they
name), the lead unit (牵头单位) and the action plan (工作方案). One record a month; a
later record for the same month replaces the earlier one and says who changed it.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import field_validator
from sqlmodel import Field, Session, SQLModel, select
from sqlmodel._compat import SQLModelConfig

from models import clock, pii
from models.enums import Category, StaffRole
from models.errors import FieldProblem, NotFound, PermissionDenied, ValidationError
from models.lifecycle import Actor
from models.mediation import CleanText
from models.public import public_of
from models.types import UTCDateTime, enum_type
from models.unit import Unit, unit_by_code

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
DECIDERS = frozenset({StaffRole.SUPERVISOR, StaffRole.ADMIN})


class MonthProblem(SQLModel, table=True):
    __tablename__ = "month_problem"

    id: int | None = Field(default=None, primary_key=True)
    month: str = Field(max_length=7, unique=True, index=True)  # "2026-12", Asia/Shanghai
    category: Category = Field(sa_type=enum_type(Category))
    title: str = Field(max_length=200)
    lead_unit_id: int = Field(foreign_key="unit.id")
    plan: str = Field(max_length=4000)
    case_count: int = 0
    set_by_id: int | None = Field(default=None, foreign_key="staff.id")
    set_at: datetime = Field(sa_type=UTCDateTime)


class MonthProblemSet(SQLModel):
    """What the supervisor decides for the month."""

    model_config = SQLModelConfig(extra="forbid")

    month: str = Field(min_length=7, max_length=7, description="YYYY-MM")
    category: Category
    title: CleanText = Field(min_length=2, max_length=200)
    lead_unit_code: str = Field(min_length=1, max_length=32)
    plan: CleanText = Field(min_length=2, max_length=4000)

    @field_validator("month")
    @classmethod
    def _month(cls, value: str) -> str:
        if not MONTH.match(value):
            raise ValueError("月份格式为 YYYY-MM / month is YYYY-MM")
        return value


class MonthProblemPublic(SQLModel):
    month: str
    category: Category
    category_zh: str
    title: str
    lead_unit_code: str
    lead_unit_name: str
    lead_unit_name_en: str
    plan: str
    case_count: int
    set_at: datetime


def _public(row: MonthProblem, unit: Unit) -> MonthProblemPublic:
    return public_of(
        MonthProblemPublic,
        row,
        category_zh=row.category.zh,
        lead_unit_code=unit.code,
        lead_unit_name=unit.name_zh,
        lead_unit_name_en=unit.name_en,
    )


def get_month_problem(session: Session, *, month: str) -> MonthProblemPublic | None:
    row = session.exec(select(MonthProblem).where(MonthProblem.month == month)).first()
    if row is None:
        return None
    unit = session.get(Unit, row.lead_unit_id)
    assert unit is not None
    return _public(row, unit)


def set_month_problem(
    session: Session, *, data: MonthProblemSet, actor: Actor, case_count: int = 0
) -> MonthProblemPublic:
    """Record (or replace) the month's problem, its lead unit and plan. Supervisors and
    administrators only, and a decision already made only by someone whose area holds
    its lead unit; the plan is kept without phone or ID numbers."""
    if actor.kind != "staff" or actor.role not in DECIDERS:
        raise PermissionDenied(
            "only a supervisor sets the problem of the month", "每月一题须由督办人员确定。"
        )
    unit = unit_by_code(session, data.lead_unit_code)
    if unit is None:
        raise NotFound(
            f"no unit {data.lead_unit_code!r}",
            f"单位 {data.lead_unit_code} 不存在",
        )
    if actor.unit_path and not unit.path.startswith(actor.unit_path):
        raise ValidationError(
            "lead_unit_code: the lead unit must be inside your own area",
            "lead_unit_code：牵头单位须在本人辖区内",
            problems=[FieldProblem("lead_unit_code", "牵头单位须在本人辖区内", "inside your area")],
        )
    row = session.exec(select(MonthProblem).where(MonthProblem.month == data.month)).first()
    decided = session.get(Unit, row.lead_unit_id) if row is not None else None
    if decided is not None and not actor.covers(decided.path):
        # One problem a month: a street's supervisor does not overwrite the district's.
        raise PermissionDenied(
            f"this month's problem was set by a level above you (lead unit {decided.code})",
            f"本月问题已由上级确定（牵头单位：{decided.name_zh}），不能更改",
        )
    row = row or MonthProblem(
        month=data.month,
        category=data.category,
        title="",
        lead_unit_id=0,
        plan="",
        set_at=clock.now(),
    )
    assert unit.id is not None
    row.category = data.category
    row.title = pii.scrub_text(data.title)[:200]
    row.plan = pii.scrub_text(data.plan)[:4000]
    row.lead_unit_id = unit.id
    row.case_count = case_count
    row.set_by_id = actor.staff_id
    row.set_at = clock.now()
    session.add(row)
    session.flush()
    return _public(row, unit)
