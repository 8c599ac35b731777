"""Time limits: pick the policy for a case at its current level and compute deadlines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from models import workdays
from models.enums import Category, ExpiryAction, Priority, UnitLevel
from models.policy import LimitUnit, TimeLimitPolicy

DEFAULT_POLICY = TimeLimitPolicy(name="default", response_value=1, resolution_value=13)


@dataclass(frozen=True)
class Deadlines:
    response_due_at: datetime
    resolution_due_at: datetime
    next_reminder_at: datetime
    policy_name: str
    on_expiry: ExpiryAction


def find_policy(
    session: Session, *, category: Category, priority: Priority, level: UnitLevel
) -> TimeLimitPolicy:
    """The matching policy with the most fields set; a field left NULL matches anything."""
    rows = session.exec(select(TimeLimitPolicy)).all()
    return pick_policy(rows, category=category, priority=priority, level=level)


def pick_policy(
    rows: Sequence[TimeLimitPolicy], *, category: Category, priority: Priority, level: UnitLevel
) -> TimeLimitPolicy:
    """:func:`find_policy` over rows already loaded (sweeps load them once)."""
    best: tuple[int, TimeLimitPolicy] | None = None
    for row in rows:
        if row.category not in (None, category) or row.priority not in (None, priority):
            continue
        if row.level not in (None, level):
            continue
        score = sum(x is not None for x in (row.category, row.priority, row.level))
        if (
            best is None
            or score > best[0]
            or (score == best[0] and (row.id or 0) < (best[1].id or 0))
        ):
            best = (score, row)
    return best[1] if best else DEFAULT_POLICY


def add_limit(start: datetime, value: int, unit: LimitUnit) -> datetime:
    match unit:
        case LimitUnit.SAME_DAY:
            return workdays.end_of_day(start)
        case LimitUnit.WORKING_HOURS:
            return workdays.add_working_hours(start, value)
        case LimitUnit.WORKING_DAYS:
            return workdays.add_working_days(start, value)
        case LimitUnit.CALENDAR_DAYS:
            return workdays.add_calendar_days(start, value)
    raise ValueError(f"unknown limit unit {unit!r}")


def compute_deadlines(policy: TimeLimitPolicy, *, start: datetime) -> Deadlines:
    response = add_limit(start, policy.response_value, policy.response_unit)
    resolution = add_limit(start, policy.resolution_value, policy.resolution_unit)
    response = min(response, resolution)
    reminder = max(start, workdays.reminder_time(resolution))
    if reminder >= resolution:  # same-day limits: remind halfway, never after the deadline
        reminder = start + (resolution - start) / 2
    return Deadlines(response, resolution, reminder, policy.name, policy.on_expiry)
