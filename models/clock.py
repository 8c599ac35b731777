"""One clock for the whole process, replaceable in tests and the policy simulator.

Every datetime Tiaojie stores is aware and in UTC; it is shown in ``Asia/Shanghai``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

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
    "SHANGHAI",
    "Clock",
    "SystemClock",
    "VirtualClock",
    "ensure_utc",
    "format_local",
    "get_clock",
    "now",
    "set_clock",
    "timedelta",
    "to_local",
]
