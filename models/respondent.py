"""The respondent's side (被申请人): a firm, a landlord or a neighbour named with a phone
is sent a one-use link (models/resident_links.py, purpose ``respondent``) that opens
their own view of the invitation, where they accept or decline mediation and propose
times.

The respondent sees the case number, the kind of dispute, the mediating unit and the
date it was filed: never the complainant's name, phone or tracking code, nor the
description (which is the complainant's account). Each answer is an audited event on
the case (actor ``resident:<party>``): accepting is the party's consent
(:func:`models.mediating.record_consent`, by link) followed by ``times_proposed``;
declining is :func:`models.mediating.record_declined` (no mediation while it stands).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from models import clock, lifecycle, workdays
from models.case import Case
from models.cases import get_case, parties_of
from models.enums import CaseStatus, ConsentMethod, PartySide
from models.errors import FieldProblem, ValidationError
from models.event import CaseEvent, TimelineEvent
from models.lifecycle import Actor
from models.mediating import declined_among, record_consent, record_declined
from models.party import Party
from models.resident_actions import Who, clean_note
from models.unit import Unit

# Parts of a day a respondent may offer (zh, en, hours).
PARTS: dict[str, tuple[str, str, str]] = {
    "am": ("上午", "morning", "09:00–12:00"),
    "pm": ("下午", "afternoon", "14:00–17:30"),
    "eve": ("晚上", "evening", "19:00–21:00"),
}
MAX_SLOTS = 3
SLOT_DAYS = 30  # how far ahead a time may be proposed


@dataclass(frozen=True)
class Slot:
    day: date
    part: str

    @property
    def zh(self) -> str:
        return f"{self.day.month}月{self.day.day}日 {PARTS[self.part][0]}（{PARTS[self.part][2]}）"

    @property
    def en(self) -> str:
        return f"{self.day.isoformat()} {PARTS[self.part][1]} ({PARTS[self.part][2]})"

    def as_data(self) -> dict[str, str]:
        return {"day": self.day.isoformat(), "part": self.part}


@dataclass(frozen=True)
class RespondentView:
    number: str
    category: tuple[str, str]
    unit: tuple[str, str] | None
    filed_on: date
    expires_at: datetime
    name: str  # the firm's name, or the masked name of a person


def respondent_view(session: Session, *, who: Who, expires_at: datetime) -> RespondentView:
    case = get_case(session, case_id=who.case_id)
    party = next(p for p in parties_of(session, case_id=who.case_id) if p.id == who.party_id)
    unit = session.get(Unit, case.unit_id) if case.unit_id else None
    return RespondentView(
        number=case.number,
        category=(case.category.zh, case.category.en),
        unit=(unit.name_zh, unit.name_en) if unit else None,
        filed_on=workdays.local_date(case.created_at),
        expires_at=expires_at,
        name=party.org_name or party.name_masked or "",
    )


def _problem(en: str, zh: str) -> ValidationError:
    return ValidationError(f"slots: {en}", f"时间：{zh}", problems=[FieldProblem("slots", zh, en)])


def parse_slots(pairs: list[tuple[str, str]]) -> list[Slot]:
    """The times offered, as (day ``YYYY-MM-DD``, part) pairs; blanks are skipped. From
    tomorrow to :data:`SLOT_DAYS` days ahead, at most :data:`MAX_SLOTS`, no repeats."""
    today = clock.to_local(clock.now()).date()
    slots: list[Slot] = []
    for raw_day, raw_part in pairs:
        if not raw_day.strip():
            continue
        try:
            day = date.fromisoformat(raw_day.strip()[:10])
        except ValueError:
            raise _problem("a date as YYYY-MM-DD", "日期格式应为 年-月-日") from None
        if raw_part not in PARTS:
            raise _problem("morning, afternoon or evening", "请选择上午、下午或晚上")
        if not today < day <= today + timedelta(days=SLOT_DAYS):
            raise _problem(
                f"from tomorrow to {SLOT_DAYS} days ahead", f"请选择明天起 {SLOT_DAYS} 天内的日期"
            )
        slot = Slot(day, raw_part)
        if slot not in slots:
            slots.append(slot)
    if len(slots) > MAX_SLOTS:
        raise _problem(f"at most {MAX_SLOTS} times", f"最多提出 {MAX_SLOTS} 个时间")
    return slots


def answer(session: Session, *, who: Who, accept: bool, slots: list[Slot], note: str) -> None:
    """The respondent's answer: accept (consent, then the times they can come: at least
    one) or decline (mediation cannot go ahead while the refusal stands)."""
    actor = Actor.resident(who.party_id)
    step = lifecycle.step(session, case_id=who.case_id, actor=actor, expected_version=None)
    text = clean_note(session, step.case, note, required=False)
    if not accept:
        record_declined(session, case_id=who.case_id, party_id=who.party_id, actor=actor, note=text)
        return
    if not slots:
        raise _problem("propose at least one time", "请至少选择一个方便参加调解的时间")
    record_consent(
        session,
        case_id=who.case_id,
        party_ids=[who.party_id],
        actor=actor,
        expected_version=None,
        how=ConsentMethod.RESIDENT_LINK,
        note=text,
    )
    step.record(
        "times_proposed",
        {"party_id": who.party_id, "slots": [s.as_data() for s in slots], "note": text},
    )


@dataclass(frozen=True)
class PartyAnswer:
    """What a party answered through their page or link, as the case page shows it."""

    party_id: int
    side: PartySide
    at: datetime
    accepted: bool
    slots: list[Slot]
    note: str


def slots_of(data: dict[str, Any]) -> list[Slot]:
    """The times in an event's data (``times_proposed``)."""
    return [
        Slot(date.fromisoformat(str(s["day"])), str(s["part"]))
        for s in data.get("slots") or []
        if str(s.get("part")) in PARTS
    ]


ANSWER_VERBS = ("times_proposed", "resident_consent_refused")


def party_answers(session: Session, *, case_id: int) -> list[PartyAnswer]:
    """Each party's latest own answer on mediation (times proposed, or a refusal)."""
    events = session.exec(
        select(CaseEvent)
        .where(CaseEvent.case_id == case_id, col(CaseEvent.verb).in_(ANSWER_VERBS))
        .order_by(col(CaseEvent.seq))
    ).all()
    return answers_of(parties_of(session, case_id=case_id), events)


def answers_of(parties: Sequence[Party], events: Sequence[TimelineEvent]) -> list[PartyAnswer]:
    """:func:`party_answers` from the case's parties and events (in ``seq`` order) read
    already: the case page has both."""
    sides = {p.id: p.side for p in parties}
    latest: dict[int, PartyAnswer] = {}
    for e in events:
        if e.verb not in ANSWER_VERBS:
            continue
        pid = int(e.data.get("party_id") or 0)
        if pid not in sides:
            continue
        latest[pid] = PartyAnswer(
            party_id=pid,
            side=sides[pid],
            at=e.at,
            accepted=e.verb == "times_proposed",
            slots=slots_of(e.data),
            note=str(e.data.get("note") or ""),
        )
    return list(latest.values())


def mediation_blocked(session: Session, *, case_id: int) -> bool:
    """Whether a party's refusal stands on an assigned case (the case page says so)."""
    return blocked(get_case(session, case_id=case_id), parties_of(session, case_id=case_id))


def blocked(case: Case, parties: Sequence[Party]) -> bool:
    """:func:`mediation_blocked` from the case's parties read already."""
    return case.status == CaseStatus.ASSIGNED and bool(declined_among(parties))
