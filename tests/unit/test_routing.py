"""Routing: places, handling units, assignment by skill/availability/load, agency
referral, reassignment and referral by hand."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError
from sqlmodel import Session, select

from models.case import Case
from models.clock import VirtualClock
from models.enums import (
    CaseStatus,
    Category,
    ExpiryAction,
    ReferralReason,
    ReferralState,
    ReferralTarget,
    StaffRole,
    UnitLevel,
)
from models.errors import ConflictError, GuardFailed, ValidationError
from models.event import CaseEvent
from models.lifecycle import Actor
from models.policy import TimeLimitPolicy
from models.referral import Referral
from models.routing import (
    assign_case,
    handling_unit_for,
    paired_agency,
    reassign_case,
    refer_case,
    resolve_place,
)
from models.staffing import pick_assignee
from models.triage import triage_case
from tests.factories import add_staff, add_unit, build_city, case_data, make_case

SYSTEM = Actor.system()
SUPERVISOR = Actor(kind="staff", staff_id=1, role=StaffRole.SUPERVISOR)


def triaged(session: Session, **overrides: Any) -> Case:
    base: dict[str, Any] = {
        "people_affected": 1,
        "category": Category.ENVIRONMENT,
        "category_locked": True,
        "description": "噪音扰民",
        "parties": [],
    }
    base.update(overrides)
    case = make_case(session, **base)
    triage_case(session, case_id=case.id or 0, actor=SYSTEM)
    return case


def test_resolve_place_in_order(session: Session, vclock: VirtualClock) -> None:
    city = build_city(session)
    with_place = make_case(session, place_code="BB1")
    assert resolve_place(session, case=with_place) == city.unit("BB1")
    by_address = make_case(session, place_code=None, address_text="桂花社区一小区")
    assert resolve_place(session, case=by_address) == city.unit("CPA")
    # "1号楼" alone names a building in both compounds: their common ancestor decides.
    ambiguous = make_case(session, place_code=None, address_text="柳河街道1号楼")
    assert resolve_place(session, case=ambiguous) == city.unit("S1")
    city.unit("BA2").lat, city.unit("BA2").lon = 30.2741, 120.1551
    city.unit("BB1").lat, city.unit("BB1").lon = 30.2800, 120.1600
    session.flush()
    near = make_case(session, place_code=None, lat=30.2745, lon=120.1553)
    assert resolve_place(session, case=near) == city.unit("BA2")
    far = make_case(session, place_code=None, lat=31.0, lon=121.0)
    assert resolve_place(session, case=far) == city.unit("C")


def test_handling_unit_is_the_lowest_with_someone_able(
    session: Session, vclock: VirtualClock
) -> None:
    city = build_city(session)
    place = city.unit("BA1")
    assert handling_unit_for(session, place=place, category=Category.LABOUR) == city.unit("CPA")
    city.staff["gridA"].away = True
    session.flush()
    # workerA is a generalist (no skills listed): community A handles it.
    assert handling_unit_for(session, place=place, category=Category.LABOUR) == city.unit("CMA")
    city.staff["workerA"].active = False
    city.staff["mediatorA"].skills = [Category.FAMILY.value]
    session.flush()
    assert handling_unit_for(session, place=place, category=Category.LABOUR) == city.unit("S1")
    assert handling_unit_for(session, place=place, category=Category.FAMILY) == city.unit("CMA")


def test_assignment_spreads_load_and_skips_away_and_inactive(
    session: Session, vclock: VirtualClock
) -> None:
    city = build_city(session)
    for name in ("gridA2", "gridA3"):
        add_staff(session, city, name, StaffRole.GRID_WORKER, "CPA", [Category.ENVIRONMENT])
    city.staff["gridA3"].away = True
    add_staff(session, city, "gridA4", StaffRole.GRID_WORKER, "CPA", []).active = False
    add_staff(session, city, "volunteerA", StaffRole.VOLUNTEER, "CPA", [])
    session.flush()
    assignees = []
    for n in range(6):
        case = triaged(session, description=f"第{n}次反映噪音")
        result = assign_case(session, case_id=case.id or 0, actor=SYSTEM)
        assert result.outcome == "assigned" and result.unit_code == "CPA"
        assignees.append(result.assignee_id)
    grid, grid2 = city.staff["gridA"].id, city.staff["gridA2"].id
    assert assignees == [grid, grid2, grid, grid2, grid, grid2]
    # Idempotent: a second call changes nothing.
    again = assign_case(session, case_id=case.id or 0, actor=SYSTEM)
    assert again.outcome == "unchanged" and again.assignee_id == assignees[-1]
    verbs = session.exec(select(CaseEvent.verb).where(CaseEvent.case_id == case.id)).all()
    assert verbs.count("assigned") == 1


def test_a_person_set_away_in_the_batch_is_not_picked_next(
    session: Session, vclock: VirtualClock
) -> None:
    """The unit's staff are read once per unit of work (models.staffing._present); a
    change to one of them in the same transaction is seen by the next assignment."""
    city = build_city(session)
    add_staff(session, city, "gridA2", StaffRole.GRID_WORKER, "CPA", [Category.ENVIRONMENT])
    session.flush()
    first = assign_case(session, case_id=triaged(session, description="噪音").id or 0, actor=SYSTEM)
    assert first.assignee_id == city.staff["gridA"].id
    city.staff["gridA2"].away = True
    session.flush()
    for n in range(2):
        case = triaged(session, description=f"第{n}次反映油烟")
        result = assign_case(session, case_id=case.id or 0, actor=SYSTEM)
        assert result.assignee_id == city.staff["gridA"].id


def test_never_over_capacity_while_someone_has_room(session: Session, vclock: VirtualClock) -> None:
    city = build_city(session)
    city.staff["gridA"].capacity = 1
    add_staff(session, city, "gridA2", StaffRole.GRID_WORKER, "CPA", [], capacity=20)
    session.flush()
    chosen = []
    for _ in range(3):
        case = triaged(session)
        chosen.append(assign_case(session, case_id=case.id or 0, actor=SYSTEM).assignee_id)
    grid, grid2 = city.staff["gridA"].id, city.staff["gridA2"].id
    assert chosen == [grid, grid2, grid2]
    assert (
        pick_assignee(session, unit=city.unit("CPA"), category=Category.ENVIRONMENT)
        == (city.staff["gridA2"])
    )
    # When everybody is full, the one least over capacity still gets it.
    city.staff["gridA2"].capacity = 1
    session.flush()
    assert (
        pick_assignee(session, unit=city.unit("CPA"), category=Category.ENVIRONMENT)
        == (city.staff["gridA"])
    )


def test_nobody_available_moves_up_or_stays_unassigned(
    session: Session, vclock: VirtualClock
) -> None:
    city = build_city(session)
    case = triaged(session)
    city.staff["gridA"].away = True
    session.flush()
    result = assign_case(session, case_id=case.id or 0, actor=SYSTEM)
    assert result.outcome == "assigned" and result.unit_code == "CMA"
    for staff in city.staff.values():
        staff.away = True
    session.flush()
    other = triaged(session, description="又一起噪音")
    result = assign_case(session, case_id=other.id or 0, actor=SYSTEM)
    assert result.outcome == "unchanged" and result.assignee_id is None
    assert other.status == CaseStatus.TRIAGED


def test_a_policy_that_refers_on_expiry_does_not_refer_at_assignment(
    session: Session, vclock: VirtualClock
) -> None:
    city = build_city(session)
    assert paired_agency(session, unit=city.unit("BA1"), category=Category.LABOUR) == city.unit(
        "AG-LAB"
    )
    assert paired_agency(session, unit=city.unit("BB1"), category=Category.LABOUR) is None
    assert paired_agency(session, unit=city.unit("S1"), category=Category.LABOUR) is None
    session.add(
        TimeLimitPolicy(
            name="labour cases at a compound go to the paired agency when the limit passes",
            category=Category.LABOUR,
            level=UnitLevel.COMPOUND,
            on_expiry=ExpiryAction.REFER,
        )
    )
    session.flush()
    labour = make_case(session, people_affected=1)
    triage_case(session, case_id=labour.id or 0, actor=SYSTEM)
    result = assign_case(session, case_id=labour.id or 0, actor=SYSTEM)
    assert (result.outcome, result.agency_code, result.unit_code) == ("assigned", None, "CPA")
    assert labour.status == CaseStatus.ASSIGNED and labour.referral_target is None
    assert session.exec(select(Referral)).all() == []


@pytest.mark.parametrize(
    ("text", "reason", "target"),
    [
        (
            "公司拖欠工资三个月，我们已申请劳动仲裁，仲裁委已受理。",
            ReferralReason.IN_ARBITRATION,
            ReferralTarget.ARBITRATION,
        ),
        ("邻居装修纠纷，法院已立案，下周开庭。", ReferralReason.IN_COURT, ReferralTarget.COURT),
        ("楼下商户持刀伤人，已报警立案。", ReferralReason.CRIMINAL, ReferralTarget.POLICE),
    ],
)
def test_a_rule_refers_at_assignment_only_for_the_legal_reason_it_names(
    session: Session,
    vclock: VirtualClock,
    text: str,
    reason: ReferralReason,
    target: ReferralTarget,
) -> None:
    build_city(session)
    case = make_case(session, description=text, people_affected=1)
    triage_case(session, case_id=case.id or 0, actor=SYSTEM)
    assert assign_case(session, case_id=case.id or 0, actor=SYSTEM).outcome == "referred"
    assert case.status == CaseStatus.REFERRED
    assert (case.referral_reason, case.referral_target) == (reason, target)
    row = session.exec(select(Referral).where(Referral.case_id == case.id)).one()
    assert row.decided_by.startswith("rule:") and row.reason == reason
    # A wish is not a fact: "I want to sue" is worked at the grassroots.
    wish = make_case(session, description="公司拖欠工资，我想去法院起诉。", people_affected=1)
    triage_case(session, case_id=wish.id or 0, actor=SYSTEM)
    assert assign_case(session, case_id=wish.id or 0, actor=SYSTEM).outcome == "assigned"


def test_a_worker_records_the_legal_reason_at_intake(
    session: Session, vclock: VirtualClock
) -> None:
    build_city(session)
    case = make_case(session, referral_reason=ReferralReason.ADMINISTRATIVE, people_affected=1)
    triage_case(session, case_id=case.id or 0, actor=SYSTEM)
    result = assign_case(session, case_id=case.id or 0, actor=SYSTEM)
    assert (result.outcome, result.agency_code) == ("referred", "AG-LAB")
    assert case.referral_state == ReferralState.PENDING
    assert case.referred_from_path == "/C/D1/S1/CMA/CPA/"
    # Only a legal reason may be given at intake.
    with pytest.raises(PydanticValidationError):
        case_data(referral_reason=ReferralReason.LIMIT_PASSED)


def test_reassign_within_the_unit_subtree_only(session: Session, vclock: VirtualClock) -> None:
    city = build_city(session)
    case = triaged(session)
    assign_case(session, case_id=case.id or 0, actor=SYSTEM)
    # Handled at compound A: compound staff may take it, community B's may not.
    with pytest.raises(GuardFailed) as denied:
        reassign_case(
            session,
            case_id=case.id or 0,
            assignee_id=city.staff["gridB"].id or 0,
            actor=SUPERVISOR,
            expected_version=case.version,
        )
    assert "不在本案承办单位" in denied.value.message_zh
    extra = add_staff(session, city, "gridA2", StaffRole.GRID_WORKER, "CPA", [])
    with pytest.raises(ConflictError):
        reassign_case(
            session,
            case_id=case.id or 0,
            assignee_id=extra.id or 0,
            actor=SUPERVISOR,
            expected_version=case.version - 1,
        )
    reassign_case(
        session,
        case_id=case.id or 0,
        assignee_id=extra.id or 0,
        actor=SUPERVISOR,
        expected_version=case.version,
    )
    assert case.assignee_id == extra.id
    extra.active = False
    session.flush()
    with pytest.raises(GuardFailed):
        reassign_case(
            session,
            case_id=case.id or 0,
            assignee_id=extra.id or 0,
            actor=SUPERVISOR,
            expected_version=case.version,
        )


def test_refer_by_hand(session: Session, vclock: VirtualClock) -> None:
    city = build_city(session)
    add_unit(session, city, "AG-ENV", UnitLevel.AGENCY, "D1", "区生态环境局")
    case = triaged(session)
    with pytest.raises(ValidationError):
        refer_case(
            session,
            case_id=case.id or 0,
            target=ReferralTarget.AGENCY,
            agency_code=None,  # environment is not paired with community A
            reason="需执法部门处理",
            actor=SUPERVISOR,
            expected_version=case.version,
        )
    with pytest.raises(ValidationError):
        refer_case(
            session,
            case_id=case.id or 0,
            target=ReferralTarget.AGENCY,
            agency_code="AG-ENV",
            reason="  ",
            actor=SUPERVISOR,
            expected_version=case.version,
        )
    refer_case(
        session,
        case_id=case.id or 0,
        target=ReferralTarget.AGENCY,
        agency_code="AG-ENV",
        reason="排放超标需执法部门处理",
        actor=SUPERVISOR,
        expected_version=case.version,
    )
    assert case.status == CaseStatus.REFERRED and case.unit_path == "/C/D1/AG-ENV/"
    court = triaged(session, description="另一起")
    refer_case(
        session,
        case_id=court.id or 0,
        target=ReferralTarget.COURT,
        agency_code=None,
        reason="当事人要求诉讼",
        actor=SUPERVISOR,
        expected_version=court.version,
    )
    assert court.referral_target == ReferralTarget.COURT and court.unit_path == "/C/D1/S1/CMA/CPA/"
