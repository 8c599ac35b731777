"""The referral loop (签收/退单/反馈), the send-back of a wrong assignment, the hand-over to
the mediation committee, extensions (延期), helpers (协办) and limits from receipt."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from models import lifecycle, overdue, workdays
from models.case import Case
from models.cases import create_case
from models.clock import VirtualClock
from models.enums import (
    CaseStatus,
    Category,
    ExtensionState,
    HelperRole,
    HelperTaskKind,
    ReferralOutcome,
    ReferralReason,
    ReferralState,
    ReferralTarget,
    StaffRole,
)
from models.errors import GuardFailed, PermissionDenied, ValidationError
from models.event import CaseEvent
from models.extensions import decide_extension, request_extension
from models.follow_up import FollowUp
from models.follow_ups import schedule_follow_ups
from models.handover import hand_to_committee, send_back_assignment
from models.helping import add_helper, record_helper_task, workload
from models.lifecycle import Actor
from models.referrals import (
    overdue_signatures,
    record_referral_outcome,
    return_referral,
    sign_referral,
)
from models.routing import assign_case, reassign_case, refer_case
from models.triage import triage_case
from tests.factories import City, add_staff, build_city, case_data, make_case, staff_actor

SYSTEM = Actor.system()


def _assigned(session: Session, city: City, **overrides: object) -> Case:
    case = make_case(session, people_affected=1, **overrides)
    triage_case(session, case_id=case.id or 0, actor=SYSTEM)
    assign_case(session, case_id=case.id or 0, actor=SYSTEM)
    return case


def _referred(session: Session, city: City) -> Case:
    """A labour case the community's mediator refers to the paired agency (AG-LAB)."""
    add_staff(session, city, "labour_officer", StaffRole.MEDIATOR, "AG-LAB", [Category.LABOUR])
    case = _assigned(session, city)
    hand_to_committee(
        session, case_id=case.id or 0, actor=staff_actor(city, "gridA"), expected_version=None
    )
    refer_case(
        session,
        case_id=case.id or 0,
        target=ReferralTarget.AGENCY,
        agency_code=None,
        reason="需人社部门依职权认定劳动关系",
        actor=staff_actor(city, "mediatorA"),
        expected_version=case.version,
    )
    return case


def _verbs(session: Session, case: Case) -> list[str]:
    rows = session.exec(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
    return [e.verb for e in sorted(rows, key=lambda e: e.seq)]


def test_grid_worker_takes_it_then_the_committee_mediates_and_he_stays_as_liaison(
    session: Session, vclock: VirtualClock
) -> None:
    city = build_city(session)
    case = _assigned(session, city)
    assert case.assignee_id == city.staff["gridA"].id and case.unit_path == "/C/D1/S1/CMA/CPA/"
    hand_to_committee(
        session, case_id=case.id or 0, actor=staff_actor(city, "gridA"), expected_version=None
    )
    assert case.assignee_id == city.staff["mediatorA"].id
    assert case.liaison_id == city.staff["gridA"].id
    assert case.unit_path == "/C/D1/S1/CMA/"
    with pytest.raises(GuardFailed):
        hand_to_committee(
            session, case_id=case.id or 0, actor=staff_actor(city, "gridA"), expected_version=None
        )


def test_agency_signs_records_its_outcome_and_the_community_visits(
    session: Session, vclock: VirtualClock
) -> None:
    city = build_city(session)
    case = _referred(session, city)
    assert case.status == CaseStatus.REFERRED and case.referral_state == ReferralState.PENDING
    assert case.referral_reason == ReferralReason.ADMINISTRATIVE
    assert case.referred_from_path == "/C/D1/S1/CMA/"
    assert case.unit_path == "/C/D1/AG-LAB/"
    # The return visit waits for the agency.
    with pytest.raises(GuardFailed):
        schedule_follow_ups(session, case_id=case.id or 0, actor=SYSTEM)
    # Only the receiving unit answers.
    with pytest.raises(PermissionDenied):
        sign_referral(
            session,
            case_id=case.id or 0,
            actor=staff_actor(city, "mediatorB"),
            expected_version=None,
        )
    officer = staff_actor(city, "labour_officer")
    sign_referral(session, case_id=case.id or 0, actor=officer, expected_version=None)
    assert case.assignee_id == city.staff["labour_officer"].id
    assert case.referral_state == ReferralState.SIGNED
    with pytest.raises(ValidationError):
        record_referral_outcome(
            session,
            case_id=case.id or 0,
            action_taken="  ",
            outcome=ReferralOutcome.RESOLVED,
            actor=officer,
            expected_version=None,
        )
    record_referral_outcome(
        session,
        case_id=case.id or 0,
        action_taken="劳动监察立案，责令企业十日内补发工资，已补发。",
        outcome=ReferralOutcome.RESOLVED,
        actor=officer,
        expected_version=None,
    )
    assert case.referral_state == ReferralState.CONCLUDED
    visits = schedule_follow_ups(session, case_id=case.id or 0, actor=SYSTEM)
    assert case.status == CaseStatus.FOLLOW_UP
    # The visit is the referring community's: the mediator who referred it, whom the rule
    # book lets record it and shows the contact it needs (not the case's recorder).
    assert [v.visitor_id for v in visits] == [city.staff["mediatorA"].id]
    assert case.referred_by_id == city.staff["mediatorA"].id != case.created_by_id
    from models.access import may_see_personal_data, principal_for_staff
    from models.actions import ACTIONS, refusal

    referrer = principal_for_staff(session, city.staff["mediatorA"])
    assert may_see_personal_data(referrer, case)
    assert refusal(session, referrer, case, ACTIONS["follow-ups"]) is None
    other = principal_for_staff(session, city.staff["workerA"])
    assert not may_see_personal_data(other, case)
    assert _verbs(session, case)[-4:] == [
        "referred",
        "referral_signed",
        "referral_concluded",
        "follow_up_due",
    ]


def test_an_unsigned_referral_is_overdue_after_one_working_day_and_can_be_sent_back(
    session: Session, vclock: VirtualClock
) -> None:
    city = build_city(session)
    case = _referred(session, city)
    assert case.referral_due_at is not None
    assert not overdue.is_overdue(case, now=vclock.now())
    vclock.set(case.referral_due_at)
    assert overdue.is_overdue(case, now=vclock.now())
    assert [r.case_id for r in overdue_signatures(session, now=vclock.now() + timedelta(1))] == [
        case.id
    ]
    officer = staff_actor(city, "labour_officer")
    with pytest.raises(ValidationError):
        return_referral(
            session, case_id=case.id or 0, reason="", actor=officer, expected_version=None
        )
    return_referral(
        session,
        case_id=case.id or 0,
        reason="不属于劳动争议，系邻里借款纠纷",
        actor=officer,
        expected_version=None,
    )
    # Back at the community, with the mediator who referred it and a new limit there.
    assert case.status == CaseStatus.ASSIGNED
    assert case.unit_path == "/C/D1/S1/CMA/"
    assert case.assignee_id == city.staff["mediatorA"].id
    assert case.referral_state == ReferralState.RETURNED and case.referral_target is None
    assert case.resolution_due_at is not None and case.resolution_due_at > vclock.now()
    event = session.exec(
        select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.verb == "referral_returned")
    ).one()
    assert event.data["reason"] == "不属于劳动争议，系邻里借款纠纷"


def test_a_wrong_assignment_goes_back_up_and_is_routed_again_by_hand(
    session: Session, vclock: VirtualClock
) -> None:
    city = build_city(session)
    case = _assigned(session, city)  # at compound A
    with pytest.raises(ValidationError):
        send_back_assignment(
            session,
            case_id=case.id or 0,
            reason=" ",
            actor=staff_actor(city, "gridA"),
            expected_version=None,
        )
    send_back_assignment(
        session,
        case_id=case.id or 0,
        reason="地址在竹园社区，不属本网格",
        actor=staff_actor(city, "gridA"),
        expected_version=None,
    )
    assert case.status == CaseStatus.TRIAGED and case.assignee_id is None
    assert case.unit_path == "/C/D1/S1/CMA/"  # the unit above the compound
    assert lifecycle.NEXT_STEP["assignment_returned"] == "assignment"
    # The next step assigns it there; sent back once more it reaches the street, whose
    # mediator routes it by hand to community B's grid worker.
    assign_case(session, case_id=case.id or 0, actor=SYSTEM)
    assert case.status == CaseStatus.ASSIGNED and case.unit_path == "/C/D1/S1/CMA/"
    send_back_assignment(
        session,
        case_id=case.id or 0,
        reason="竹园社区的事",
        actor=Actor(kind="staff", staff_id=case.assignee_id),
        expected_version=case.version,
    )
    assign_case(session, case_id=case.id or 0, actor=SYSTEM)
    assert case.assignee_id == city.staff["street_mediator"].id
    reassign_case(
        session,
        case_id=case.id or 0,
        assignee_id=city.staff["gridB"].id or 0,
        actor=staff_actor(city, "street_mediator"),
        expected_version=case.version,
    )
    assert case.unit_path == "/C/D1/S1/CMB/CPB/" and case.assignee_id == city.staff["gridB"].id
    assert _verbs(session, case).count("assignment_returned") == 2


def test_extension_asked_before_the_deadline_and_decided_by_a_supervisor(
    session: Session, vclock: VirtualClock
) -> None:
    city = build_city(session)
    case = _assigned(session, city)
    grid = staff_actor(city, "gridA")
    due = case.resolution_due_at
    assert due is not None
    until = workdays.add_working_days(due, 5)
    with pytest.raises(ValidationError):
        request_extension(
            session,
            case_id=case.id or 0,
            until=due - timedelta(hours=1),
            reason="x",
            actor=grid,
            expected_version=None,
        )
    ext = request_extension(
        session,
        case_id=case.id or 0,
        until=until,
        reason="当事人外出务工，下周返回",
        actor=grid,
        expected_version=None,
    )
    with pytest.raises(GuardFailed):  # one request at a time
        request_extension(
            session,
            case_id=case.id or 0,
            until=until,
            reason="again",
            actor=grid,
            expected_version=None,
        )
    with pytest.raises(PermissionDenied):  # the handler does not grant his own
        decide_extension(
            session,
            case_id=case.id or 0,
            grant=True,
            note=None,
            actor=grid,
            expected_version=None,
        )
    decide_extension(
        session,
        case_id=case.id or 0,
        grant=True,
        note=None,
        actor=staff_actor(city, "supervisor"),
        expected_version=None,
    )
    assert ext.state == ExtensionState.GRANTED and case.resolution_due_at == until
    assert case.reminded_level is None
    # After the (new) deadline it is too late to ask.
    vclock.set(until + timedelta(minutes=1))
    with pytest.raises(GuardFailed):
        request_extension(
            session,
            case_id=case.id or 0,
            until=until + timedelta(days=3),
            reason="late",
            actor=grid,
            expected_version=None,
        )
    verbs = _verbs(session, case)
    assert verbs.count("extension_requested") == 1 and verbs.count("extension_decided") == 1


def test_refused_extension_needs_a_reason_and_keeps_the_limit(
    session: Session, vclock: VirtualClock
) -> None:
    city = build_city(session)
    case = _assigned(session, city)
    due = case.resolution_due_at
    assert due is not None
    request_extension(
        session,
        case_id=case.id or 0,
        until=due + timedelta(days=2),
        reason="材料未齐",
        actor=staff_actor(city, "gridA"),
        expected_version=None,
    )
    sup = staff_actor(city, "supervisor")
    with pytest.raises(ValidationError):
        decide_extension(
            session, case_id=case.id or 0, grant=False, note="", actor=sup, expected_version=None
        )
    ext = decide_extension(
        session,
        case_id=case.id or 0,
        grant=False,
        note="可先电话联系",
        actor=sup,
        expected_version=None,
    )
    assert ext.state == ExtensionState.REFUSED and case.resolution_due_at == due


def test_a_volunteer_helps_records_a_visit_and_it_counts_in_his_workload(
    session: Session, vclock: VirtualClock
) -> None:
    city = build_city(session)
    volunteer = add_staff(session, city, "volunteerA", StaffRole.VOLUNTEER, "CMA")
    outsider = add_staff(session, city, "volunteerB", StaffRole.VOLUNTEER, "CMB")
    member = add_staff(session, city, "partyA", StaffRole.PARTY_MEMBER, "CMA")
    member.employer = "江心市税务局"
    lent = add_staff(session, city, "labour_lent", StaffRole.MEDIATOR, "AG-LAB")
    case = _assigned(session, city)
    grid = staff_actor(city, "gridA")
    with pytest.raises(ValidationError):  # another community's volunteer
        add_helper(
            session,
            case_id=case.id or 0,
            staff_id=outsider.id or 0,
            role=HelperRole.VISIT,
            actor=grid,
            expected_version=None,
        )
    for who, role in (
        (volunteer, HelperRole.VISIT),
        (member, HelperRole.ASSIST_MEDIATION),
        (lent, HelperRole.LEGAL_EDUCATION),
    ):
        add_helper(
            session,
            case_id=case.id or 0,
            staff_id=who.id or 0,
            role=role,
            actor=grid,
            expected_version=None,
        )
    task = record_helper_task(
        session,
        case_id=case.id or 0,
        kind=HelperTaskKind.VISIT,
        note="走访申请人，了解欠薪经过，情绪稳定",
        actor=staff_actor(city, "volunteerA"),
        expected_version=None,
    )
    assert task.staff_id == volunteer.id and task.done_at == vclock.now()
    with pytest.raises(GuardFailed):  # not a helper here
        record_helper_task(
            session,
            case_id=case.id or 0,
            kind=HelperTaskKind.VISIT,
            note="x",
            actor=staff_actor(city, "volunteerB"),
            expected_version=None,
        )
    load = workload(session, staff_id=volunteer.id or 0)
    assert (load.handling, load.helping, load.tasks_done) == (0, 1, 1)
    assert workload(session, staff_id=city.staff["gridA"].id or 0).handling == 1
    assert _verbs(session, case).count("helper_added") == 3


def test_limits_run_from_receipt_and_received_at_is_checked(
    session: Session, vclock: VirtualClock
) -> None:
    build_city(session)
    received = vclock.now() - timedelta(days=2)
    case = create_case(
        session, data=case_data(received_at=received, people_affected=1), actor=SYSTEM
    )
    triage_case(session, case_id=case.id or 0, actor=SYSTEM)
    # The compound's 5 working days count from when the complaint was received.
    assert case.resolution_due_at == workdays.add_working_days(received, 5)
    for bad in (
        vclock.now() + timedelta(hours=1),
        vclock.now() - timedelta(days=45),
        received.replace(tzinfo=None),
    ):
        with pytest.raises(ValidationError):
            create_case(session, data=case_data(received_at=bad), actor=SYSTEM)
    assert session.exec(select(FollowUp)).all() == []
