"""Oracle tests for the three rates: a small city worked by hand, the figures computed
on paper in the comments, then asked of the metrics.

The city (tests.factories.build_city): street S1 with communities CMA and CMB, the
labour agency AG-LAB paired with CMA, policies of 1 working day to respond and 13 to
resolve. A street return visitor (回访员) is added. Every case is a labour complaint
received Tue 1 Dec 2026 09:00: response limit Wed 2 Dec 18:00, resolution limit Fri
18 Dec 18:00.

What happens:

* a0 (CMA): phoned at 10:00, settled directly; the street visitor hears 已解决/满意.
* a1 (CMA): phoned at 10:00, settled directly; the handler visits it herself
  (已解决/满意): not independent, so it decides nothing for resolution or satisfaction.
* a2 (CMA): consent recorded at 10:00 (a contact in person), referred to AG-LAB, which
  signs for it and records it resolved; the street visitor hears 未解决/不满意: the
  complainant's answer decides, judged against AG-LAB.
* a4 (CMA): consent at 10:00, referred to AG-LAB, which records 未解决; the visitor hears
  已解决/满意. A referred case is resolved only when its outcome is: unresolved for
  AG-LAB, though satisfied.
* a3 (CMA): nobody acts. The response limit passes at CMA (Wed 18:00), the resolution
  limit at CMA (Fri 18 Dec 18:00): the sweep escalates it to S1, where its new limits
  pass too (response Mon 21 Dec 18:00).
* b0 (CMB): the response limit passes (Wed 18:00) before anyone calls; phoned Thu
  3 Dec, settled directly; the street visitor hears 基本解决/基本满意.
* b1 (CMB): merged into b0: never counted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from models import clock, lifecycle, routing
from models.breaches import breaches_of
from models.case import Case
from models.contact import ContactCreate, record_contact
from models.enums import (
    BreachKind,
    Category,
    ContactMethod,
    FollowUpOutcome,
    ReferralOutcome,
    ReferralTarget,
    ResolvedAnswer,
    SatisfiedAnswer,
    StaffRole,
    UnitLevel,
)
from models.escalation import sweep
from models.follow_up import FollowUpRecord
from models.follow_ups import record_follow_up, schedule_follow_ups, settle_after_follow_up
from models.mediating import merge_case, record_consent, resolve_directly
from models.metrics import monthly_ranking, overdue_by_level, unit_rates
from models.referrals import record_referral_outcome, sign_referral
from tests.factories import City, add_staff, advance_to_assigned, build_city, make_case, staff_actor

SH = clock.SHANGHAI
SYSTEM = lifecycle.Actor.system()
DEC = (datetime(2026, 12, 1, tzinfo=SH), datetime(2027, 1, 1, tzinfo=SH))
W_RESP, W_RES, W_SAT = 0.10, 0.45, 0.45


def local(d: int, h: int = 9, m: int = 12) -> datetime:
    return datetime(2026, m, d, h, tzinfo=SH)


def contact(session: Session, case: Case, city: City, who: str) -> None:
    record_contact(
        session,
        case_id=case.id or 0,
        data=ContactCreate(method=ContactMethod.PHONE, note="电话联系申请人"),
        actor=staff_actor(city, who),
        expected_version=None,
    )


def visit(
    session: Session,
    case: Case,
    city: City,
    who: str,
    resolved: ResolvedAnswer,
    satisfied: SatisfiedAnswer,
) -> None:
    record_follow_up(
        session,
        case_id=case.id or 0,
        data=FollowUpRecord(
            outcome=FollowUpOutcome.CARRIED_OUT,
            resolved=resolved,
            satisfied=satisfied,
            notes="电话回访申请人",
        ),
        actor=staff_actor(city, who),
        expected_version=None,
    )
    settle_after_follow_up(session, case_id=case.id or 0, actor=SYSTEM)


def settle(session: Session, case: Case, city: City, who: str) -> None:
    resolve_directly(
        session,
        case_id=case.id or 0,
        resolution="已协调企业补发工资",
        actor=staff_actor(city, who),
        expected_version=None,
    )


def refer_to_agency(session: Session, city: City, case: Case, outcome: ReferralOutcome) -> None:
    """Referred by the community, signed for and concluded by the agency's officer."""
    routing.refer_case(
        session,
        case_id=case.id or 0,
        target=ReferralTarget.AGENCY,
        agency_code="AG-LAB",
        reason="欠薪需劳动监察依法处理",
        actor=staff_actor(city, "supervisor"),
        expected_version=case.version,
    )
    officer = staff_actor(city, "officer")
    sign_referral(session, case_id=case.id or 0, actor=officer, expected_version=None)
    record_referral_outcome(
        session,
        case_id=case.id or 0,
        action_taken="劳动监察责令企业限期支付",
        outcome=outcome,
        actor=officer,
        expected_version=None,
    )
    schedule_follow_ups(session, case_id=case.id or 0, actor=SYSTEM)


@pytest.fixture
def worked(session: Session, engine: Engine, vclock: clock.VirtualClock) -> dict[str, Case]:
    vclock.set(local(1))
    city = build_city(session)
    add_staff(session, city, "visitor", StaffRole.RETURN_VISITOR, "S1")
    add_staff(session, city, "officer", StaffRole.MEDIATOR, "AG-LAB", [Category.LABOUR])
    cases = {n: make_case(session) for n in ("a0", "a1", "a2", "a3", "a4")}
    for c in cases.values():
        advance_to_assigned(session, c, city)
    for n in ("b0", "b1"):
        cases[n] = make_case(session, place_code="BB1")
        advance_to_assigned(session, cases[n], city, unit="CMB", assignee="mediatorB")
    a0, a1, a2, a4, b0, b1 = (cases[n] for n in ("a0", "a1", "a2", "a4", "b0", "b1"))
    merge_case(
        session,
        case_id=b1.id or 0,
        into_case_id=b0.id or 0,
        actor=staff_actor(city, "mediatorB"),
        expected_version=None,
    )

    vclock.set(local(1, 10))
    contact(session, a0, city, "mediatorA")
    contact(session, a1, city, "mediatorA")
    for referred in (a2, a4):
        record_consent(
            session,
            case_id=referred.id or 0,
            party_ids=None,
            actor=staff_actor(city, "mediatorA"),
            expected_version=None,
        )
    vclock.set(local(1, 11))
    settle(session, a0, city, "mediatorA")
    settle(session, a1, city, "mediatorA")
    for referred, outcome in ((a2, ReferralOutcome.RESOLVED), (a4, ReferralOutcome.NOT_RESOLVED)):
        refer_to_agency(session, city, referred, outcome)
    session.commit()

    vclock.set(local(2, 10))
    visit(session, a0, city, "visitor", ResolvedAnswer.RESOLVED, SatisfiedAnswer.SATISFIED)
    visit(session, a1, city, "mediatorA", ResolvedAnswer.RESOLVED, SatisfiedAnswer.SATISFIED)
    visit(session, a2, city, "visitor", ResolvedAnswer.UNRESOLVED, SatisfiedAnswer.DISSATISFIED)
    visit(session, a4, city, "visitor", ResolvedAnswer.RESOLVED, SatisfiedAnswer.SATISFIED)
    session.commit()

    vclock.set(local(2, 19))  # the response limit (Wed 18:00) has passed for a3 and b0
    sweep(engine, now=clock.now(), actor=SYSTEM)
    session.expire_all()

    vclock.set(local(3, 10))
    contact(session, b0, city, "mediatorB")  # late
    settle(session, b0, city, "mediatorB")
    session.commit()
    vclock.set(local(4, 10))
    visit(session, b0, city, "visitor", ResolvedAnswer.BASICALLY, SatisfiedAnswer.BASICALLY)
    session.commit()

    # Nobody touches a3: a sweep every evening until the end of December.
    day = local(4, 19)
    while day < local(31, 20):
        vclock.set(day)
        sweep(engine, now=day, actor=SYSTEM)
        day += timedelta(days=1)
    session.expire_all()
    return cases


def test_response_rate(session: Session, worked: dict[str, Case]) -> None:
    rows = {r.unit_code: r for r in unit_rates(session, since=DEC[0], until=DEC[1])}
    # CMA: a0, a1 phoned and a2's, a4's consent within the limit; a3's limit passed
    # first: 4 of 5.
    assert (rows["CMA"].response_cases, rows["CMA"].responded_in_time) == (5, 4)
    assert rows["CMA"].response_rate == 0.8
    # CMB: b0's limit passed on Wednesday, the call came on Thursday: late. b1 merged.
    assert (rows["CMB"].response_cases, rows["CMB"].responded_in_time) == (1, 0)
    assert rows["CMB"].response_rate == 0.0


def test_resolution_rate(session: Session, worked: dict[str, Case]) -> None:
    rows = {r.unit_code: r for r in unit_rates(session, since=DEC[0], until=DEC[1])}
    # CMA: a0 resolved at the street's visit; a3's limit passed at CMA (unresolved);
    # a1's only visit was the handler's own (decides nothing); a2 is judged at AG-LAB.
    assert (rows["CMA"].resolution_cases, rows["CMA"].resolved) == (2, 1)
    assert rows["CMA"].resolution_rate == 0.5
    # CMB: b0 basically resolved, late response or not.
    assert (rows["CMB"].resolution_cases, rows["CMB"].resolved) == (1, 1)
    [agency] = unit_rates(session, since=DEC[0], until=DEC[1], level=UnitLevel.AGENCY)
    # AG-LAB: a2 the complainant says 未解决 (though the agency recorded it resolved);
    # a4 the agency recorded 未解决 (though the complainant says 已解决): 0 of 2.
    assert (agency.unit_code, agency.resolution_cases, agency.resolved) == ("AG-LAB", 2, 0)
    assert agency.response_cases == 0 and agency.response_rate is None


def test_satisfaction_rate(session: Session, worked: dict[str, Case]) -> None:
    rows = {r.unit_code: r for r in unit_rates(session, since=DEC[0], until=DEC[1])}
    # Independent answers only: CMA a0 满意 (a1's own-unit visit does not count).
    assert (rows["CMA"].rated, rows["CMA"].satisfied, rows["CMA"].satisfaction_rate) == (1, 1, 1.0)
    assert (rows["CMB"].rated, rows["CMB"].satisfied) == (1, 1)  # 基本满意 counts
    [agency] = unit_rates(session, since=DEC[0], until=DEC[1], level=UnitLevel.AGENCY)
    # AG-LAB: a2 不满意, a4 满意.
    assert (agency.rated, agency.satisfied, agency.satisfaction_rate) == (2, 1, 0.5)


def test_composite_and_monthly_ranking(session: Session, worked: dict[str, Case]) -> None:
    ranking = monthly_ranking(session, month=DEC[0].date())
    by_code = {r.unit_code: r for r in ranking}
    # CMA: 0.10 x 0.8 + 0.45 x 0.5 + 0.45 x 1.0 = 0.08 + 0.225 + 0.45 = 0.755
    assert by_code["CMA"].score == pytest.approx(W_RESP * 0.8 + W_RES * 0.5 + W_SAT * 1.0)
    assert by_code["CMA"].score == pytest.approx(0.755)
    # CMB: 0.10 x 0 + 0.45 x 1 + 0.45 x 1 = 0.9
    assert by_code["CMB"].score == pytest.approx(0.9)
    # AG-LAB: no response decided, weights rescaled: (0.45 x 0 + 0.45 x 0.5) / 0.9 = 0.25
    assert by_code["AG-LAB"].score == pytest.approx(0.25)
    assert [(r.unit_code, r.rank) for r in ranking] == [("CMB", 1), ("CMA", 2), ("AG-LAB", 3)]
    # Distinct cases decided for each unit, any rate: CMA a0-a4, CMB b0, AG-LAB a2 a4.
    assert {r.unit_code: r.cases for r in ranking} == {"CMA": 5, "CMB": 1, "AG-LAB": 2}
    # November: nothing decided, nobody ranked, nobody missing.
    november = monthly_ranking(session, month=local(1, m=11).date())
    assert {(r.unit_code, r.rank, r.cases) for r in november} == {
        ("CMA", None, 0),
        ("CMB", None, 0),
        ("AG-LAB", None, 0),
    }


def test_street_rolls_up_its_communities(session: Session, worked: dict[str, Case]) -> None:
    [street] = unit_rates(session, since=DEC[0], until=DEC[1], level=UnitLevel.STREET)
    # Response: a0 a1 a2 a4 in time, a3 and b0 late (a3's later limit at S1 decides
    # nothing: its response was decided at CMA) -> 4/6. Resolution: a0, b0 resolved, a3
    # not -> 2/3 (a2, a4 are AG-LAB's, not under S1). Satisfaction: a0, b0 -> 2/2.
    assert (street.response_cases, street.responded_in_time) == (6, 4)
    assert (street.resolution_cases, street.resolved, street.rated, street.satisfied) == (
        3,
        2,
        2,
        2,
    )


def test_escalation_keeps_the_breach_where_it_happened(
    session: Session, worked: dict[str, Case]
) -> None:
    a3 = worked["a3"]
    session.refresh(a3)
    assert a3.escalation_level == 1  # escalated to S1 on Fri 18 Dec
    kinds = [(b.kind, b.unit_level) for b in breaches_of(session, case_id=a3.id or 0)]
    assert kinds[:2] == [
        (BreachKind.RESPONSE, UnitLevel.COMMUNITY),
        (BreachKind.RESOLUTION, UnitLevel.COMMUNITY),
    ]
    assert (BreachKind.RESPONSE, UnitLevel.STREET) in kinds  # nobody called at S1 either
    levels = {c.level: c.overdue for c in overdue_by_level(session, now=local(31, 20))}
    # a3 passed its limits at the community and at the street: counted at both.
    assert levels[UnitLevel.COMMUNITY] == 1
    assert levels[UnitLevel.STREET] == 1
    assert levels[UnitLevel.AGENCY] == 0
