"""Return visits on the right working days (across the 2026 National Day holiday and its
make-up Saturday), recording them, and what follows: reopen on dissatisfaction through
the unit's fault, wait for later visits, close otherwise."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from pydantic import ValidationError as SchemaError
from sqlmodel import Session, col, select

from models import clock, lifecycle
from models.case import Case
from models.enums import CaseStatus, FollowUpKind, FollowUpOutcome
from models.errors import GuardFailed, InvalidTransition, ValidationError
from models.event import CaseEvent
from models.follow_up import FollowUp, FollowUpPublic, FollowUpRecord
from models.follow_ups import (
    due_follow_ups,
    list_follow_ups,
    record_follow_up,
    reopen_case,
    schedule_follow_ups,
    settle_after_follow_up,
)
from models.mediating import record_consent, sign_agreement, start_mediation
from models.mediation import AgreementCreate
from models.party import Party
from tests.factories import (
    PHONE,
    accept_for_mediation,
    advance_to_assigned,
    build_city,
    make_case,
    staff_actor,
    visit_answers,
)

SH = clock.SHANGHAI
SYSTEM = lifecycle.Actor.system()


def local(y: int, m: int, d: int, h: int = 9) -> datetime:
    return datetime(y, m, d, h, tzinfo=SH)


def agreed_before_national_day(
    session: Session, vclock: clock.VirtualClock, due: list[str]
) -> tuple[Case, lifecycle.Actor]:
    """A labour case settled on Wednesday 30 Sep 2026, the last working day before the
    National Day holiday (1-7 Oct; Saturday 10 Oct is a make-up working day)."""
    vclock.set(local(2026, 9, 28))
    city = build_city(session)
    case = make_case(session)
    advance_to_assigned(session, case, city)
    accept_for_mediation(session, case, city)
    actor = staff_actor(city, "mediatorA")
    assert case.id is not None
    record_consent(session, case_id=case.id, party_ids=None, actor=actor, expected_version=None)
    start_mediation(session, case_id=case.id, actor=actor)
    vclock.set(local(2026, 9, 30, 16))
    sign_agreement(
        session,
        case_id=case.id,
        data=AgreementCreate.model_validate(
            {
                "summary": "分期支付欠薪",
                "terms": [{"text": f"第{i + 1}期", "due_on": d} for i, d in enumerate(due)],
            }
        ),
        actor=actor,
        expected_version=None,
    )
    return case, actor


def record(
    session: Session,
    case: Case,
    actor: lifecycle.Actor,
    rating: int | None,
    *,
    fault: bool = False,
    outcome: FollowUpOutcome = FollowUpOutcome.CARRIED_OUT,
) -> FollowUp:
    return record_follow_up(
        session,
        case_id=case.id or 0,
        data=FollowUpRecord(
            outcome=outcome, unit_at_fault=fault, notes="电话回访", **visit_answers(rating)
        ),
        actor=actor,
        expected_version=case.version,
    )


def test_visits_fall_on_working_days_across_the_national_day_holiday(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, _ = agreed_before_national_day(
        session, vclock, ["2026-10-02", "2026-10-12", "2026-10-20"]
    )
    visits = schedule_follow_ups(session, case_id=case.id or 0, actor=SYSTEM)
    assert case.status == CaseStatus.FOLLOW_UP
    assert [(v.kind, clock.to_local(v.due_at)) for v in visits] == [
        # The next working day after 30 Sep is Thursday 8 Oct.
        (FollowUpKind.AFTER_AGREEMENT, local(2026, 10, 8)),
        # Term due Mon 12 Oct: the working day before is the make-up Saturday 10 Oct.
        (FollowUpKind.BEFORE_TERM_DUE, local(2026, 10, 10)),
        # Term due Tue 20 Oct: Monday 19 Oct.
        (FollowUpKind.BEFORE_TERM_DUE, local(2026, 10, 19)),
    ]  # the term due 2 Oct has no earlier working day left: the 8 Oct visit covers it

    again = schedule_follow_ups(session, case_id=case.id or 0, actor=SYSTEM)
    assert [v.id for v in again] == [v.id for v in visits]
    assert len(list_follow_ups(session, case_id=case.id or 0)) == 3

    assert due_follow_ups(session, now=local(2026, 10, 7, 20)) == []
    assert due_follow_ups(session, now=local(2026, 10, 8)) == [case.id]
    shown = FollowUpPublic.of(visits[0])
    assert shown.kind_zh == "协议回访"


def test_a_visit_after_a_direct_settlement_is_the_next_working_day(
    session: Session, vclock: clock.VirtualClock
) -> None:
    from models.mediating import resolve_directly

    vclock.set(local(2026, 9, 30, 17))  # Wed before the holiday
    city = build_city(session)
    case = make_case(session, priority="consultation")
    advance_to_assigned(session, case, city)
    resolve_directly(
        session,
        case_id=case.id or 0,
        resolution="已答复",
        actor=staff_actor(city, "workerA"),
        expected_version=None,
    )
    [visit] = list_follow_ups(session, case_id=case.id or 0)
    assert visit.kind == FollowUpKind.AFTER_CLOSURE
    assert clock.to_local(visit.due_at) == local(2026, 10, 8)


def test_dissatisfied_through_the_units_fault_reopens(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = agreed_before_national_day(session, vclock, ["2026-10-20"])
    schedule_follow_ups(session, case_id=case.id or 0, actor=SYSTEM)
    vclock.set(local(2026, 10, 8, 10))
    record(session, case, actor, 1, fault=True)
    assert settle_after_follow_up(session, case_id=case.id or 0, actor=SYSTEM) == "reopened"
    assert case.status == CaseStatus.REOPENED and case.satisfaction == 1
    # Idempotent; a new round of mediation needs fresh consent; unmade visits dropped.
    assert settle_after_follow_up(session, case_id=case.id or 0, actor=SYSTEM) == "reopened"
    assert case.consent_at is None
    parties = session.exec(select(Party).where(Party.case_id == case.id)).all()
    assert not any(p.consented for p in parties)
    assert [v.done_at is not None for v in list_follow_ups(session, case_id=case.id or 0)] == [True]
    event = session.exec(
        select(CaseEvent).where(CaseEvent.verb == "reopened").order_by(col(CaseEvent.id))
    ).one()
    assert "单位责任" in event.data["reason"]
    timeline = [
        e.verb for e in session.exec(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
    ]
    assert timeline[-2:] == ["follow_up_recorded", "reopened"]


def test_dissatisfied_without_the_units_fault_waits_for_term_visits_then_closes(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = agreed_before_national_day(session, vclock, ["2026-10-20"])
    schedule_follow_ups(session, case_id=case.id or 0, actor=SYSTEM)
    assert settle_after_follow_up(session, case_id=case.id or 0, actor=SYSTEM) == "waiting"
    vclock.set(local(2026, 10, 8, 10))
    record(session, case, actor, 2, fault=False)
    assert settle_after_follow_up(session, case_id=case.id or 0, actor=SYSTEM) == "waiting"
    assert case.status == CaseStatus.FOLLOW_UP
    vclock.set(local(2026, 10, 19, 15))
    visit = record(session, case, actor, 4)
    assert visit.kind == FollowUpKind.BEFORE_TERM_DUE
    assert settle_after_follow_up(session, case_id=case.id or 0, actor=SYSTEM) == "closed"
    assert case.status == CaseStatus.CLOSED and case.satisfaction == 4
    assert case.closed_at == local(2026, 10, 19, 15)
    assert settle_after_follow_up(session, case_id=case.id or 0, actor=SYSTEM) == "closed"
    assert due_follow_ups(session, now=local(2026, 12, 1)) == []


def test_an_unreachable_resident_still_lets_the_case_close(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = agreed_before_national_day(session, vclock, ["2026-10-02"])
    schedule_follow_ups(session, case_id=case.id or 0, actor=SYSTEM)
    vclock.set(local(2026, 10, 8, 10))
    with pytest.raises(SchemaError):
        FollowUpRecord(outcome=FollowUpOutcome.UNREACHABLE, notes="无人接听", **visit_answers(3))
    record(session, case, actor, None, outcome=FollowUpOutcome.UNREACHABLE)
    assert settle_after_follow_up(session, case_id=case.id or 0, actor=SYSTEM) == "closed"
    closed = session.exec(select(CaseEvent).where(CaseEvent.verb == "closed")).one()
    assert closed.data["unreachable"] is True


def test_recording_checks_the_visit_and_the_state(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = agreed_before_national_day(session, vclock, ["2026-10-20"])
    with pytest.raises(InvalidTransition):  # not in follow-up yet
        record(session, case, actor, 5)
    schedule_follow_ups(session, case_id=case.id or 0, actor=SYSTEM)
    with pytest.raises(ValidationError) as bad:
        record_follow_up(
            session,
            case_id=case.id or 0,
            data=FollowUpRecord(
                outcome=FollowUpOutcome.CARRIED_OUT,
                follow_up_id=9999,
                notes="电话回访",
                **visit_answers(5),
            ),
            actor=actor,
            expected_version=None,
        )
    assert bad.value.problems[0].field == "follow_up_id"
    term_visit = list_follow_ups(session, case_id=case.id or 0)[-1]
    record_follow_up(
        session,
        case_id=case.id or 0,
        data=FollowUpRecord(
            outcome=FollowUpOutcome.CARRIED_OUT,
            follow_up_id=term_visit.id,
            **visit_answers(5),
            notes=f"已回拨 {PHONE}",
        ),
        actor=actor,
        expected_version=case.version,
    )
    assert term_visit.done_at is not None
    assert PHONE not in (FollowUpPublic.of(term_visit).notes or "")
    event = session.exec(select(CaseEvent).where(CaseEvent.verb == "follow_up_recorded")).one()
    assert event.data["follow_up_id"] == term_visit.id and PHONE not in str(event.data)


def test_reopen_by_request_after_closure_and_a_second_round(
    session: Session, vclock: clock.VirtualClock
) -> None:
    case, actor = agreed_before_national_day(session, vclock, ["2026-10-02"])
    schedule_follow_ups(session, case_id=case.id or 0, actor=SYSTEM)
    vclock.set(local(2026, 10, 8, 10))
    record(session, case, actor, 5)
    assert settle_after_follow_up(session, case_id=case.id or 0, actor=SYSTEM) == "closed"

    vclock.set(local(2026, 11, 2, 10))
    with pytest.raises(ValidationError):
        reopen_case(session, case_id=case.id or 0, reason=" ", actor=actor, expected_version=None)
    reopen_case(
        session,
        case_id=case.id or 0,
        reason="企业未按协议支付第二期",
        actor=actor,
        expected_version=case.version,
    )
    assert case.status == CaseStatus.REOPENED and case.is_open
    # Back through triage and assignment, fresh consent, a new agreement.
    case.resolution_due_at = clock.now() + timedelta(days=20)
    lifecycle.apply(session, case=case, verb="triaged", actor=SYSTEM)
    lifecycle.apply(session, case=case, verb="assigned", actor=SYSTEM)
    with pytest.raises(GuardFailed):
        start_mediation(session, case_id=case.id or 0, actor=actor)
    record_consent(
        session, case_id=case.id or 0, party_ids=None, actor=actor, expected_version=None
    )
    start_mediation(session, case_id=case.id or 0, actor=actor)
    sign_agreement(
        session,
        case_id=case.id or 0,
        data=AgreementCreate.model_validate(
            {"summary": "重新约定", "terms": [{"text": "一次付清", "due_on": "2026-11-20"}]}
        ),
        actor=actor,
        expected_version=None,
    )
    visits = schedule_follow_ups(session, case_id=case.id or 0, actor=SYSTEM)
    assert [(v.kind, clock.to_local(v.due_at).date()) for v in visits] == [
        (FollowUpKind.AFTER_AGREEMENT, date(2026, 11, 3)),
        (FollowUpKind.BEFORE_TERM_DUE, date(2026, 11, 19)),
    ]
    assert settle_after_follow_up(session, case_id=case.id or 0, actor=SYSTEM) == "waiting"
