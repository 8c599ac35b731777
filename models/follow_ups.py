"""Return visits (回访): scheduling on working days, recording outcome and satisfaction,
and the decision that follows (close, reopen, or wait for a later visit).

Schedule of a follow-up round (entered when the case moves to ``follow_up``):

* one visit on the next working day after the day the case entered follow-up
  (``AFTER_AGREEMENT`` when an agreement was signed, else ``AFTER_CLOSURE``);
* one visit on the last working day before each agreement term's due date
  (``BEFORE_TERM_DUE``), unless that day is not after the entry day (the first visit
  covers it).

Visits are due at the opening of their day (09:00 Asia/Shanghai). Scheduling is
idempotent: a visit that exists (same kind and day, or same term) is never made twice.

After a recorded visit: a resident rating 1 or 2 (dissatisfied) *and* the unit at fault
reopens the case; visits still open keep it waiting; otherwise it is closed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from models import clock, lifecycle, workdays
from models.access import Actor
from models.case import Case
from models.cases import parties_of, terms_of
from models.enums import CaseStatus, FollowUpKind, FollowUpOutcome, StaffRole, VisitChannel
from models.errors import GuardFailed, InvalidTransition
from models.follow_up import FollowUp, FollowUpRecord
from models.guards import event_text, invalid, required_text
from models.mediation import Agreement, AgreementTerm
from models.rows import rows_of
from models.staff import Staff
from models.unit import Unit

S = CaseStatus
Settlement = Literal["closed", "reopened", "waiting"]
DISSATISFIED_AT_MOST = 2
AFTER_KINDS = (FollowUpKind.AFTER_AGREEMENT, FollowUpKind.AFTER_CLOSURE)


def visit_time(day: date) -> datetime:
    """A return visit is due at the opening of its working day."""
    return workdays.at_local(day, workdays.OPEN)


def working_day_before(day: date) -> date:
    """The last working day strictly before ``day``."""
    day = date.fromordinal(day.toordinal() - 1)
    while not workdays.is_working_day(day):
        day = date.fromordinal(day.toordinal() - 1)
    return day


def current_agreement(session: Session, *, case: Case) -> Agreement | None:
    """The agreement of the current mediation round (none after a reopening, until the
    case is settled again)."""
    assert case.id is not None
    return current_of(case, latest_agreement(session, case_id=case.id))


def latest_agreement(session: Session, *, case_id: int) -> Agreement | None:
    """The case's latest agreement, of whichever round (a reopened case's old one too)."""
    return session.exec(
        select(Agreement)
        .where(Agreement.case_id == case_id)
        .order_by(col(Agreement.signed_at).desc(), col(Agreement.id).desc())
    ).first()


def current_of(case: Case, row: Agreement | None) -> Agreement | None:
    """:func:`current_agreement`, given the case's latest agreement (read already)."""
    if row is None:
        return None
    if case.reopened_at and clock.ensure_utc(row.signed_at) < clock.ensure_utc(case.reopened_at):
        return None
    return row


def list_follow_ups(session: Session, *, case_id: int) -> list[FollowUp]:
    return rows_of(session, FollowUp, FollowUp.case_id == case_id, FollowUp.due_at)


def pick_visitor(session: Session, *, case: Case) -> int | None:
    """Who makes a case's return visits. A referred case is visited by the community that
    referred it (it keeps the case in view): the person who referred it; any other case
    by the return visitor above its unit (an independent visit), else its liaison, else
    its handler."""
    assert case.id is not None
    if case.referral_target is not None and case.referred_by_id is not None:
        # The rule book lets them record the visit and see the contact it needs
        # (models.access.may_see_personal_data); it refused them when this was read from
        # the referral rows, unless they had also recorded the case.
        return case.referred_by_id
    visitor = return_visitor_for(session, case=case)
    if visitor is not None:
        return visitor.id
    return case.liaison_id or case.assignee_id


def return_visitor_for(session: Session, *, case: Case) -> Staff | None:
    """The return visitor (回访员) nearest above the handling unit (its street, else its
    district): neither the handler nor of the handling unit, so the answers count for
    the rates (:func:`is_independent`)."""
    handling = case.unit_path or ""
    rows = session.exec(
        select(Staff, Unit)
        .join(Unit, col(Unit.id) == col(Staff.unit_id))
        .where(col(Staff.role) == StaffRole.RETURN_VISITOR, col(Staff.active).is_(True))
    ).all()
    above = [(u.path, s) for s, u in rows if handling.startswith(u.path) and u.path != handling]
    if not above:
        return None
    return max(above, key=lambda pair: (len(pair[0]), -(pair[1].id or 0)))[1]


def schedule_follow_ups(session: Session, *, case_id: int, actor: Actor) -> list[FollowUp]:
    """Move a settled case (agreement, failed mediation, referral) into follow-up if it is
    not there yet, and create its return visits. Returns the visits of this round."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=None)
    case = step.case
    if case.status in (S.AGREEMENT, S.MEDIATION_FAILED, S.REFERRED):
        step.record("follow_up_due")
    elif case.status == S.ASSIGNED:
        raise InvalidTransition(
            "an assigned case goes to follow-up only when settled directly (record the resolution)",
            "已派单案件须先记录处理结果（直接办结）才能转入回访。",
        )
    elif case.status not in (S.FOLLOW_UP, S.CLOSED):
        raise InvalidTransition(
            f"cannot schedule return visits for a case that is {case.status.value}",
            f"案件当前状态为「{case.status.zh}」，不能安排回访。",
        )
    assert case.id is not None and case.follow_up_at is not None
    entered = workdays.local_date(case.follow_up_at)
    existing = list_follow_ups(session, case_id=case.id)
    agreement = current_agreement(session, case=case)
    kind = FollowUpKind.AFTER_AGREEMENT if agreement else FollowUpKind.AFTER_CLOSURE
    first_due = visit_time(workdays.next_working_day(entered))
    planned: list[FollowUp] = []

    first = next(
        (v for v in existing if v.kind in AFTER_KINDS and clock.ensure_utc(v.due_at) == first_due),
        None,
    )
    visitor = pick_visitor(session, case=case)
    if first is None and case.status == S.FOLLOW_UP:
        first = FollowUp(case_id=case.id, kind=kind, due_at=first_due, visitor_id=visitor)
        session.add(first)
    if first is not None:
        planned.append(first)

    if agreement is not None and agreement.id is not None:
        by_term: dict[int | None, FollowUp] = {v.term_id: v for v in existing if v.term_id}
        for term in terms_of(session, agreement_id=agreement.id):
            visit = by_term.get(term.id)
            if visit is None and case.status == S.FOLLOW_UP and not term.done:
                day = working_day_before(term.due_on)
                if day <= entered:
                    continue  # the first visit, the next working day, covers it
                visit = FollowUp(
                    case_id=case.id,
                    kind=FollowUpKind.BEFORE_TERM_DUE,
                    due_at=visit_time(day),
                    term_id=term.id,
                    visitor_id=visitor,
                )
                session.add(visit)
            if visit is not None:
                planned.append(visit)
    session.flush()
    return sorted(planned, key=lambda v: (clock.ensure_utc(v.due_at), v.id or 0))


def is_independent(case: Case, actor: Actor) -> bool:
    """A visit judges the handling unit only when the visitor is neither the case's
    handler nor of the handling unit (nor of a unit inside it); the complainant's own
    answers through their link are independent by nature."""
    if actor.kind != "staff":
        return True
    if actor.staff_id is not None and actor.staff_id == case.assignee_id:
        return False
    handling, own = case.unit_path or "", actor.unit_path or ""
    return bool(handling) and not own.startswith(handling)


def record_follow_up(
    session: Session,
    *,
    case_id: int,
    data: FollowUpRecord,
    actor: Actor,
    expected_version: int | None,
) -> FollowUp:
    """Fill in a return visit (the one named, else the earliest still open) with its
    outcome and rating; the case's satisfaction becomes the latest rating."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_status(case, {S.FOLLOW_UP}, "record a return visit for", "记录回访")
    if data.channel == VisitChannel.RESIDENT_LINK and actor.kind == "staff":
        raise invalid(
            "channel",
            "answers through the resident's link are given by the resident, not by staff",
            "「居民自评链接」的回答只能由居民本人提交",
        )
    open_visits = [v for v in list_follow_ups(session, case_id=case_id) if v.done_at is None]
    if data.follow_up_id is not None:
        visit = next((v for v in open_visits if v.id == data.follow_up_id), None)
        if visit is None:
            raise invalid(
                "follow_up_id",
                f"no open return visit {data.follow_up_id} on this case",
                f"本案没有待办的回访 {data.follow_up_id}",
            )
    elif open_visits:
        visit = open_visits[0]
    else:
        raise invalid(
            "follow_up_id",
            "no return visit is open on this case; schedule one first",
            "本案没有待办的回访，请先安排回访",
        )
    now = clock.now()
    visit.done_at = now
    visit.outcome = data.outcome
    visit.satisfaction = data.satisfaction
    visit.unit_at_fault = data.unit_at_fault
    visit.notes = data.notes
    visit.recorded_by_id = actor.staff_id
    visit.channel = data.channel
    visit.resolved = data.resolved
    visit.satisfied = data.satisfied
    visit.independent = is_independent(case, actor)
    visit.judged_unit_id = case.unit_id
    visit.judged_unit_path = case.unit_path
    session.add(visit)
    if visit.term_id is not None and data.outcome == FollowUpOutcome.CARRIED_OUT:
        term = session.get(AgreementTerm, visit.term_id)
        if term is not None:
            term.done = True
            session.add(term)
    if data.satisfaction is not None:
        case.satisfaction = data.satisfaction
    session.flush()
    step.record(
        "follow_up_recorded",
        {
            "follow_up_id": visit.id,
            "kind": visit.kind.value,
            "outcome": data.outcome.value,
            "satisfaction": data.satisfaction,
            "resolved": data.resolved.value if data.resolved else None,
            "satisfied": data.satisfied.value if data.satisfied else None,
            "channel": data.channel.value,
            "independent": visit.independent,
            "unit_at_fault": data.unit_at_fault,
        },
    )
    return visit


def _reopen(step: lifecycle.Step, data: dict[str, Any]) -> None:
    """Reopen the step's case. It is mediated again only with fresh consent (mediation
    is voluntary), and the return visits not yet made are dropped: the new settlement
    schedules its own."""
    session, case = step.session, step.case
    assert case.id is not None
    case.consent_at = None
    for visit in list_follow_ups(session, case_id=case.id):
        if visit.done_at is None:
            session.delete(visit)
    for party in parties_of(session, case_id=case.id):
        if party.consented:
            party.consented = False
            session.add(party)
    step.record("reopened", data)


def settle_after_follow_up(session: Session, *, case_id: int, actor: Actor) -> Settlement:
    """Decide what a recorded return visit means for the case. Idempotent: a case already
    closed answers ``"closed"``, one already reopened ``"reopened"``."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=None)
    case = step.case
    if case.status == S.CLOSED:
        return "closed"
    if case.status == S.REOPENED:
        return "reopened"
    lifecycle.require_status(case, {S.FOLLOW_UP}, "settle the follow-up of", "办理回访结论")
    assert case.follow_up_at is not None
    entered = clock.ensure_utc(case.follow_up_at)
    visits = list_follow_ups(session, case_id=case_id)
    done = [v for v in visits if v.done_at is not None and clock.ensure_utc(v.done_at) >= entered]
    if not done:
        return "waiting"
    latest = max(done, key=lambda v: (clock.ensure_utc(v.done_at or entered), v.id or 0))
    if (
        latest.satisfaction is not None
        and latest.satisfaction <= DISSATISFIED_AT_MOST
        and latest.unit_at_fault
    ):
        reason = (
            "回访不满意且属本单位责任 / dissatisfied on the return visit, through the unit's fault"
        )
        _reopen(
            step, {"reason": reason, "follow_up_id": latest.id, "satisfaction": latest.satisfaction}
        )
        return "reopened"
    if any(v.done_at is None for v in visits):
        return "waiting"
    data: dict[str, Any] = {"satisfaction": case.satisfaction, "follow_up_id": latest.id}
    if case.satisfaction is None:
        data["unreachable"] = True
    step.record("closed", data)
    return "closed"


def reopen_case(
    session: Session, *, case_id: int, reason: str, actor: Actor, expected_version: int | None
) -> Case:
    """Reopen a case in follow-up or closed, at the resident's request (重新办理)."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    if case.anonymised_at is not None:
        raise GuardFailed(
            "the case's personal data has been anonymised under the retention rule; "
            "record a new case instead",
            "本案个人信息已按保存期限匿名化，请登记新案件。",
        )
    text = required_text(reason, "reason", "重新办理的原因", max_length=2000)
    lifecycle.require_status(case, {S.FOLLOW_UP, S.CLOSED}, "reopen", "重新办理")
    _reopen(step, {"reason": event_text(text)})
    return case


def due_follow_ups(session: Session, *, now: datetime) -> list[int]:
    """Ids of cases in follow-up with a return visit due by ``now`` and not yet done."""
    rows = session.exec(
        select(FollowUp.case_id)
        .join(Case, col(Case.id) == col(FollowUp.case_id))
        .where(
            col(Case.status) == S.FOLLOW_UP,
            col(FollowUp.done_at).is_(None),
            col(FollowUp.due_at) <= clock.ensure_utc(now),
        )
        .distinct()
        .order_by(col(FollowUp.case_id))
    ).all()
    return [int(r) for r in rows]
