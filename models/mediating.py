"""Mediation services: consent, sessions, agreement or failure, extension, and the other
ways a case leaves the working states (settled directly, withdrawn, merged).

Mediation is voluntary (People's Mediation Law): no consent of every party, no
mediation; it should end within about a month, extendable when both parties agree; a
signed agreement may be confirmed by a court on the parties' joint application within
30 days (司法确认); a failed mediation never blocks arbitration or court, so a failure
may name the referral in the same transaction.

Every service is keyword-only, takes the caller's ``session``, validates here, changes
status only through :func:`models.lifecycle.apply` and only ``flush()``es. Free text
that goes into event data (reasons, resolutions) is passed through
:func:`models.pii.scrub_text`, because events travel to the orchestration layer.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session

from models import clock, lifecycle, referrals, workdays
from models.acceptance import route_guidance
from models.access import Actor
from models.case import Case
from models.cases import get_case, parties_of
from models.enums import (
    CaseStatus,
    ConsentMethod,
    ReferralReason,
    ReferralTarget,
    TerminationReason,
)
from models.errors import (
    FieldProblem,
    GuardFailed,
    NotFound,
    ValidationError,
)
from models.follow_ups import schedule_follow_ups
from models.guards import CLOCK_TOLERANCE, event_text, invalid, required_text
from models.mediation import (
    Agreement,
    AgreementCreate,
    AgreementTerm,
    MediationSession,
    SessionCreate,
)
from models.mediators import require_serving, serving_ids
from models.party import Party, PartyConsent
from models.routing import paired_agency
from models.rows import rows_of
from models.settings import get_settings
from models.unit import Unit

S = CaseStatus
COURT_CONFIRMATION_DAYS = 30


# --- helpers ---------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """Same day ``months`` later, clamped to the month's last day (31 Jan -> 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def end_of_local_day(day: date) -> datetime:
    """Midnight at the end of ``day`` in Asia/Shanghai, as aware UTC."""
    return workdays.end_of_day(workdays.at_local(day, time(12, 0)))


def _touch_response(session: Session, case: Case, actor: Actor, at: datetime, verb: str) -> None:
    """Consent and a direct settlement need the complainant in the room: when no first
    contact was recorded before, the action is one (for the response rate)."""
    from models.contact import note_contact  # contact imports this module

    note_contact(session, case=case, actor=actor, at=at, verb=verb)


def _check_moment(
    case: Case, value: datetime, field: str, *, not_before: datetime | None = None
) -> datetime:
    moment = clock.ensure_utc(value)
    if moment > clock.now() + CLOCK_TOLERANCE:
        raise invalid(field, "must not be in the future", "不能晚于当前时间")
    earliest = clock.ensure_utc(not_before or case.created_at)
    if moment < earliest:
        raise invalid(
            field,
            f"must not be before {clock.format_local(earliest)}",
            f"不能早于 {clock.format_local(earliest)}",
        )
    return moment


# --- consent and the start of mediation --------------------------------------------------


def record_consent(
    session: Session,
    *,
    case_id: int,
    party_ids: list[int] | None,
    actor: Actor,
    expected_version: int | None,
    given: bool = True,
    how: ConsentMethod = ConsentMethod.IN_PERSON,
    note: str = "",
) -> Case:
    """Record that parties agree to mediation (``None``: all of them), and how they said
    so. When every party whose consent is needed has consented, ``case.consent_at`` is
    set and mediation may start. A refusal (``given=False``) ends it: no mediation
    against a party's will (人民调解法 第十七条); the parties are told their routes."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_status(case, {S.ASSIGNED}, "record consent for", "记录调解同意")
    parties = parties_of(session, case_id=case_id)
    chosen = _chosen_parties(parties, party_ids)
    text = (note or "").strip()[:500]
    now = clock.now()
    for party in chosen:
        party.consented = given
        party.refused = not given
        session.add(party)
        session.add(
            PartyConsent(
                case_id=case_id,
                party_id=party.id or 0,
                given=given,
                how=how,
                note=text,
                recorded_by_id=actor.staff_id,
                recorded_at=now,
            )
        )
    _touch_response(session, case, actor, now, "consent_recorded")
    ids = sorted(int(p.id) for p in chosen if p.id)
    if not given:
        return _refused(step, party_ids=ids, how=how)
    all_consented = all(p.consented for p in parties if p.consent_required)
    if all_consented and case.consent_at is None:
        case.consent_at = now
    step.record(
        "consent_recorded", {"party_ids": ids, "all_consented": all_consented, "how": how.value}
    )
    return case


def _chosen_parties(parties: list[Party], party_ids: list[int] | None) -> list[Party]:
    if not parties:
        raise invalid(
            "party_ids",
            "the case has no parties recorded; add them before recording consent",
            "案件尚未登记当事人，请先登记当事人再记录调解同意",
        )
    by_id = {p.id: p for p in parties}
    chosen = [p for p in parties if p.consent_required] if party_ids is None else None
    if chosen is None:
        wanted = list(dict.fromkeys(party_ids or []))
        if not wanted:
            raise invalid("party_ids", "name at least one party", "请至少选择一位当事人")
        unknown = [pid for pid in wanted if pid not in by_id]
        if unknown:
            raise invalid(
                "party_ids",
                f"not parties of this case: {unknown}",
                f"以下编号不是本案当事人：{unknown}",
            )
        chosen = [by_id[pid] for pid in wanted]
    return chosen


def _refused(step: lifecycle.Step, *, party_ids: list[int], how: ConsentMethod) -> Case:
    """A party refused mediation: it is not mediated (人民调解法第十七条); the parties
    are pointed to the court."""
    case = step.case
    route = ReferralTarget.COURT
    case.consent_at = None
    case.referral_target = route
    case.outcome_note = (
        f"{TerminationReason.PARTY_REFUSES.zh}，依法不予调解（人民调解法第十七条）。"
        f"{route_guidance(route)}"
    )
    step.record(
        "mediation_refused",
        {
            "party_ids": party_ids,
            "how": how.value,
            "reason": TerminationReason.PARTY_REFUSES.value,
            "route": route.value,
        },
    )
    return case


def record_declined(
    session: Session, *, case_id: int, party_id: int, actor: Actor, note: str = ""
) -> Case:
    """A party said no through their own page or link (the complainant's page, the
    respondent's invitation). A party's refusal means no mediation (人民调解法 第十七条),
    so consent is withdrawn and mediation cannot start (:func:`declined_parties`); the
    case stays with its handler, who confirms the refusal with the party and records it
    (:func:`record_consent` with ``given=False``: the case ends, the routes are told), or
    records their consent if they change their mind."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=None)
    case = step.case
    lifecycle.require_status(case, {S.ASSIGNED}, "record a refusal for", "记录不同意调解")
    party = next((p for p in parties_of(session, case_id=case_id) if p.id == party_id), None)
    if party is None:
        raise NotFound(f"no party {party_id} on this case", "本案没有该当事人")
    party.consented, party.refused = False, True
    session.add(party)
    case.consent_at = None
    text = note.strip()[:500]
    session.add(
        PartyConsent(
            case_id=case_id,
            party_id=party_id,
            given=False,
            how=ConsentMethod.RESIDENT_LINK,
            note=text,
            recorded_by_id=None,
            recorded_at=clock.now(),
        )
    )
    step.record(
        "resident_consent_refused",
        {"party_id": party_id, "side": party.side.value, "note": text},
    )
    return case


def declined_parties(session: Session, *, case: Case) -> list[Party]:
    """Parties whose refusal is on record while the case waits (no mediation for now)."""
    assert case.id is not None
    return declined_among(parties_of(session, case_id=case.id))


def declined_among(parties: Sequence[Party]) -> list[Party]:
    """:func:`declined_parties` among the case's parties read already."""
    return [p for p in parties if p.refused]


def ready_to_start(session: Session, *, case: Case) -> bool:
    """Whether mediation may start now: accepted, consented, a mediator named, and no
    party has refused."""
    assert case.id is not None
    return (
        case.status == S.ASSIGNED
        and case.accepted_at is not None
        and case.consent_at is not None
        and bool(serving_ids(session, case_id=case.id))
        and not declined_parties(session, case=case)
    )


def mediation_limit_due(start: datetime) -> datetime:
    """The end of the day the mediation limit (a policy setting, about a month) passes."""
    months = get_settings().mediation_limit_months
    return end_of_local_day(add_months(workdays.local_date(start), months))


def set_mediation_limit(case: Case, due: datetime) -> None:
    """The mediation limit becomes the case's deadline: the sweep reminds before it and
    escalates when it passes, as for any other limit."""
    lead = timedelta(days=get_settings().mediation_reminder_days)
    case.mediation_due_at = due
    case.resolution_due_at = due
    case.next_reminder_at = due - lead
    case.reminded_level = None


def start_mediation(
    session: Session, *, case_id: int, actor: Actor, expected_version: int | None = None
) -> Case:
    """Open mediation once the dispute is accepted, a mediator is named and every party
    whose consent is needed has consented; it is due one month later (setting)."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_status(case, {S.ASSIGNED}, "start mediation on", "开始调解")
    if case.accepted_at is None:
        raise GuardFailed(
            "the dispute has not been accepted for mediation (受理审查)",
            "纠纷尚未经受理审查予以受理，不能开始调解。",
        )
    if declined_parties(session, case=case):
        raise GuardFailed(
            "a party declined mediation: it may not go ahead (People's Mediation Law, "
            "Art. 17); confirm with them and record the refusal, or their consent",
            "有当事人表示不同意调解，依法不得调解（人民调解法第十七条）。"
            "请与其核实后记录拒绝调解（并告知其他解决途径），或记录其同意。",
        )
    if case.consent_at is None:
        raise GuardFailed(
            "mediation is voluntary: every party must consent before it starts",
            "调解须当事人自愿：所有当事人同意调解后才能开始。",
        )
    assert case.id is not None
    if not serving_ids(session, case_id=case.id):
        raise GuardFailed(
            "name a mediator before mediation starts", "开始调解前须由调委会指定调解员。"
        )
    now = clock.now()
    set_mediation_limit(case, mediation_limit_due(now))
    _touch_response(session, case, actor, now, "mediation_started")
    assert case.mediation_due_at is not None
    step.record(
        "mediation_started",
        {"mediation_due_on": workdays.local_date(case.mediation_due_at).isoformat()},
    )
    return case


def extend_mediation(
    session: Session,
    *,
    case_id: int,
    until: date,
    both_parties_consent: bool,
    actor: Actor,
    expected_version: int | None,
    how: ConsentMethod = ConsentMethod.IN_PERSON,
    note: str = "",
) -> Case:
    """Extend the mediation limit to the end of ``until``: both parties must agree (how
    they said so is recorded), and the extension must be asked for before the current
    limit passes. The new limit is reminded and escalated like the first."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_status(case, {S.IN_MEDIATION}, "extend mediation of", "延长调解期限")
    lifecycle.require_staff(actor, "extending mediation", "延长调解期限")
    if not both_parties_consent:
        raise invalid(
            "both_parties_consent",
            "mediation may be extended only when both parties agree",
            "须双方当事人同意才能延长调解期限",
        )
    now = clock.now()
    current = case.mediation_due_at
    if current is not None and now >= clock.ensure_utc(current):
        raise GuardFailed(
            "the extension must be requested before the mediation limit "
            f"({clock.format_local(current)}) passes",
            f"延期须在调解期限（{clock.format_local(current)}）届满前申请。",
        )
    new_due = end_of_local_day(until)
    floor = clock.ensure_utc(current) if current is not None else now
    if new_due <= floor:
        raise invalid(
            "until",
            f"must be later than the current limit {clock.format_local(floor)}",
            f"应晚于当前期限 {clock.format_local(floor)}",
        )
    set_mediation_limit(case, new_due)
    step.record(
        "mediation_extended",
        {
            "until": until.isoformat(),
            "both_parties_consent": True,
            "how": how.value,
            "note": event_text(note.strip()) if note.strip() else None,
        },
    )
    return case


# --- sessions, agreement, failure --------------------------------------------------------


def record_session(
    session: Session,
    *,
    case_id: int,
    data: SessionCreate,
    actor: Actor,
    expected_version: int | None,
) -> MediationSession:
    """Record one mediation session with its minutes (调解笔录)."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_status(case, {S.IN_MEDIATION}, "record a session for", "记录调解笔录")
    lifecycle.require_staff(actor, "recording a session", "记录调解笔录")
    require_serving(session, case=case, actor=actor, what_zh="记录调解笔录")
    held_at = _check_moment(case, data.held_at, "held_at")
    assert case.id is not None
    row = MediationSession(
        case_id=case.id,
        held_at=held_at,
        place=data.place,
        participants=data.participants,
        minutes=data.minutes,
        recorded_by_id=actor.staff_id,
        recorded_at=clock.now(),
    )
    session.add(row)
    session.flush()
    step.record("session_recorded", {"session_id": row.id})
    return row


def sign_agreement(
    session: Session,
    *,
    case_id: int,
    data: AgreementCreate,
    actor: Actor,
    expected_version: int | None,
) -> Agreement:
    """Record the signed agreement with its terms; the court-confirmation window closes
    30 days after the signing date."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_status(case, {S.IN_MEDIATION}, "sign an agreement for", "达成协议")
    lifecycle.require_staff(actor, "signing an agreement", "达成协议")
    require_serving(session, case=case, actor=actor, what_zh="签署调解协议")
    if not data.terms:
        raise invalid(
            "terms",
            "an agreement needs at least one term with its due date",
            "调解协议至少应有一项履行条款及其期限",
        )
    # A reopened case is settled anew: its new agreement is signed after the reopening.
    not_before = clock.ensure_utc(case.reopened_at or case.created_at)
    signed_at = _check_moment(
        case, data.signed_at or clock.now(), "signed_at", not_before=not_before
    )
    signed_on = workdays.local_date(signed_at)
    problems = [
        FieldProblem(
            f"terms.{i}.due_on",
            f"履行期限不能早于签订日期 {signed_on.isoformat()}",
            f"due date must not be before the signing date {signed_on.isoformat()}",
        )
        for i, term in enumerate(data.terms)
        if term.due_on < signed_on
    ]
    if problems:
        raise ValidationError(
            "terms: due dates must not be before the signing date",
            "条款：履行期限不能早于协议签订日期",
            problems=problems,
        )
    assert case.id is not None
    agreement = Agreement(
        # What the form says is what is kept; the moment and the terms are read above.
        **data.model_dump(exclude={"signed_at", "terms"}),
        case_id=case.id,
        signed_at=signed_at,
        mediator_ids=serving_ids(session, case_id=case.id),
        effective_on=signed_on,
        court_confirmation_deadline=signed_on + timedelta(days=COURT_CONFIRMATION_DAYS),
    )
    session.add(agreement)
    session.flush()
    assert agreement.id is not None
    for term in data.terms:
        session.add(
            AgreementTerm(
                agreement_id=agreement.id, text=term.text, due_on=term.due_on, how=term.how
            )
        )
    step.record(
        "agreement_signed",
        {
            "agreement_id": agreement.id,
            "terms": len(data.terms),
            "court_confirmation_deadline": agreement.court_confirmation_deadline.isoformat(),
        },
    )
    return agreement


def fail_mediation(
    session: Session,
    *,
    case_id: int,
    reason: str,
    referral: ReferralTarget | None,
    actor: Actor,
    expected_version: int | None,
    termination: TerminationReason = TerminationReason.NO_AGREEMENT,
) -> Case:
    """Record that mediation ended without agreement (调解不成/终止调解, 人民调解法 第二十六条),
    why, and the route the parties are told about; with ``referral`` the case is also
    referred to arbitration, court or an agency in the same transaction."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_status(
        case, {S.IN_MEDIATION}, "record a failed mediation for", "记录调解不成"
    )
    lifecycle.require_staff(actor, "recording a failed mediation", "记录调解不成")
    text = required_text(reason, "reason", "调解不成的原因", max_length=1200)
    route = referral or ReferralTarget.COURT
    case.outcome_note = (
        f"{termination.zh}：{text}。调解终止，当事人可以依法通过仲裁、行政、司法等途径维护"
        f"自己的权利（人民调解法第二十六条）。{route_guidance(route)}"
    )
    step.record(
        "mediation_failed",
        {
            "reason": event_text(text),
            "termination": termination.value,
            "referral": referral.value if referral else None,
            "route": route.value,
        },
    )
    if referral is not None:
        unit = session.get(Unit, case.unit_id or case.place_unit_id or 0)
        agency = (
            paired_agency(session, unit=unit, category=case.category)
            if unit is not None and referral == ReferralTarget.AGENCY
            else None
        )
        referrals.refer(
            session,
            case=case,
            reason=ReferralReason.MEDIATION_FAILED,
            target=referral,
            agency=agency,
            actor=actor,
            extra={"after": "mediation_failed"},
        )
    session.flush()
    return case


def list_sessions(session: Session, *, case_id: int) -> list[MediationSession]:
    return rows_of(
        session, MediationSession, MediationSession.case_id == case_id, MediationSession.held_at
    )


# --- other ways out of the working states ------------------------------------------------


def resolve_directly(
    session: Session, *, case_id: int, resolution: str, actor: Actor, expected_version: int | None
) -> Case:
    """An assigned case settled without formal mediation (a consultation answered, a
    quick fix): it goes straight to follow-up, and its return visit is scheduled."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_status(case, {S.ASSIGNED}, "resolve directly", "直接办结")
    lifecycle.require_staff(actor, "settling a case directly", "直接办结")
    text = required_text(resolution, "resolution", "处理结果", max_length=2000)
    now = clock.now()
    case.outcome_note = text
    _touch_response(session, case, actor, now, "follow_up_due")
    step.record("follow_up_due", {"resolution": event_text(text)})
    assert case.id is not None
    schedule_follow_ups(session, case_id=case.id, actor=actor)
    session.flush()
    return case


def withdraw_case(
    session: Session, *, case_id: int, reason: str, actor: Actor, expected_version: int | None
) -> Case:
    """The complainant withdraws (撤回); the reason is recorded."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_staff(actor, "withdrawing a case", "撤回")
    text = required_text(reason, "reason", "撤回原因", max_length=2000)
    case.outcome_note = text
    step.record("withdrawn", {"reason": event_text(text)})
    return case


def merge_case(
    session: Session, *, case_id: int, into_case_id: int, actor: Actor, expected_version: int | None
) -> Case:
    """Merge a case into another open case about the same matter (合并)."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    if into_case_id == case_id:
        raise invalid("into_case_id", "a case cannot be merged into itself", "不能合并到本案自身")
    try:
        target = get_case(session, case_id=into_case_id)
    except NotFound:
        raise invalid(
            "into_case_id", f"no case {into_case_id}", f"案件 {into_case_id} 不存在"
        ) from None
    if not target.is_open or target.merged_into_id is not None:
        raise invalid(
            "into_case_id",
            f"case {target.number} is {target.status.value}; merge into an open case",
            f"案件 {target.number} 当前为「{target.status.zh}」，只能合并到办理中的案件",
        )
    case.merged_into_id = into_case_id
    data: dict[str, Any] = {"into_case_id": into_case_id, "into_number": target.number}
    step.record("merged", data)
    return case
