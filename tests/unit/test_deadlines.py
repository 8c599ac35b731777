"""Time-limit policies: the most specific matching row wins (category, priority, level;
NULL matches anything), ties go to the older row; and the demo city's policies give
the limits docs/DOMAIN.md names."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlmodel import Session

from models.clock import SHANGHAI, ensure_utc
from models.deadlines import DEFAULT_POLICY, compute_deadlines, find_policy
from models.demo import demo_policies
from models.enums import Category, ExpiryAction, Priority, UnitLevel
from models.policy import LimitUnit, TimeLimitPolicy

# Monday 30 Nov 2026, 10:00 in Shanghai, far from holidays.
START = ensure_utc(datetime(2026, 11, 30, 10, tzinfo=SHANGHAI))


def local(moment: datetime) -> datetime:
    return ensure_utc(moment).astimezone(SHANGHAI)


def test_no_policy_at_all_uses_the_built_in_complaint_limit(session: Session) -> None:
    found = find_policy(
        session, category=Category.FAMILY, priority=Priority.NORMAL, level=UnitLevel.COMMUNITY
    )
    assert found is DEFAULT_POLICY and found.resolution_value == 13


def test_most_specific_row_wins_and_ties_go_to_the_first(session: Session) -> None:
    rows = [
        TimeLimitPolicy(name="any", resolution_value=13),
        TimeLimitPolicy(name="labour", category=Category.LABOUR, resolution_value=11),
        TimeLimitPolicy(name="community", level=UnitLevel.COMMUNITY, resolution_value=10),
        TimeLimitPolicy(
            name="labour@community",
            category=Category.LABOUR,
            level=UnitLevel.COMMUNITY,
            resolution_value=7,
        ),
        TimeLimitPolicy(
            name="labour@community again",
            category=Category.LABOUR,
            level=UnitLevel.COMMUNITY,
            resolution_value=99,
        ),
        TimeLimitPolicy(
            name="high labour@community",
            category=Category.LABOUR,
            priority=Priority.HIGH,
            level=UnitLevel.COMMUNITY,
            resolution_value=5,
        ),
    ]
    for row in rows:
        session.add(row)
        session.flush()

    def name(category: Category, priority: Priority, level: UnitLevel) -> str:
        return find_policy(session, category=category, priority=priority, level=level).name

    assert name(Category.LABOUR, Priority.HIGH, UnitLevel.COMMUNITY) == "high labour@community"
    assert name(Category.LABOUR, Priority.NORMAL, UnitLevel.COMMUNITY) == "labour@community"
    assert name(Category.LABOUR, Priority.NORMAL, UnitLevel.STREET) == "labour"
    assert name(Category.FAMILY, Priority.NORMAL, UnitLevel.COMMUNITY) == "community"
    assert name(Category.FAMILY, Priority.NORMAL, UnitLevel.STREET) == "any"


def test_demo_policy_names_fit_their_column() -> None:
    assert all(len(p.name) <= 100 for p in demo_policies())


@pytest.fixture
def demo(session: Session) -> Session:
    for row in demo_policies():
        session.add(row)
        session.flush()
    return session


@pytest.mark.parametrize(
    ("category", "priority", "level", "resolution", "refer"),
    [
        # Emergency: the same day, whatever the category or level.
        (Category.LABOUR, Priority.EMERGENCY, UnitLevel.COMMUNITY, (2026, 12, 1, 0), False),
        (Category.FAMILY, Priority.EMERGENCY, UnitLevel.BUILDING, (2026, 12, 1, 0), False),
        # Consultation: 3 working days.
        (Category.RELOCATION, Priority.CONSULTATION, UnitLevel.STREET, (2026, 12, 3, 18), False),
        # Lower levels get shorter limits.
        (Category.NEIGHBOUR, Priority.NORMAL, UnitLevel.BUILDING, (2026, 12, 3, 18), False),
        (Category.NEIGHBOUR, Priority.NORMAL, UnitLevel.COMPOUND, (2026, 12, 7, 18), False),
        (Category.NEIGHBOUR, Priority.NORMAL, UnitLevel.COMMUNITY, (2026, 12, 14, 18), False),
        (Category.NEIGHBOUR, Priority.NORMAL, UnitLevel.STREET, (2026, 12, 17, 18), False),
        (Category.NEIGHBOUR, Priority.NORMAL, UnitLevel.DISTRICT, (2026, 12, 21, 18), False),
        # Wages and pollution go to the paired agency when the community's time is up;
        # relocation goes up to the street first, then to the housing office.
        (Category.LABOUR, Priority.NORMAL, UnitLevel.COMMUNITY, (2026, 12, 14, 18), True),
        (Category.ENVIRONMENT, Priority.NORMAL, UnitLevel.COMMUNITY, (2026, 12, 9, 18), True),
        (Category.RELOCATION, Priority.NORMAL, UnitLevel.COMMUNITY, (2026, 12, 14, 18), False),
        (Category.RELOCATION, Priority.NORMAL, UnitLevel.STREET, (2026, 12, 17, 18), True),
        # The city level has no row of its own: the 13-working-day complaint limit.
        (Category.PROPERTY, Priority.NORMAL, UnitLevel.CITY, (2026, 12, 17, 18), False),
    ],
)
def test_demo_policies_give_the_domain_limits(
    demo: Session,
    category: Category,
    priority: Priority,
    level: UnitLevel,
    resolution: tuple[int, int, int, int],
    refer: bool,
) -> None:
    policy = find_policy(demo, category=category, priority=priority, level=level)
    deadlines = compute_deadlines(policy, start=START)
    assert local(deadlines.resolution_due_at) == datetime(*resolution, tzinfo=SHANGHAI)
    assert (deadlines.on_expiry == ExpiryAction.REFER) is refer
    assert START < deadlines.response_due_at <= deadlines.resolution_due_at
    assert START <= deadlines.next_reminder_at <= deadlines.resolution_due_at
    assert deadlines.policy_name == policy.name


def test_emergency_response_is_two_office_hours(demo: Session) -> None:
    policy = find_policy(
        demo, category=Category.FAMILY, priority=Priority.EMERGENCY, level=UnitLevel.COMMUNITY
    )
    assert policy.response_unit == LimitUnit.WORKING_HOURS
    deadlines = compute_deadlines(policy, start=START)
    assert local(deadlines.response_due_at) == datetime(2026, 11, 30, 12, tzinfo=SHANGHAI)
