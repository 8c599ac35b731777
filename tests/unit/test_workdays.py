"""Working days on the Chinese calendar: the 2026 Spring Festival (15-23 Feb off, Sat 14
Feb and Sat 28 Feb worked) and National Day (1-7 Oct off, Sun 20 Sep and Sat 10 Oct
worked), deadlines across them, office hours, same-day limits, and the documented
fallback for a year the calendar package does not know yet (2027)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

import pytest

from models import workdays
from models.clock import SHANGHAI, ensure_utc
from models.deadlines import add_limit, compute_deadlines
from models.policy import LimitUnit, TimeLimitPolicy


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def as_local(moment: datetime) -> datetime:
    return ensure_utc(moment).astimezone(SHANGHAI)


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def test_spring_festival_2026_holidays_and_make_up_days() -> None:
    assert all(not workdays.is_working_day(d) for d in days(date(2026, 2, 15), date(2026, 2, 23)))
    assert workdays.is_working_day(date(2026, 2, 14))  # Saturday, make-up working day
    assert workdays.is_working_day(date(2026, 2, 28))  # Saturday, make-up working day
    assert workdays.is_working_day(date(2026, 2, 13))
    assert workdays.is_working_day(date(2026, 2, 24))
    assert not workdays.is_working_day(date(2026, 3, 1))  # an ordinary Sunday


def test_national_day_2026_holidays_and_make_up_days() -> None:
    assert all(not workdays.is_working_day(d) for d in days(date(2026, 10, 1), date(2026, 10, 7)))
    assert workdays.is_working_day(date(2026, 9, 20))  # Sunday, make-up working day
    assert workdays.is_working_day(date(2026, 10, 10))  # Saturday, make-up working day
    assert workdays.is_working_day(date(2026, 10, 8))
    assert not workdays.is_working_day(date(2026, 10, 11))


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        # Spring Festival: Friday before it; the Saturday make-up day counts.
        (local(2026, 2, 13, 10), 1, local(2026, 2, 14, 18)),
        (local(2026, 2, 13, 10), 2, local(2026, 2, 24, 18)),
        (local(2026, 2, 13, 10), 3, local(2026, 2, 25, 18)),
        # A complaint (13 working days) filed the Thursday before the holiday.
        (local(2026, 2, 12, 10), 13, local(2026, 3, 9, 18)),
        # Filed during the holiday: the count starts after it.
        (local(2026, 2, 18, 11), 1, local(2026, 2, 24, 18)),
        (local(2026, 2, 23, 11), 3, local(2026, 2, 26, 18)),
        # Consultation (3 working days) filed on Wednesday 25 Feb ends on make-up Sat 28.
        (local(2026, 2, 25, 9), 3, local(2026, 2, 28, 18)),
        # National Day.
        (local(2026, 9, 18, 16), 1, local(2026, 9, 20, 18)),  # Friday -> make-up Sunday
        (local(2026, 9, 30, 15), 1, local(2026, 10, 8, 18)),
        (local(2026, 9, 30, 15), 3, local(2026, 10, 10, 18)),  # make-up Saturday
        (local(2026, 9, 30, 15), 4, local(2026, 10, 12, 18)),
        (local(2026, 10, 3, 12), 1, local(2026, 10, 8, 18)),
    ],
)
def test_working_day_deadlines_across_holidays(start: datetime, n: int, due: datetime) -> None:
    result = workdays.add_working_days(ensure_utc(start), n)
    assert as_local(result) == due
    assert add_limit(ensure_utc(start), n, LimitUnit.WORKING_DAYS) == result


def test_zero_working_days_means_close_of_business() -> None:
    assert as_local(workdays.add_working_days(local(2026, 2, 13, 10), 0)) == local(2026, 2, 13, 18)
    # After closing time, or on a holiday: the next working day's close.
    assert as_local(workdays.add_working_days(local(2026, 2, 14, 19), 0)) == local(2026, 2, 24, 18)
    assert as_local(workdays.end_of_working_day(local(2026, 10, 5, 9))) == local(2026, 10, 8, 18)
    with pytest.raises(ValueError, match="negative"):
        workdays.add_working_days(local(2026, 2, 13, 10), -1)


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        (local(2026, 2, 13, 17), 2, local(2026, 2, 14, 10)),  # into the make-up Saturday
        (local(2026, 2, 14, 17, 30), 2, local(2026, 2, 24, 10, 30)),  # over the holiday
        (local(2026, 2, 24, 7), 1, local(2026, 2, 24, 10)),  # before opening time
        (local(2026, 10, 3, 12), 1, local(2026, 10, 8, 10)),  # filed on a holiday
        (local(2026, 9, 30, 16), 4, local(2026, 10, 8, 11)),  # 2 h + 2 h
        (local(2026, 2, 24, 9), 9, local(2026, 2, 24, 18)),  # exactly one office day
    ],
)
def test_working_hours(start: datetime, hours: float, due: datetime) -> None:
    assert as_local(workdays.add_working_hours(ensure_utc(start), hours)) == due


def test_emergency_is_same_calendar_day_even_on_a_holiday() -> None:
    filed = ensure_utc(local(2026, 10, 2, 14))
    assert as_local(workdays.end_of_day(filed)) == local(2026, 10, 3, 0)
    policy = TimeLimitPolicy(
        name="emergency",
        response_value=2,
        response_unit=LimitUnit.WORKING_HOURS,
        resolution_value=0,
        resolution_unit=LimitUnit.SAME_DAY,
    )
    result = compute_deadlines(policy, start=filed)
    assert as_local(result.resolution_due_at) == local(2026, 10, 3, 0)
    # Two working hours would run into 8 October: the response is due no later than
    # the resolution.
    assert result.response_due_at == result.resolution_due_at


def test_counting_and_reminders_around_holidays() -> None:
    assert workdays.working_days_between(date(2026, 2, 13), date(2026, 2, 24)) == 2
    assert workdays.working_days_between(date(2026, 9, 30), date(2026, 10, 10)) == 3
    assert workdays.next_working_day(date(2026, 2, 14)) == date(2026, 2, 24)
    # Reminder on the morning of the deadline's working day, or of the last working
    # day before a deadline that falls in a holiday.
    assert as_local(workdays.reminder_time(local(2026, 2, 24, 18))) == local(2026, 2, 24, 9)
    assert as_local(workdays.reminder_time(local(2026, 2, 20, 18))) == local(2026, 2, 14, 9)
    deadline = compute_deadlines(
        TimeLimitPolicy(name="complaint", response_value=1, resolution_value=13),
        start=ensure_utc(local(2026, 2, 12, 10)),
    )
    assert as_local(deadline.response_due_at) == local(2026, 2, 13, 18)
    assert as_local(deadline.next_reminder_at) == local(2026, 3, 9, 9)


def test_unknown_year_falls_back_to_weekends_and_fixed_holidays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """chinese-calendar 1.11 knows up to 2026. For 2027 Tiaojie counts weekends and the
    fixed-date holidays (1 Jan, 1-3 May, 1-7 Oct) as off and says so once in the log:
    without the make-up days a deadline may come a day early, never late."""
    workdays.is_working_day.cache_clear()
    workdays._warned_years.discard(2027)
    with caplog.at_level(logging.WARNING, logger="models.workdays"):
        assert not workdays.is_working_day(date(2027, 1, 1))
        assert workdays.is_working_day(date(2027, 1, 4))  # Monday
        assert not workdays.is_working_day(date(2027, 1, 9))  # Saturday
        assert not workdays.is_working_day(date(2027, 5, 3))
        assert all(
            not workdays.is_working_day(d) for d in days(date(2027, 10, 1), date(2027, 10, 7))
        )
        assert workdays.is_working_day(date(2027, 10, 8))  # Friday
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1
    # Thursday 30 Sep 2027 + 1 working day: Friday 8 Oct.
    assert as_local(workdays.add_working_days(local(2027, 9, 30, 10), 1)) == local(2027, 10, 8, 18)
