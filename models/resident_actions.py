"""What a resident sees of their case and what they may do on it (after the phone check
or through a link): add information and photos, give or refuse consent to mediation,
confirm that the agreed terms were carried out, answer the return visit.

Each action is an audited event on the case (actor ``resident``, the party's id in the
data). The resident never sees staff names or other parties' data: the view carries the
handling unit, the status, the next step, the deadlines and the outcome, with numbers
and the parties' names masked out of any text staff wrote.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from sqlmodel import Session, col, select

from models import clock, lifecycle, pii
from models import text as text_rules
from models.case import Case
from models.cases import get_case, parties_of, terms_of
from models.enums import (
    CaseStatus,
    ConsentMethod,
    FollowUpOutcome,
    PartyKind,
    ResolvedAnswer,
    SatisfiedAnswer,
    VisitChannel,
)
from models.errors import FieldProblem, InvalidTransition, ValidationError
from models.event import CaseEvent
from models.follow_up import FollowUp, FollowUpRecord
from models.follow_ups import current_agreement, list_follow_ups, record_follow_up
from models.mediating import record_consent, record_declined
from models.resident import resident_actor
from models.resident_tables import ResidentPhoto
from models.settings import get_settings
from models.unit import Unit

S = CaseStatus
RESIDENT_VERBS = (
    "resident_info_added",
    "resident_consent_refused",
    "resident_terms_confirmed",
)

# What happens next, as the resident reads it (zh, en).
NEXT_STEP: dict[CaseStatus, tuple[str, str]] = {
    S.SUBMITTED: ("正在研判分流，确定承办单位。", "The case is being triaged to a unit."),
    S.TRIAGED: ("已研判分流，正在指派承办人。", "Triaged; a handler is being named."),
    S.ASSIGNED: (
        "承办人将与您联系。调解须双方自愿，请在下方表明是否同意调解。",
        "The handler will contact you. Mediation is voluntary: say below whether you agree.",
    ),
    S.IN_MEDIATION: ("调解进行中，请按约定时间参加。", "Mediation is under way."),
    S.AGREEMENT: (
        "已达成调解协议，请按协议履行；履行后可在下方确认。",
        "An agreement was reached; confirm below once its terms are carried out.",
    ),
    S.MEDIATION_FAILED: (
        "调解不成。您可依法申请仲裁或向人民法院起诉，工作人员会告知途径。",
        "Mediation failed; you may go to arbitration or court, and staff will tell you how.",
    ),
    S.FOLLOW_UP: (
        "回访：请告诉我们问题是否解决、您是否满意。",
        "Return visit: tell us whether it was resolved and whether you are satisfied.",
    ),
    S.CLOSED: ("已办结。感谢您的配合。", "Closed. Thank you."),
    S.ESCALATED: ("已提级督办，由上级单位办理。", "Escalated to a higher unit."),
    S.REFERRED: ("已移交有关部门办理，结果会反馈给您。", "Referred to the competent agency."),
    S.MERGED: ("已与同一事项合并办理。", "Handled together with the same matter."),
    S.WITHDRAWN: ("已撤回。", "Withdrawn."),
    S.REOPENED: ("已重新办理，承办人将再次与您联系。", "Reopened; the handler will contact you."),
}


class Who(Protocol):
    """Who acts: the party and case of a resident session or of a one-use link."""

    @property
    def case_id(self) -> int: ...

    @property
    def party_id(self) -> int: ...


PHOTO_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


@dataclass(frozen=True)
class ResidentEvent:
    at: datetime
    verb: str


@dataclass(frozen=True)
class ResidentView:
    number: str
    status: CaseStatus
    next_step: tuple[str, str]
    unit: tuple[str, str] | None
    created_at: datetime
    response_due_at: datetime | None
    resolution_due_at: datetime | None
    mediation_due_at: datetime | None
    outcome: str | None
    terms: list[tuple[str, date, bool]] = field(default_factory=list)
    consented: bool = False
    may_consent: bool = False
    may_add: bool = False
    may_confirm_terms: bool = False
    may_answer_visit: bool = False
    mine: list[ResidentEvent] = field(default_factory=list)


def _names(session: Session, case: Case) -> list[str]:
    return [
        pii.decrypt(p.name_enc)
        for p in parties_of(session, case_id=case.id or 0)
        if p.name_enc and p.kind in (PartyKind.PERSON, PartyKind.HOUSEHOLD)
    ]


def _masked(text: str | None, names: list[str]) -> str | None:
    return pii.scrub_names(pii.scrub_text(text), names) if text else None


def view(session: Session, *, who: Who) -> ResidentView:
    case = get_case(session, case_id=who.case_id)
    party = next(p for p in parties_of(session, case_id=who.case_id) if p.id == who.party_id)
    unit = session.get(Unit, case.unit_id) if case.unit_id else None
    names = _names(session, case)
    agreement = current_agreement(session, case=case)
    terms = terms_of(session, agreement_id=agreement.id) if agreement and agreement.id else []
    events = session.exec(
        select(CaseEvent)
        .where(CaseEvent.case_id == case.id, CaseEvent.actor == f"resident:{who.party_id}")
        .order_by(col(CaseEvent.seq))
    ).all()
    mine = [ResidentEvent(at=e.at, verb=e.verb) for e in events]
    return ResidentView(
        number=case.number,
        status=case.status,
        next_step=NEXT_STEP[case.status],
        unit=(unit.name_zh, unit.name_en) if unit else None,
        created_at=case.created_at,
        response_due_at=case.response_due_at,
        resolution_due_at=case.resolution_due_at,
        mediation_due_at=case.mediation_due_at,
        outcome=_masked(case.outcome_note, names),
        terms=[(_masked(t.text, names) or "", t.due_on, t.done) for t in terms],
        consented=party.consented,
        may_consent=case.status == S.ASSIGNED and not party.consented,
        may_add=case.is_open,
        may_confirm_terms=bool(terms) and case.status in (S.AGREEMENT, S.FOLLOW_UP),
        may_answer_visit=case.status == S.FOLLOW_UP,
        mine=mine,
    )


def _problem(field_name: str, en: str, zh: str) -> ValidationError:
    return ValidationError(
        f"{field_name}: {en}", f"{field_name}：{zh}", problems=[FieldProblem(field_name, zh, en)]
    )


def clean_note(session: Session, case: Case, raw: str, *, required: bool) -> str:
    """A resident's free text: the project's text rule (controls and bidi refused),
    then phone and ID numbers and the parties' names masked."""
    if len(raw) > 2000:
        raise _problem("note", "at most 2000 characters", "最多 2000 字")
    try:
        text = text_rules.check(raw.strip())
    except ValueError as exc:
        raise _problem("note", str(exc), str(exc)) from exc
    if required and len(text) < 2:
        raise _problem("note", "write a few words", "请填写内容")
    return pii.scrub_names(pii.scrub_text(text), _names(session, case))


def photo_type(data: bytes) -> str | None:
    for magic, kind in PHOTO_TYPES.items():
        if data.startswith(magic):
            return kind
    return None


def add_information(session: Session, *, who: Who, note: str, photos: list[bytes]) -> CaseEvent:
    """Text and up to ``settings.resident_photos_max`` photos (JPEG or PNG, each at most
    ``settings.resident_photo_max_bytes``). All checked before anything is written."""
    settings = get_settings()
    step = lifecycle.step(
        session, case_id=who.case_id, actor=resident_actor(who.party_id), expected_version=None
    )
    case = step.case
    if not case.is_open:
        raise InvalidTransition("the case is closed", "案件已办结，不能再补充材料。")
    photos = [p for p in photos if p]
    if len(photos) > settings.resident_photos_max:
        raise _problem(
            "photos",
            f"at most {settings.resident_photos_max} photos",
            f"最多 {settings.resident_photos_max} 张照片",
        )
    kinds = []
    for data in photos:
        kind = photo_type(data)
        if kind is None:
            raise _problem("photos", "only JPEG or PNG photos", "只能上传 JPEG 或 PNG 照片")
        if len(data) > settings.resident_photo_max_bytes:
            mb = settings.resident_photo_max_bytes / 1_000_000
            raise _problem("photos", f"each photo at most {mb:g} MB", f"每张照片不超过 {mb:g} MB")
        kinds.append(kind)
    text = clean_note(session, case, note, required=not photos)
    now = clock.now()
    rows = [
        ResidentPhoto(
            case_id=who.case_id,
            party_id=who.party_id,
            content_type=kind,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            data=data,
            created_at=now,
        )
        for data, kind in zip(photos, kinds, strict=True)
    ]
    session.add_all(rows)
    session.flush()
    photo_ids = [r.id for r in rows]
    return step.record(
        "resident_info_added", {"party_id": who.party_id, "note": text, "photo_ids": photo_ids}
    )


def answer_consent(session: Session, *, who: Who, agree: bool) -> None:
    """Give (the party's consent, as staff would record it) or refuse mediation (the
    refusal stands until staff confirm it or the party consents after all)."""
    if agree:
        record_consent(
            session,
            case_id=who.case_id,
            party_ids=[who.party_id],
            actor=resident_actor(who.party_id),
            expected_version=None,
            how=ConsentMethod.RESIDENT_LINK,
        )
        return
    record_declined(
        session, case_id=who.case_id, party_id=who.party_id, actor=resident_actor(who.party_id)
    )


def confirm_terms(session: Session, *, who: Who, carried_out: bool, note: str) -> CaseEvent:
    """The resident says whether the agreement's terms were carried out; when they say
    yes, the terms are marked done."""
    step = lifecycle.step(
        session, case_id=who.case_id, actor=resident_actor(who.party_id), expected_version=None
    )
    case = step.case
    agreement = current_agreement(session, case=case)
    terms = terms_of(session, agreement_id=agreement.id) if agreement and agreement.id else []
    if not terms or case.status not in (S.AGREEMENT, S.FOLLOW_UP):
        raise InvalidTransition("no agreement to confirm", "本案没有需要确认履行的调解协议。")
    text = clean_note(session, case, note, required=False)
    if carried_out:
        for term in terms:
            term.done = True
            session.add(term)
    return step.record(
        "resident_terms_confirmed",
        {"party_id": who.party_id, "carried_out": carried_out, "note": text},
    )


def _visit_open_for_the_resident(session: Session, case: Case) -> None:
    """The resident may answer while the case is at its return visit even when staff
    already made the planned visits (their own answers then decide the rates)."""
    if case.status != S.FOLLOW_UP:
        return  # record_follow_up refuses, with its own message
    visits = list_follow_ups(session, case_id=case.id or 0)
    if visits and all(v.done_at is not None for v in visits):
        session.add(FollowUp(case_id=case.id or 0, kind=visits[-1].kind, due_at=clock.now()))
        session.flush()


_OUTCOME = {
    ResolvedAnswer.RESOLVED: FollowUpOutcome.CARRIED_OUT,
    ResolvedAnswer.BASICALLY: FollowUpOutcome.PARTLY,
    ResolvedAnswer.UNRESOLVED: FollowUpOutcome.NOT_CARRIED_OUT,
}


def answer_visit(
    session: Session,
    *,
    who: Who,
    resolved: ResolvedAnswer,
    satisfied: SatisfiedAnswer,
    comment: str,
) -> None:
    """The resident's own return-visit answers: recorded as a return visit through the
    resident's link (independent by nature), which the three rates count."""
    case = get_case(session, case_id=who.case_id)
    text = clean_note(session, case, comment, required=False)
    _visit_open_for_the_resident(session, case)
    record = FollowUpRecord(
        outcome=_OUTCOME[resolved],
        resolved=resolved,
        satisfied=satisfied,
        channel=VisitChannel.RESIDENT_LINK,
        notes=text or "居民本人通过查询页作答 / answered by the resident",
    )
    record_follow_up(
        session,
        case_id=who.case_id,
        data=record,
        actor=resident_actor(who.party_id),
        expected_version=None,
    )
