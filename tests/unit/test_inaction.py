"""Inaction: 40 working days in which nobody acts must not look good.

Both communities of the test city (CMA, CMB under street S1) each receive, on Tue
1 Dec 2026, one complaint that is handled well (phoned at once, settled, the street's
return visitor hears 已解决/满意) and three that nobody touches after the automatic
assignment. Then the escalation sweep runs every working evening for 40 working days
and nobody else does anything.

What a supervisor must see afterwards:

* every community's untouched cases counted as overdue at the community level, where
  their limits passed, although the sweep has since moved them up (and at the street
  and the district, where their later limits passed too);
* each community's response and resolution rates fall: from 1/1 to 1/4 each (the
  three untouched cases decided against the community when their limits passed);
* no community drops out of the ranking: both keep their cases and a rank.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from models import clock, lifecycle, workdays
from models.contact import ContactCreate, record_contact
from models.enums import (
    Category,
    ContactMethod,
    FollowUpOutcome,
    ResolvedAnswer,
    SatisfiedAnswer,
    StaffRole,
    UnitLevel,
)
from models.escalation import sweep
from models.follow_up import FollowUpRecord
from models.follow_ups import record_follow_up, settle_after_follow_up
from models.mediating import resolve_directly
from models.metrics import monthly_ranking, overdue_by_level, unit_rates
from tests.factories import (
    City,
    add_staff,
    advance_to_assigned,
    build_city,
    make_case,
    staff_actor,
)

SH = clock.SHANGHAI
SYSTEM = lifecycle.Actor.system()
COMMUNITIES = {"CMA": ("BA1", "mediatorA"), "CMB": ("BB1", "mediatorB")}
UNTOUCHED = 3
WORKING_DAYS = 40


def local(d: int, h: int) -> datetime:
    return datetime(2026, 12, d, h, tzinfo=SH)


def handled_well(session: Session, city: City, place: str, who: str) -> None:
    case = make_case(session, place_code=place, category=Category.NEIGHBOUR)
    unit = "CMA" if place.startswith("BA") else "CMB"
    advance_to_assigned(session, case, city, unit=unit, assignee=who)
    actor = staff_actor(city, who)
    record_contact(
        session,
        case_id=case.id or 0,
        data=ContactCreate(method=ContactMethod.PHONE),
        actor=actor,
        expected_version=None,
    )
    resolve_directly(
        session, case_id=case.id or 0, resolution="现场协调", actor=actor, expected_version=None
    )
    record_follow_up(
        session,
        case_id=case.id or 0,
        data=FollowUpRecord(
            outcome=FollowUpOutcome.CARRIED_OUT,
            resolved=ResolvedAnswer.RESOLVED,
            satisfied=SatisfiedAnswer.SATISFIED,
            notes="电话回访，问题已解决",
        ),
        actor=staff_actor(city, "visitor"),
        expected_version=None,
    )
    settle_after_follow_up(session, case_id=case.id or 0, actor=SYSTEM)


def test_forty_working_days_of_inaction(
    session: Session, engine: Engine, vclock: clock.VirtualClock
) -> None:
    vclock.set(local(1, 9))
    city = build_city(session)
    add_staff(session, city, "visitor", StaffRole.RETURN_VISITOR, "S1")
    for place, who in COMMUNITIES.values():
        for _ in range(UNTOUCHED):
            case = make_case(session, place_code=place)
            unit = "CMA" if place.startswith("BA") else "CMB"
            advance_to_assigned(session, case, city, unit=unit, assignee=who)
        handled_well(session, city, place, who)
    session.commit()

    window = (local(1, 0), local(1, 0) + timedelta(days=120))
    vclock.set(local(1, 12))
    before = {r.unit_code: r for r in unit_rates(session, since=window[0], until=window[1])}
    for code in COMMUNITIES:
        # Only the handled case is decided yet: 1/1 responded, 1/1 resolved.
        assert (before[code].response_cases, before[code].responded_in_time) == (1, 1)
        assert (before[code].resolution_cases, before[code].resolved) == (1, 1)
        assert before[code].rank is not None
    session.rollback()  # end the read: the sweep writes on the same connection

    day = workdays.local_date(clock.now())
    for _ in range(WORKING_DAYS):
        day = workdays.next_working_day(day)
        evening = workdays.at_local(day, time(19, 0))
        vclock.set(evening)
        sweep(engine, now=evening, actor=SYSTEM)
    session.expire_all()
    now = clock.now()

    after = {r.unit_code: r for r in unit_rates(session, since=window[0], until=window[1])}
    for code in COMMUNITIES:
        # The three untouched cases passed their response and resolution limits at the
        # community: decided late and unresolved there, whoever holds them now.
        assert (after[code].response_cases, after[code].responded_in_time) == (4, 1)
        assert (after[code].resolution_cases, after[code].resolved) == (4, 1)
        assert after[code].response_rate == 0.25 < (before[code].response_rate or 0)
        assert after[code].resolution_rate == 0.25 < (before[code].resolution_rate or 0)
        assert after[code].cases == 4 and after[code].rank is not None

    december = monthly_ranking(session, month=local(1, 0).date())
    ranked = {r.unit_code: (r.cases, r.rank) for r in december}
    assert ranked["CMA"][0] == ranked["CMB"][0] == 4
    assert ranked["CMA"][1] is not None and ranked["CMB"][1] is not None

    levels = {c.level: c.overdue for c in overdue_by_level(session, now=now)}
    untouched = UNTOUCHED * len(COMMUNITIES)
    # Every untouched case passed its limits at the community, then at the street and
    # the district after the sweep moved it up; escalation wiped none of it.
    assert levels[UnitLevel.COMMUNITY] == untouched
    assert levels[UnitLevel.STREET] == untouched
    assert levels[UnitLevel.DISTRICT] == untouched
    for code in COMMUNITIES:
        own = overdue_by_level(session, now=now, within_path=city.unit(code).path)
        assert {c.level: c.overdue for c in own}[UnitLevel.COMMUNITY] == UNTOUCHED
