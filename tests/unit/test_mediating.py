"""Mediation: consent first, sessions with minutes, an agreement with terms (and its
30-day court-confirmation window) or a failure with its referral, and the other ways
out of the working states."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from pydantic import ValidationError as SchemaError
from sqlmodel import Session, col, select

from models import clock, lifecycle, text_numbers
from models.case import Case
from models.enums import CaseStatus, FollowUpOutcome, ReferralTarget
from models.errors import ConflictError, GuardFailed, InvalidTransition, ValidationError
from models.event import CaseEvent
from models.follow_up import FollowUpRecord
from models.follow_ups import record_follow_up, schedule_follow_ups, settle_after_follow_up
from models.mediating import (
    add_months,
    extend_mediation,
    fail_mediation,
    list_sessions,
    merge_case,
    record_consent,
    record_session,
    resolve_directly,
    sign_agreement,
    start_mediation,
    withdraw_case,
)
from models.mediation import AgreementCreate, AgreementPublic, SessionCreate, SessionPublic
from models.party import Party
from tests.factories import (
    ID_NUMBER,
    PHONE,
    accept_for_mediation,
    advance_to_assigned,
    build_city,
    make_case,
    staff_actor,
    visit_answers,
)

SH = clock.SHANGHAI


def local(y: int, m: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SH)


def assigned_case(session: Session) -> tuple[Case, lifecycle.Actor]:
    city = build_city(session)
    case = make_case(session)
    advance_to_assigned(session, case, city)
    accept_for_mediation(session, case, city)
    return case, staff_actor(city, "mediatorA")


def in_mediation(session: Session) -> tuple[Case, lifecycle.Actor]:
    case, actor = assigned_case(session)
    assert case.id is not None
    record_consent(
        session, case_id=case.id, party_ids=None, actor=actor, expected_version=case.version
    )
    start_mediation(session, case_id=case.id, actor=actor, expected_version=case.version)
    return case, actor


def agreement_data(**overrides: object) -> AgreementCreate:
    data: dict[str, object] = {
        "summary": "电子厂于约定日期前分两期支付拖欠工资。",
        "terms": [
            {"text": "支付第一期工资", "due_on": "2026-12-10"},
            {"text": "支付第二期工资", "due_on": "2026-12-31"},
        ],
    }
    data.update(overrides)
    return AgreementCreate.model_validate(data)


def verbs(session: Session, case_id: int) -> list[str]:
    return [
        e.verb
        for e in session.exec(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(col(CaseEvent.seq))
        ).all()
    ]


def test_full_life_from_submission_to_closure_stamps_every_state(
    session: Session, vclock: clock.VirtualClock
) -> None:
    city = build_city(session)
    case = make_case(session)  # Mon 30 Nov 2026, 09:00
    assert case.id is not None
    cid = case.id
    mediator = staff_actor(city, "mediatorA")
    worker = staff_actor(city, "workerA")

    vclock.advance(timedelta(hours=1))
    advance_to_assigned(session, case, city)
    vclock.advance(timedelta(hours=2))
    accept_for_mediation(session, case, city)
    record_consent(session, case_id=cid, party_ids=None, actor=worker, expected_version=5)
    vclock.advance(timedelta(hours=1))
    start_mediation(session, case_id=cid, actor=mediator, expected_version=6)
    vclock.set(local(2026, 12, 2, 14))
    record_session(
        session,
        case_id=cid,
        data=SessionCreate(
            held_at=local(2026, 12, 2, 10),
            place="桂花社区调解室",
            participants="申请人代表、电子厂负责人、调解员",
            minutes="双方同意分期支付。",
        ),
        actor=mediator,
        expected_version=7,
    )
    vclock.set(local(2026, 12, 3, 16))
    agreement = sign_agreement(
        session, case_id=cid, data=agreement_data(), actor=mediator, expected_version=8
    )
    visits = schedule_follow_ups(session, case_id=cid, actor=lifecycle.Actor.system())
    vclock.set(local(2026, 12, 4, 10))
    for visit in visits:
        record_follow_up(
            session,
            case_id=cid,
            data=FollowUpRecord(
                outcome=FollowUpOutcome.CARRIED_OUT,
                follow_up_id=visit.id,
                notes="电话回访",
                **visit_answers(5),
            ),
            actor=worker,
            expected_version=case.version,
        )
        vclock.advance(timedelta(days=1))
    assert settle_after_follow_up(session, case_id=cid, actor=lifecycle.Actor.system()) == (
        "closed"
    )
    session.commit()

    assert case.status == CaseStatus.CLOSED and not case.is_open
    stamps = [
        case.submitted_at,
        case.triaged_at,
        case.assigned_at,
        case.in_mediation_at,
        case.agreement_at,
        case.follow_up_at,
        case.closed_at,
    ]
    assert all(s is not None for s in stamps)
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    assert case.in_mediation_at == local(2026, 11, 30, 13)
    assert case.agreement_at == local(2026, 12, 3, 16)
    assert case.first_response_at == local(2026, 11, 30, 12)  # acceptance: first staff action
    assert case.satisfaction == 5
    assert agreement.court_confirmation_deadline == date(2027, 1, 2)
    assert verbs(session, cid) == [
        "submitted",
        "triaged",
        "assigned",
        "acceptance_reviewed",
        "mediators_named",
        "consent_recorded",
        "mediation_started",
        "session_recorded",
        "agreement_signed",
        "follow_up_due",
        *["follow_up_recorded"] * len(visits),
        "closed",
    ]
    assert case.version == len(verbs(session, cid))
    assert lifecycle.verify_chain(session, case_id=cid) == []


def test_no_mediation_without_every_partys_consent(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = assigned_case(session)
    assert case.id is not None
    with pytest.raises(GuardFailed) as refused:
        start_mediation(session, case_id=case.id, actor=actor, expected_version=case.version)
    assert "自愿" in refused.value.message_zh

    parties = session.exec(select(Party).where(Party.case_id == case.id)).all()
    complainant = parties[0]
    record_consent(
        session,
        case_id=case.id,
        party_ids=[complainant.id or 0],
        actor=actor,
        expected_version=case.version,
    )
    assert case.consent_at is None  # the firm has not agreed yet
    with pytest.raises(GuardFailed):
        start_mediation(session, case_id=case.id, actor=actor)

    record_consent(
        session,
        case_id=case.id,
        party_ids=[parties[1].id or 0],
        actor=actor,
        expected_version=case.version,
    )
    assert case.consent_at == clock.now()
    start_mediation(session, case_id=case.id, actor=actor, expected_version=case.version)
    assert case.status == CaseStatus.IN_MEDIATION


def test_consent_refuses_strangers_and_stale_versions(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = assigned_case(session)
    assert case.id is not None
    with pytest.raises(ValidationError) as bad:
        record_consent(
            session, case_id=case.id, party_ids=[9999], actor=actor, expected_version=case.version
        )
    assert bad.value.problems[0].field == "party_ids"
    with pytest.raises(ConflictError):
        record_consent(
            session, case_id=case.id, party_ids=None, actor=actor, expected_version=case.version - 1
        )
    assert case.consent_at is None


def test_mediation_is_due_one_calendar_month_later_at_the_end_of_that_day(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, _actor = in_mediation(session)
    # Started Monday 30 Nov 2026 (Shanghai): due at the end of 30 Dec.
    assert case.mediation_due_at == local(2026, 12, 31, 0)
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)


def test_extension_needs_both_parties_and_must_come_before_the_limit(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = in_mediation(session)
    assert case.id is not None
    with pytest.raises(ValidationError) as no_consent:
        extend_mediation(
            session,
            case_id=case.id,
            until=date(2027, 1, 20),
            both_parties_consent=False,
            actor=actor,
            expected_version=case.version,
        )
    assert no_consent.value.problems[0].field == "both_parties_consent"
    with pytest.raises(ValidationError):  # not later than the current limit
        extend_mediation(
            session,
            case_id=case.id,
            until=date(2026, 12, 20),
            both_parties_consent=True,
            actor=actor,
            expected_version=case.version,
        )
    extend_mediation(
        session,
        case_id=case.id,
        until=date(2027, 1, 20),
        both_parties_consent=True,
        actor=actor,
        expected_version=case.version,
    )
    assert case.mediation_due_at == local(2027, 1, 21, 0)
    vclock.set(local(2027, 1, 21, 8))  # the extended limit has passed
    with pytest.raises(GuardFailed) as late:
        extend_mediation(
            session,
            case_id=case.id,
            until=date(2027, 2, 20),
            both_parties_consent=True,
            actor=actor,
            expected_version=case.version,
        )
    assert "届满前" in late.value.message_zh


def test_no_agreement_without_terms(session: Session, vclock: clock.VirtualClock) -> None:
    case, actor = in_mediation(session)
    assert case.id is not None
    with pytest.raises(SchemaError):
        agreement_data(terms=[])
    # Built around the schema's own checks, the domain still refuses it.
    empty = AgreementCreate.model_construct(summary="口头和解", signed_at=None, terms=[])
    with pytest.raises(ValidationError) as refused:
        sign_agreement(session, case_id=case.id, data=empty, actor=actor, expected_version=None)
    assert refused.value.problems[0].field == "terms"
    assert case.status == CaseStatus.IN_MEDIATION


def test_terms_cannot_fall_due_before_signing(session: Session, vclock: clock.VirtualClock) -> None:
    case, actor = in_mediation(session)
    assert case.id is not None
    data = agreement_data(
        terms=[
            {"text": "当场支付", "due_on": "2026-11-30"},
            {"text": "补交社保", "due_on": "2026-11-20"},
        ]
    )
    with pytest.raises(ValidationError) as refused:
        sign_agreement(session, case_id=case.id, data=data, actor=actor, expected_version=None)
    assert [p.field for p in refused.value.problems] == ["terms.1.due_on"]


def test_court_confirmation_window_is_30_days_from_the_signing_date(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = in_mediation(session)
    assert case.id is not None
    vclock.set(local(2026, 12, 20, 23, 30))  # late evening: still the 20th in Shanghai
    agreement = sign_agreement(
        session,
        case_id=case.id,
        data=agreement_data(
            signed_at=local(2026, 12, 20, 23, 15).isoformat(),
            terms=[{"text": "赔偿", "due_on": "2026-12-20"}],
        ),
        actor=actor,
        expected_version=case.version,
    )
    assert agreement.court_confirmation_deadline == date(2027, 1, 19)
    assert case.status == CaseStatus.AGREEMENT
    event = session.exec(select(CaseEvent).where(CaseEvent.verb == "agreement_signed")).one()
    assert event.data["agreement_id"] == agreement.id
    shown = AgreementPublic.of(agreement, [])
    assert shown.court_confirmation_deadline == date(2027, 1, 19)


def test_a_signing_time_in_the_future_is_refused(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = in_mediation(session)
    assert case.id is not None
    data = agreement_data(signed_at=(clock.now() + timedelta(days=1)).isoformat())
    with pytest.raises(ValidationError) as refused:
        sign_agreement(session, case_id=case.id, data=data, actor=actor, expected_version=None)
    assert refused.value.problems[0].field == "signed_at"


def test_sessions_only_during_mediation_and_minutes_are_masked_when_shown(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = assigned_case(session)
    assert case.id is not None
    data = SessionCreate(
        held_at=clock.now(),
        place="调解室",
        participants="双方",
        minutes=f"申请人留下电话 {PHONE}，身份证 {ID_NUMBER}。",
    )
    with pytest.raises(InvalidTransition):
        record_session(session, case_id=case.id, data=data, actor=actor, expected_version=None)
    record_consent(session, case_id=case.id, party_ids=None, actor=actor, expected_version=None)
    start_mediation(session, case_id=case.id, actor=actor)
    row = record_session(session, case_id=case.id, data=data, actor=actor, expected_version=None)
    assert [s.id for s in list_sessions(session, case_id=case.id)] == [row.id]
    shown = SessionPublic.of(row)
    assert PHONE not in shown.minutes and ID_NUMBER not in shown.minutes
    assert "138****8000" in shown.minutes
    # Stored masked; the numbers were moved to the case's encrypted rows.
    assert PHONE not in SessionPublic.of(row, reveal=True).minutes
    taken = text_numbers.numbers_of(session, case_id=case.id, reveal=True)
    assert {n["value"] for n in taken if n["field"] == "mediation_session.minutes"} == {
        PHONE,
        ID_NUMBER,
    }
    event = session.exec(select(CaseEvent).where(CaseEvent.verb == "session_recorded")).one()
    assert event.data == {"session_id": row.id}
    with pytest.raises(SchemaError):
        SessionCreate.model_validate(
            {"held_at": "2026-12-01T10:00:00", "place": "x", "participants": "x", "minutes": "x"}
        )


def test_failure_with_referral_keeps_the_road_to_arbitration_open(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = in_mediation(session)
    assert case.id is not None
    with pytest.raises(ValidationError):
        fail_mediation(
            session,
            case_id=case.id,
            reason="  ",
            referral=None,
            actor=actor,
            expected_version=case.version,
        )
    fail_mediation(
        session,
        case_id=case.id,
        reason=f"企业拒绝支付，申请人电话 {PHONE}",
        referral=ReferralTarget.ARBITRATION,
        actor=actor,
        expected_version=case.version,
    )
    assert case.status == CaseStatus.REFERRED
    assert case.mediation_failed_at is not None and case.referred_at is not None
    assert case.referral_target == ReferralTarget.ARBITRATION
    events = session.exec(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
    failed = next(e for e in events if e.verb == "mediation_failed")
    assert failed.data["referral"] == "arbitration"
    assert PHONE not in str([e.data for e in events])  # events reach Prefect: masked
    referred = next(e for e in events if e.verb == "referred")
    assert referred.data["target"] == "arbitration"
    assert referred.data["reason"] == "mediation_failed"


def test_failure_without_referral_goes_to_follow_up(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = in_mediation(session)
    assert case.id is not None
    fail_mediation(
        session,
        case_id=case.id,
        reason="双方分歧过大",
        referral=None,
        actor=actor,
        expected_version=case.version,
    )
    assert case.status == CaseStatus.MEDIATION_FAILED and case.referral_target is None
    schedule_follow_ups(session, case_id=case.id, actor=lifecycle.Actor.system())
    assert case.status == CaseStatus.FOLLOW_UP


def test_resolving_directly_needs_the_resolution_and_schedules_the_visit(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = assigned_case(session)
    assert case.id is not None
    with pytest.raises(ValidationError):
        resolve_directly(
            session, case_id=case.id, resolution="", actor=actor, expected_version=case.version
        )
    resolve_directly(
        session,
        case_id=case.id,
        resolution="已向申请人解答劳动仲裁申请流程。",
        actor=actor,
        expected_version=case.version,
    )
    assert case.status == CaseStatus.FOLLOW_UP
    assert case.outcome_note == "已向申请人解答劳动仲裁申请流程。"
    visits = schedule_follow_ups(session, case_id=case.id, actor=actor)
    assert len(visits) == 1 and visits[0].kind.value == "after_closure"


def test_withdraw_and_merge(session: Session, vclock: clock.VirtualClock) -> None:
    city = build_city(session)
    actor = staff_actor(city, "workerA")
    first = make_case(session)
    second = make_case(session)
    third = make_case(session)
    for c in (first, second, third):
        advance_to_assigned(session, c, city)
    assert first.id and second.id and third.id

    with pytest.raises(ValidationError):
        merge_case(
            session, case_id=second.id, into_case_id=second.id, actor=actor, expected_version=None
        )
    merge_case(
        session,
        case_id=second.id,
        into_case_id=first.id,
        actor=actor,
        expected_version=second.version,
    )
    assert second.status == CaseStatus.MERGED and second.merged_into_id == first.id
    with pytest.raises(ValidationError) as closed_target:
        merge_case(
            session, case_id=third.id, into_case_id=second.id, actor=actor, expected_version=None
        )
    assert closed_target.value.problems[0].field == "into_case_id"

    with pytest.raises(ValidationError):
        withdraw_case(session, case_id=third.id, reason="", actor=actor, expected_version=None)
    withdraw_case(
        session,
        case_id=third.id,
        reason="申请人已与企业自行和解",
        actor=actor,
        expected_version=third.version,
    )
    assert third.status == CaseStatus.WITHDRAWN and third.withdrawn_at is not None
    with pytest.raises(GuardFailed):  # the system may not withdraw for the resident
        withdraw_case(
            session,
            case_id=first.id,
            reason="x",
            actor=lifecycle.Actor.system(),
            expected_version=None,
        )
