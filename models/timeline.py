"""What a case's timeline says beside each event: where the case went and to whom, the
referral's target, the case it was linked to or merged into, how the complainant was
first contacted, what they answered at a return visit. Names of units and staff and
case numbers only, never personal data; the page and the REST API show the same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlmodel import Session, col, select

from models.enums import (
    CaseStatus,
    ContactMethod,
    ReferralTarget,
    ResolvedAnswer,
    SatisfiedAnswer,
)
from models.event import CaseEvent, TimelineEvent
from models.staff import display_names
from models.unit import Unit


class EventRow(NamedTuple):
    """An event as the case page reads it (no hashes, not an ORM object)."""

    id: int
    verb: str
    from_status: CaseStatus | None
    to_status: CaseStatus
    actor: str
    at: datetime
    data: dict[str, Any]


def timeline_of(session: Session, *, case_id: int) -> list[EventRow]:
    """A case's events in order, as plain rows: loading 300 events as ORM objects took
    4.4-5.2 ms of CPU, as rows 2.2 ms (and reading their fields is cheaper too)."""
    columns = [getattr(CaseEvent, name) for name in EventRow._fields]
    rows = session.execute(
        select(*columns).where(col(CaseEvent.case_id) == case_id).order_by(col(CaseEvent.seq))
    )
    return [EventRow._make(r) for r in rows]


def _unit_names(session: Session, codes: set[str]) -> dict[str, Unit]:
    if not codes:
        return {}
    return {u.code: u for u in session.exec(select(Unit).where(col(Unit.code).in_(codes)))}


def event_notes(
    session: Session, events: Sequence[TimelineEvent], staff_names: dict[int, str]
) -> dict[int, tuple[str, str]]:
    """What the timeline says beside each move: the unit or person a case went to, the
    referral's target, the case it was linked to or merged into, how contact was made
    and what the complainant answered at a return visit. Names only, no personal data."""
    codes = {
        str(e.data[k])
        for e in events
        for k in ("to_unit", "from_unit", "agency_code", "unit")
        if isinstance(e.data.get(k), str) and not str(e.data[k]).startswith("/")
    }
    units = _unit_names(session, codes)
    staff_ids = {
        int(e.data["assignee_id"]) for e in events if isinstance(e.data.get("assignee_id"), int)
    }
    missing = staff_ids - set(staff_names)
    names = dict(staff_names)
    names |= display_names(session, missing)
    notes: dict[int, tuple[str, str]] = {}
    for e in events:
        note = _event_note(e, units, names)
        if note and e.id is not None:
            notes[e.id] = note
    return notes


def _unit_label(units: dict[str, Unit], code: object) -> tuple[str, str]:
    unit = units.get(str(code)) if code else None
    return (unit.name_zh, unit.name_en) if unit else (str(code or "—"), str(code or "—"))


def _event_note(
    e: TimelineEvent, units: dict[str, Unit], names: dict[int, str]
) -> tuple[str, str] | None:
    d = e.data
    if e.verb == "escalated":
        (fz, fe), (tz, te) = (
            _unit_label(units, d.get("from_unit")),
            _unit_label(units, d.get("to_unit")),
        )
        return f"{fz} → {tz}", f"{fe} → {te}"
    if e.verb == "assigned" and d.get("assignee_id"):
        who = names.get(int(d["assignee_id"]), "—")
        uz, ue = _unit_label(units, d.get("unit"))
        return f"派给 {uz} · {who}", f"to {ue} · {who}"
    if e.verb == "referred":
        target = d.get("target") or d.get("referral_target")
        if d.get("agency_code"):
            az, ae = _unit_label(units, d.get("agency_code"))
            return f"移交 {az}", f"referred to {ae}"
        if target:
            label = ReferralTarget(str(target))
            return f"移交 {label.zh}", f"referred to {label.en}"
        return None
    if e.verb in ("merged", "duplicate_linked"):
        number = d.get("into_number") or d.get("other_number")
        if not number:
            return None
        others = [str(link.get("other_number")) for link in d.get("links") or [] if link]
        numbers = "、".join(dict.fromkeys([str(number), *others]))
        if e.verb == "merged":
            return f"并入 {number}", f"merged into {number}"
        return f"关联 {numbers}", f"linked to {numbers}"
    if e.verb == "contacted" and d.get("method"):
        method = ContactMethod(str(d["method"]))
        late = "" if d.get("in_time") else "（超时）"
        return f"{method.zh}{late}", method.en + ("" if d.get("in_time") else " (late)")
    if e.verb == "follow_up_recorded" and d.get("resolved"):
        res, sat = ResolvedAnswer(str(d["resolved"])), SatisfiedAnswer(str(d["satisfied"]))
        own = "" if d.get("independent") else "（非独立回访，不计入三率）"
        own_en = "" if d.get("independent") else " (not independent: not counted)"
        return f"{res.zh} · {sat.zh}{own}", f"{res.en} · {sat.en}{own_en}"
    return _resident_note(e)


def _resident_note(e: TimelineEvent) -> tuple[str, str] | None:
    """What a resident sent from their page (their text is masked when it is stored)."""
    d = e.data
    if e.verb == "resident_info_added":
        photos = len(d.get("photo_ids") or [])
        text = str(d.get("note") or "")
        extra_zh, extra_en = (f"（{photos} 张照片）", f" ({photos} photos)") if photos else ("", "")
        return f"{text}{extra_zh}", f"{text}{extra_en}"
    if e.verb == "resident_terms_confirmed":
        done = bool(d.get("carried_out"))
        text = f" · {d['note']}" if d.get("note") else ""
        return (
            ("已履行" if done else "未履行") + text,
            ("carried out" if done else "not carried out") + text,
        )
    if e.verb == "times_proposed":
        from models.respondent import Slot, slots_of  # respondent imports the services

        slots: list[Slot] = slots_of(d)
        note = f" · {d['note']}" if d.get("note") else ""
        return (
            "、".join(s.zh for s in slots) + note,
            "; ".join(s.en for s in slots) + note,
        )
    if e.verb == "resident_consent_refused" and d.get("note"):
        return str(d["note"]), str(d["note"])
    return None
