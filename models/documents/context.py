"""What the documents of a case say, read from the database once: one plain dict of
strings (and lists of them) that both the Typst templates (PDF) and the docxtpl
templates (DOCX) fill in. Personal data is in clear here: documents are generated only
for staff entitled to see it (the API checks), and never logged or cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from models import clock, pii, workdays
from models.acceptance import latest_review
from models.attachments import Attachment, list_attachments
from models.case import Case
from models.confirmation import effective_on
from models.enums import UnitLevel
from models.follow_up import FollowUp
from models.mediation import Agreement, AgreementTerm, MediationSession
from models.mediators import CaseMediator
from models.party import Party, PartyConsent
from models.settings import get_settings
from models.staff import Staff
from models.unit import Unit

DASH = "—"


def day(value: date | datetime | None) -> str:
    """A date as printed on Chinese documents: 2026年12月3日."""
    if value is None:
        return DASH
    d = workdays.local_date(value) if isinstance(value, datetime) else value
    return f"{d.year}年{d.month}月{d.day}日"


def moment(value: datetime | None) -> str:
    if value is None:
        return DASH
    local = clock.to_local(value)
    return f"{day(local.date())} {local:%H:%M}"


def committee_name(session: Session, case: Case) -> str:
    """The committee that prints and seals: a setting, else that of the community the
    case is handled in (a compound or building has none of its own), or of the street
    or district handling it."""
    configured = get_settings().committee_name
    if configured:
        return configured
    unit = session.get(Unit, case.unit_id) if case.unit_id else None
    while unit is not None and unit.level in (UnitLevel.BUILDING, UnitLevel.COMPOUND):
        unit = session.get(Unit, unit.parent_id) if unit.parent_id else None
    return f"{unit.name_zh}人民调解委员会" if unit else "人民调解委员会"


def _clear(token: str | None) -> str:
    return pii.decrypt(token) if token else ""


def _staff_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.exec(select(Staff).where(col(Staff.id).in_(ids))).all()
    return {s.id or 0: s.display_name for s in rows}


def _party(p: Party, answers: list[PartyConsent]) -> dict[str, Any]:
    last = answers[-1] if answers else None
    if last is None:
        consent = "待确认" if p.consent_required else "无需"
    else:
        consent = (
            f"{'同意' if last.given else '拒绝'}调解（{last.how.zh}，{moment(last.recorded_at)}）"
        )
    return {
        "side": p.side.zh,
        "kind": p.kind.zh,
        "name": p.org_name or _clear(p.name_enc) or DASH,
        "phone": _clear(p.phone_enc) or DASH,
        "id_number": _clear(p.id_number_enc) or DASH,
        "address": _clear(p.address_enc) or DASH,
        "agent": _clear(p.agent_name_enc),
        "agent_phone": _clear(p.agent_phone_enc),
        "consent": consent,
    }


def _parties(session: Session, case_id: int) -> list[dict[str, Any]]:
    rows = session.exec(select(Party).where(Party.case_id == case_id).order_by(col(Party.id))).all()
    answers = session.exec(
        select(PartyConsent)
        .where(PartyConsent.case_id == case_id)
        .order_by(col(PartyConsent.recorded_at), col(PartyConsent.id))
    ).all()
    return [_party(p, [a for a in answers if a.party_id == p.id]) for p in rows]


def _acceptance(session: Session, case_id: int, names: dict[int, str]) -> dict[str, Any] | None:
    review = latest_review(session, case_id=case_id)
    if review is None:
        return None
    return {
        "accepted": review.accepted,
        "decision": "予以受理" if review.accepted else "不予受理",
        "reason": review.reason.zh if review.reason else DASH,
        "legal_basis": review.legal_basis or DASH,
        "route": review.route.zh if review.route else DASH,
        "guidance": review.guidance,
        "note": review.note,
        "decided_by": names.get(review.decided_by_id or 0, DASH),
        "decided_at": moment(review.decided_at),
    }


def _mediators(rows: list[CaseMediator], names: dict[int, str]) -> list[dict[str, str]]:
    out = []
    for m in rows:
        status = "在任" if m.ended_at is None else f"{m.end_reason.zh if m.end_reason else '离任'}"
        out.append(
            {
                "name": names.get(m.staff_id, DASH),
                "named_at": moment(m.named_at),
                "status": status,
                "note": m.end_note,
            }
        )
    return out


def _agreement(session: Session, row: Agreement | None, names: dict[int, str]) -> Any:
    if row is None:
        return None
    terms = session.exec(
        select(AgreementTerm)
        .where(AgreementTerm.agreement_id == row.id)
        .order_by(col(AgreementTerm.due_on), col(AgreementTerm.id))
    ).all()
    return {
        "signed_at": day(row.signed_at),
        "summary": row.summary,
        "facts": row.facts or row.summary,
        "disputed_matters": row.disputed_matters or DASH,
        "responsibility": row.responsibility or DASH,
        "performance": row.performance or DASH,
        "terms": [
            {"n": str(i), "text": t.text, "due": day(t.due_on), "how": t.how or DASH}
            for i, t in enumerate(terms, start=1)
        ],
        "signed_on_paper": "已由双方当事人及调解员签字" if row.signed_on_paper else "待签字",
        "sealed": "已加盖调解委员会印章" if row.committee_sealed else "待盖章",
        "mediators": "、".join(names.get(i, str(i)) for i in row.mediator_ids) or DASH,
        "effective_on": day(effective_on(row)),
        "deadline": day(row.court_confirmation_deadline),
        "confirmation": row.confirmation_status.zh,
        "court_name": row.court_name or DASH,
        "court_reference": row.court_reference or DASH,
    }


def _sessions(rows: list[MediationSession], names: dict[int, str]) -> list[dict[str, str]]:
    return [
        {
            "n": str(i),
            "held_at": moment(s.held_at),
            "place": s.place,
            "participants": s.participants,
            "minutes": s.minutes,
            "recorded_by": names.get(s.recorded_by_id or 0, DASH),
        }
        for i, s in enumerate(rows, start=1)
    ]


def _follow_ups(rows: list[FollowUp], names: dict[int, str]) -> list[dict[str, str]]:
    return [
        {
            "kind": f.kind.zh,
            "due": moment(f.due_at),
            "done": moment(f.done_at),
            "outcome": f.outcome.zh if f.outcome else "待回访",
            "satisfaction": f.satisfied.zh if f.satisfied else DASH,
            "resolved": f.resolved.zh if f.resolved else DASH,
            "notes": f.notes or DASH,
            "by": names.get(f.recorded_by_id or 0, DASH),
        }
        for f in rows
    ]


@dataclass(frozen=True)
class CaseRecords:
    """The rows the documents are made of (read once per request)."""

    case: Case
    sessions: list[MediationSession]
    agreement: Agreement | None
    follow_ups: list[FollowUp]
    attachments: list[Attachment]
    mediators: list[CaseMediator]
    reviewed: bool


def load(session: Session, case: Case) -> CaseRecords:
    from models.follow_ups import latest_agreement, list_follow_ups
    from models.mediating import list_sessions

    assert case.id is not None
    return records_of(
        session,
        case,
        sessions=list_sessions(session, case_id=case.id),
        latest=latest_agreement(session, case_id=case.id),
        follow_ups=list_follow_ups(session, case_id=case.id),
        reviewed=latest_review(session, case_id=case.id) is not None,
    )


def records_of(
    session: Session,
    case: Case,
    *,
    sessions: list[MediationSession],
    latest: Agreement | None,
    follow_ups: list[FollowUp],
    reviewed: bool,
) -> CaseRecords:
    """:func:`load` from the rows a page has read already (the case page shows the
    sessions, the latest agreement and the visits itself: read twice before): sessions
    and visits in :func:`load`'s order, the latest agreement of any round."""
    from models.follow_ups import current_of
    from models.mediators import mediators_of

    assert case.id is not None
    return CaseRecords(
        case=case,
        sessions=sessions,
        agreement=current_of(case, latest),
        follow_ups=follow_ups,
        attachments=list_attachments(session, case_id=case.id),
        mediators=mediators_of(session, case_id=case.id, serving=False),
        reviewed=reviewed,
    )


def build(session: Session, records: CaseRecords) -> dict[str, Any]:
    """Everything any document of the case prints."""
    case = records.case
    assert case.id is not None
    staff_ids = {m.staff_id for m in records.mediators}
    staff_ids |= {s.recorded_by_id or 0 for s in records.sessions}
    staff_ids |= {f.recorded_by_id or 0 for f in records.follow_ups}
    staff_ids |= set(records.agreement.mediator_ids if records.agreement else [])
    review = latest_review(session, case_id=case.id)
    if review is not None and review.decided_by_id:
        staff_ids.add(review.decided_by_id)
    if case.assignee_id:
        staff_ids.add(case.assignee_id)
    names = _staff_names(session, staff_ids)
    place = session.get(Unit, case.place_unit_id) if case.place_unit_id else None
    return {
        "committee": committee_name(session, case),
        "case": {
            "number": case.number,
            "category": case.category.zh,
            "channel": case.channel.zh,
            "status": case.status.zh,
            "description": case.description,
            "address": case.address_text or (place.name_zh if place else DASH),
            "people_affected": str(case.people_affected),
            "registered": moment(case.created_at),
            "closed": moment(case.closed_at),
            "handler": names.get(case.assignee_id or 0, DASH),
            "confidential": "不公开" if case.confidential else "公开",
            "outcome": case.outcome_note or "",
        },
        "parties": _parties(session, case.id),
        "acceptance": _acceptance(session, case.id, names),
        "mediators": _mediators(records.mediators, names),
        "sessions": _sessions(records.sessions, names),
        "agreement": _agreement(session, records.agreement, names),
        "follow_ups": _follow_ups(records.follow_ups, names),
        "attachments": [
            {"n": str(i), "title": a.title, "kind": a.kind, "type": a.content_type}
            for i, a in enumerate(records.attachments, start=1)
        ],
        "generated": moment(clock.now()),
    }
