"""Working-day arithmetic on the Chinese calendar, in ``Asia/Shanghai``.

Official holidays and make-up working days (调休) come from ``chinese_calendar``. For a
year it does not know yet (the State Council publishes each year's schedule in
November) we fall back to weekends plus the fixed-date holidays (1 Jan, 1-3 May,
1-7 Oct) and say so once in the log: a deadline then may be a day early, never late.

Conventions: the day a case arrives does not count; a limit of N working days ends at
close of business (18:00) of the Nth working day after it.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import chinese_calendar

from models.clock import SHANGHAI, ensure_utc

log = logging.getLogger(__name__)

OPEN = time(9, 0)
CLOSE = time(18, 0)
_FIXED_HOLIDAYS = {(1, 1), (5, 1), (5, 2), (5, 3)} | {(10, d) for d in range(1, 8)}
_warned_years: set[int] = set()


@lru_cache(maxsize=4096)
def is_working_day(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning("no official calendar for %s: using weekends and fixed holidays", day.year)
        return day.weekday() < 5 and (day.month, day.day) not in _FIXED_HOLIDAYS


def local_date(moment: datetime) -> date:
    return ensure_utc(moment).astimezone(SHANGHAI).date()


def at_local(day: date, when: time) -> datetime:
    return datetime.combine(day, when, tzinfo=SHANGHAI).astimezone(UTC)


def next_working_day(day: date) -> date:
    day += timedelta(days=1)
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def add_working_days(start: datetime, days: int) -> datetime:
    """Close of business on the ``days``-th working day after ``start``'s local date."""
    if days < 0:
        raise ValueError("days must not be negative")
    day = local_date(start)
    if days == 0:
        return end_of_working_day(start)
    for _ in range(days):
        day = next_working_day(day)
    return at_local(day, CLOSE)


def end_of_working_day(start: datetime) -> datetime:
    """Close of business today if today is a working day and not yet closed, else the
    next working day's close."""
    local = ensure_utc(start).astimezone(SHANGHAI)
    day = local.date()
    if is_working_day(day) and local.time() < CLOSE:
        return at_local(day, CLOSE)
    return at_local(next_working_day(day), CLOSE)


def end_of_day(start: datetime) -> datetime:
    """Midnight at the end of ``start``'s local day (for same-day emergencies)."""
    day = local_date(start) + timedelta(days=1)
    return at_local(day, time(0, 0))


def add_working_hours(start: datetime, hours: float) -> datetime:
    """Move forward through office hours (09:00-18:00) of working days only."""
    remaining = timedelta(hours=hours)
    local = ensure_utc(start).astimezone(SHANGHAI)
    day = local.date()
    cursor = local.time()
    while True:
        if is_working_day(day) and cursor < CLOSE:
            begin = max(cursor, OPEN)
            left_today = datetime.combine(day, CLOSE) - datetime.combine(day, begin)
            if remaining <= left_today:
                return at_local(day, begin) + remaining
            remaining -= left_today
        day += timedelta(days=1)
        cursor = time(0, 0)


@lru_cache(maxsize=4096)
def working_days_between(start: date, end: date) -> int:
    """Working days in (start, end]: how many a limit had used by ``end``. Kept: the
    lists count from each case's deadline to today on every read, a day at a time."""
    count = 0
    day = start
    while day < end:
        day += timedelta(days=1)
        if is_working_day(day):
            count += 1
    return count


def add_calendar_days(start: datetime, days: int) -> datetime:
    return at_local(local_date(start) + timedelta(days=days), CLOSE)


def reminder_time(deadline: datetime) -> datetime:
    """When to remind (催办) before a deadline: opening time of its last working day."""
    day = local_date(deadline)
    while not is_working_day(day):
        day -= timedelta(days=1)
    return at_local(day, OPEN)
