"""The three rates on a small hand-computed set, the supervisor views, and no personal
data in any of them."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlmodel import Session

from models import clock, lifecycle, monthly_report
from models.case import Case
from models.enums import Category, FollowUpOutcome, PartyKind, PartySide, ReferralTarget, UnitLevel
from models.follow_up import FollowUpRecord
from models.follow_ups import record_follow_up, settle_after_follow_up
from models.mediating import (
    fail_mediation,
    merge_case,
    record_consent,
    resolve_directly,
    start_mediation,
    withdraw_case,
)
from models.metrics import (
    backlog_by_unit,
    backlog_query,
    clusters,
    composite_score,
    overdue_by_level,
    passed_query,
    problem_of_the_month,
    recent_escalations,
    unit_rates,
)
from tests.factories import (
    NAME,
    PHONE,
    City,
    accept_for_mediation,
    advance_to_assigned,
    build_city,
    make_case,
    staff_actor,
    visit_answers,
)
from tests.sqlite_plans import plans_while, pretend_a_million_cases, query_plan

SH = clock.SHANGHAI
SYSTEM = lifecycle.Actor.system()


def local(y: int, m: int, d: int, h: int = 9) -> datetime:
    return datetime(y, m, d, h, tzinfo=SH)


def settle_directly(
    session: Session, case: Case, city: City, who: str, rating: int | None, fault: bool = False
) -> None:
    actor = staff_actor(city, who)
    assert case.id is not None
    resolve_directly(
        session, case_id=case.id, resolution="已当场解答", actor=actor, expected_version=None
    )
    record_follow_up(
        session,
        case_id=case.id,
        data=FollowUpRecord(
            outcome=FollowUpOutcome.CARRIED_OUT,
            unit_at_fault=fault,
            notes="电话回访",
            **visit_answers(rating),
        ),
        actor=actor,
        expected_version=None,
    )
    assert settle_after_follow_up(session, case_id=case.id, actor=SYSTEM) == "closed"


@pytest.fixture
def small_set(session: Session, vclock: clock.VirtualClock) -> City:
    """Community A: 4 cases, community B: 2 (and one merged into them), one case before
    the period. Expected figures are worked out by hand in the tests."""
    city = build_city(session)
    early = make_case(session)  # Mon 30 Nov: outside the period
    advance_to_assigned(session, early, city)

    vclock.set(local(2026, 12, 1))  # Tue; response due Wed 2 Dec 18:00
    a = [make_case(session) for _ in range(4)]
    for c in a:
        advance_to_assigned(session, c, city)
    b = [make_case(session, place_code="BB1") for _ in range(3)]
    for c in b:
        advance_to_assigned(session, c, city, unit="CMB", assignee="mediatorB")
    mediator_a = staff_actor(city, "mediatorA")
    ids = [c.id or 0 for c in a]

    # a0: settled directly the same day, rated 5.
    settle_directly(session, a[0], city, "mediatorA", 5)
    # a1: consent at once (in time), agreement... here settled directly, rated 2, not
    # the unit's fault: closed, resolved, rated but not satisfied.
    record_consent(session, case_id=ids[1], party_ids=None, actor=mediator_a, expected_version=None)
    settle_directly(session, a[1], city, "mediatorA", 2)
    # b0 settled the same day (rated 4), b1 withdrawn, b2 merged into b0.
    mediator_b = staff_actor(city, "mediatorB")
    merge_case(
        session, case_id=b[2].id or 0, into_case_id=b[0].id or 0, actor=mediator_b,
        expected_version=None,
    )  # fmt: skip
    settle_directly(session, b[0], city, "mediatorB", 4)
    withdraw_case(
        session, case_id=b[1].id or 0, reason="已自行和解", actor=mediator_b, expected_version=None
    )
    # a2: first touched on Friday (late); mediation fails and goes to arbitration.
    vclock.set(local(2026, 12, 4))
    accept_for_mediation(session, a[2], city)
    record_consent(session, case_id=ids[2], party_ids=None, actor=mediator_a, expected_version=None)
    start_mediation(session, case_id=ids[2], actor=mediator_a)
    fail_mediation(
        session,
        case_id=ids[2],
        reason="企业拒绝",
        referral=ReferralTarget.ARBITRATION,
        actor=mediator_a,
        expected_version=None,
    )
    # a3: left alone (counted in time through its assignment), still open.

    session.commit()
    return city


def test_rates_respect_the_subtree(session: Session, small_set: City) -> None:
    since, until = local(2026, 12, 1, 0), local(2027, 1, 1, 0)
    only_a = unit_rates(session, since=since, until=until, within_path="/C/D1/S1/CMA/")
    assert [r.unit_code for r in only_a] == ["CMA"]
    # A building-level reader asking for its community sees that community only, and
    # none of its cases (they are judged at the community).
    inside = unit_rates(session, since=since, until=until, within_path="/C/D1/S1/CMA/CPA/")
    assert [(r.unit_code, r.cases) for r in inside] == [("CMA", 0)]


def test_composite_rescales_when_nothing_was_rated() -> None:
    # Response 10%, resolution 45%: (0.10 x 1.0 + 0.45 x 0.5) / 0.55
    assert composite_score(1.0, 0.5, None) == pytest.approx((0.1 + 0.225) / 0.55, abs=1e-4)
    assert composite_score(None, None, None) is None


def test_overdue_and_backlog(session: Session, small_set: City) -> None:
    # Never contacted, so their response limit counts (models.overdue): the early case
    # (1 working day from 30 Nov: 1 Dec 18:00) and a3 (from 1 Dec: 2 Dec 18:00).
    # Referred a2 awaits its return visit: not overdue.
    def overdue_at(moment: datetime) -> dict[UnitLevel, int]:
        return {c.level: c.overdue for c in overdue_by_level(session, now=moment)}

    assert overdue_at(local(2026, 12, 1, 17))[UnitLevel.COMMUNITY] == 0
    assert overdue_at(local(2026, 12, 2, 17))[UnitLevel.COMMUNITY] == 1
    assert overdue_at(local(2026, 12, 2, 19))[UnitLevel.COMMUNITY] == 2
    after = overdue_at(local(2026, 12, 21))
    assert after[UnitLevel.COMMUNITY] == 2 and sum(after.values()) == 2
    assert (
        overdue_by_level(session, now=local(2026, 12, 21), within_path="/C/D1/S1/CMB/")[2].overdue
        == 0
    )
    backlog = backlog_by_unit(session, now=local(2026, 12, 21))
    by_code = {r.unit_code: r for r in backlog}
    # Open in A: the early case, a2 (referred, awaiting its return visit) and a3.
    assert (by_code["CMA"].open, by_code["CMA"].overdue) == (3, 2)
    assert by_code["CMB"].open == 0
    assert backlog[0].unit_code == "CMA"


def test_backlog_reads_the_open_cases_not_the_whole_subtree(session: Session) -> None:
    """Grouped by the unit_path column, the backlog walked that column's index over every
    case of the district, closed ones of ten years included (0.4 s at a million)."""
    pretend_a_million_cases(session)
    plan = query_plan(session, backlog_query(within_path="/C/D1/", now=local(2026, 12, 21)))
    # The district's open cases, their status and kept deadline from the index alone.
    assert "SEARCH cases USING COVERING INDEX ix_case_open_path (is_open=?" in plan
    assert "ix_cases_unit_path" not in plan


def test_limits_passed_in_a_period_read_the_period_only(session: Session) -> None:
    """The dashboard's "limits passed in the last 30 days" read every breach of ten years
    (no index on due_at); it reads the period's from the due_at index."""
    now = local(2026, 12, 21)
    plan = query_plan(session, passed_query(now - timedelta(days=30), now, within_path="/C/D1/"))
    assert "SEARCH limit_breach USING INDEX ix_limit_breach_due_at (due_at>? AND due_at<?)" in plan
    assert "SCAN limit_breach" not in plan


def test_the_monthly_reports_statements_read_the_month_not_the_history(session: Session) -> None:
    """Each statement of a district's monthly report reads an index range bounded by the
    month or by the open cases of the district (EXPLAIN QUERY PLAN with the million-case
    city's statistics): the escalations read every event since the month began (46,000 in
    a month of that city, 44 ms) and the overdue figure every open case of the city."""
    build_city(session)
    pretend_a_million_cases(session)
    plans = plans_while(
        session,
        lambda: monthly_report.build(
            session, date(2026, 11, 1), now=local(2026, 12, 21), within_path="/C/D1/"
        ),
    )
    everything = " || ".join(plan for _statement, plan in plans)
    assert "SCAN cases" not in everything and "SCAN case_event" not in everything
    escalations = [p for s, p in plans if "FROM case_event" in s]
    assert escalations == [
        "SEARCH case_event USING INDEX ix_case_event_verb_at (verb=? AND at>? AND at<?)"
        " | SEARCH cases USING INTEGER PRIMARY KEY (rowid=?)"
    ]
    month = [p for s, p in plans if "cases.created_at >= ?" in s]  # the problem of the month
    assert month and all("ix_cases_created_at (created_at>? AND created_at<?)" in p for p in month)
    [overdue] = [p for s, p in plans if "limit_breach.case_id IN" in s]
    # The district's overdue cases and their units from the kept deadline's index.
    assert "COVERING INDEX ix_case_path_deadline (unit_path>? AND unit_path<?)" in overdue

    # A respondent's name: from the newest of their cases, not all of them ever.
    for _ in range(2):
        make_case(session, at=local(2026, 11, 20))  # against the same firm
    plans = plans_while(
        session, lambda: monthly_report.build(session, date(2026, 11, 1), now=local(2026, 12, 21))
    )
    [label] = [p for s, p in plans if "party.org_name" in s]
    assert label.startswith("SEARCH cases USING COVERING INDEX ix_cases_respondent_key (respondent")
    assert "TEMP B-TREE" not in label


def test_recent_escalations_name_units_not_people(
    session: Session, vclock: clock.VirtualClock
) -> None:
    city = build_city(session)
    case = make_case(session)
    advance_to_assigned(session, case, city)
    street = city.unit("S1")
    case.unit_id, case.unit_path = street.id, street.path
    vclock.advance(timedelta(days=3))
    lifecycle.apply(
        session,
        case=case,
        verb="escalated",
        actor=SYSTEM,
        data={"from_unit": "CMA", "to_unit": "S1", "level": 1},
    )
    rows = recent_escalations(session, since=local(2026, 12, 1, 0))
    assert [(r.case_number, r.from_unit_name, r.to_unit_name, r.level) for r in rows] == [
        (case.number, "桂花社区", "柳河街道", 1)
    ]
    assert rows[0].category == Category.LABOUR
    assert (
        recent_escalations(session, since=local(2026, 12, 1, 0), within_path="/C/D1/S1/CMB/") == []
    )
    assert recent_escalations(session, since=clock.now() + timedelta(seconds=1)) == []


def test_clusters_and_problem_of_the_month(session: Session, vclock: clock.VirtualClock) -> None:
    build_city(session)
    firm_cases = [make_case(session) for _ in range(3)]
    person = {"side": PartySide.RESPONDENT, "kind": PartyKind.PERSON, "name": NAME, "phone": PHONE}
    complainant = {"side": PartySide.COMPLAINANT, "kind": PartyKind.PERSON, "name": "李四"}
    for _ in range(3):
        make_case(
            session,
            category=Category.NEIGHBOUR,
            place_code="BB2",
            description="楼上住户深夜噪音扰民。",
            parties=[complainant, person],
        )
    make_case(session, category=Category.ENVIRONMENT, place_code="BB2")
    found = clusters(session, since=local(2026, 11, 1, 0), min_size=3)
    labels = {r.label: r for r in found}
    assert set(labels) == {"江心市恒达电子厂", "王**"}
    firm = labels["江心市恒达电子厂"]
    assert (firm.category, firm.open_count, firm.people_affected) == (Category.LABOUR, 3, 60)
    assert firm.latest_case_numbers == [c.number for c in reversed(firm_cases)]
    assert NAME not in str(found) and PHONE not in str(found)
    assert clusters(session, since=local(2026, 11, 1, 0), min_size=4) == []

    top = problem_of_the_month(session, month_start=date(2026, 11, 1))
    assert top is not None
    # Labour at building BA1 and labour against the firm both count 3; the respondent
    # (who to talk to) wins the tie over the place.
    assert (top.category, top.kind, top.label, top.count) == (
        Category.LABOUR,
        "respondent",
        "江心市恒达电子厂",
        3,
    )
    assert problem_of_the_month(session, month_start=date(2026, 12, 1)) is None
    top_b = problem_of_the_month(
        session, month_start=date(2026, 11, 1), within_path="/C/D1/S1/CMB/"
    )
    assert top_b is None  # nothing handled in B yet: cases are only submitted


def test_a_case_in_mediation_is_held_to_its_mediation_limit(
    session: Session, vclock: clock.VirtualClock
) -> None:
    city = build_city(session)
    case = make_case(session)  # Mon 30 Nov: resolution limit 17 Dec, mediation 30 Dec
    advance_to_assigned(session, case, city)
    accept_for_mediation(session, case, city)
    actor = staff_actor(city, "mediatorA")
    record_consent(
        session, case_id=case.id or 0, party_ids=None, actor=actor, expected_version=None
    )
    start_mediation(session, case_id=case.id or 0, actor=actor)

    def community_overdue(moment: datetime) -> int:
        counts = {c.level: c.overdue for c in overdue_by_level(session, now=moment)}
        return counts[UnitLevel.COMMUNITY]

    assert community_overdue(local(2026, 12, 21)) == 0
    assert community_overdue(local(2026, 12, 31, 1)) == 1
    [backlog_a] = [
        r for r in backlog_by_unit(session, now=local(2026, 12, 31, 1)) if r.unit_code == "CMA"
    ]
    assert (backlog_a.open, backlog_a.in_mediation, backlog_a.overdue) == (1, 1, 1)
