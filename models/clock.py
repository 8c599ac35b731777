"""One clock for the whole process, replaceable in tests and the policy simulator.

Every datetime Tiaojie stores is aware and in UTC; it is shown in ``Asia/Shanghai``.

A date or time a person types lies between :data:`FIRST_YEAR` and :data:`LAST_YEAR`
(:func:`within_years`; :data:`Day`, :data:`Moment` and :data:`AwareMoment` for the
fields of a body).
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Protocol, TypeVar
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AwareDatetime

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to (tests, simulator, the fast demo)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("VirtualClock needs an aware datetime")
        with self._lock:
            self._now = when.astimezone(UTC)


_clock: Clock = SystemClock()


def get_clock() -> Clock:
    return _clock


def set_clock(clock: Clock) -> None:
    global _clock
    _clock = clock


def now() -> datetime:
    return _clock.now()


def ensure_utc(value: datetime) -> datetime:
    """Aware UTC; naive values (SQLite returns them) are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# The years a typed date or time may fall in: wider than any case needs (a tenancy of
# 1950, a term due in 2100), and narrow enough that turning it to UTC or moving it a day
# or a month on stays in the calendar (year 1 ahead of UTC, or 9999 behind it, overflowed:
# a 500 on every front end, the public's Open311 dates included).
FIRST_YEAR = 1900
LAST_YEAR = 2199
Typed = TypeVar("Typed", date, datetime)


def within_years(value: Typed) -> Typed:
    """``value`` as typed, if its year is FIRST_YEAR to LAST_YEAR; else a ValueError
    saying so in Chinese and English ("zh / en", as the validators of a body do)."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(
            f"日期须在 {FIRST_YEAR} 年至 {LAST_YEAR} 年之间 / a date from the year "
            f"{FIRST_YEAR} to {LAST_YEAR}"
        )
    return value


Day = Annotated[date, AfterValidator(within_years)]
Moment = Annotated[datetime, AfterValidator(within_years)]
AwareMoment = Annotated[AwareDatetime, AfterValidator(within_years)]


def to_local(value: datetime) -> datetime:
    # Straight to Shanghai time (an aware value converts from any zone): through UTC first
    # was a second conversion per value, a third of formatting a timeline's times.
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).astimezone(SHANGHAI)


def format_local(value: datetime | None) -> str:
    """``2026-05-03 12:05``, local time. isoformat cut to the minute rather than
    strftime: half the time, and a 300-event timeline formats 300 of them."""
    if value is None:
        return "—"
    return to_local(value).isoformat(" ", "minutes")[:16]


__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "SHANGHAI",
    "AwareMoment",
    "Clock",
    "Day",
    "Moment",
    "SystemClock",
    "VirtualClock",
    "ensure_utc",
    "format_local",
    "get_clock",
    "now",
    "set_clock",
    "timedelta",
    "to_local",
    "within_years",
]
