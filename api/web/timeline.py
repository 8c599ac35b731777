"""The case page's timeline as the page prints it: one row of ready strings per event.

Worked out here rather than in the template: each event took about ten template calls
(the local time, the verb, the two statuses, its note, who did it twice over), and at a
300-event timeline those calls were most of the time the page spent rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from api.web.i18n import Translator
from models import clock
from models.access import staff_id_of
from models.event import TimelineEvent


class TimelineRow(NamedTuple):
    verb: str  # the event's verb (the row's style)
    iso: str  # when, for <time datetime>
    at: str  # when, local time as every page shows it
    label: str
    change: str | None  # "from → to" when the status changed
    note: str | None
    photo_ids: list[int]
    who: str


def timeline_rows(
    events: Sequence[TimelineEvent],
    *,
    notes: dict[int, tuple[str, str]],
    staff_names: dict[int, str],
    t: Translator,
) -> list[TimelineRow]:
    en = t.lang == "en"
    staff, system = t("工作人员", "staff"), t("系统", "system")
    party, public = (
        t("当事人本人（查询页或短信链接）", "the party (own page or link)"),
        t("公众上报", "public report"),
    )
    rows: list[TimelineRow] = []
    # A timeline repeats a few verbs and moves: their words worked out once each.
    labels: dict[str, str] = {}
    changes: dict[tuple[str, str], str] = {}
    for e in events:
        change: str | None = None
        if e.from_status and e.from_status != e.to_status:
            move = (e.from_status, e.to_status)
            if (change := changes.get(move)) is None:
                change = changes[move] = f"{t.label(e.from_status)} → {t.label(e.to_status)}"
        if (label := labels.get(e.verb)) is None:
            label = labels[e.verb] = t.verb(e.verb)
        note = notes.get(e.id) if e.id is not None else None
        staff_id = staff_id_of(e.actor)
        if staff_id is not None:
            who = staff_names.get(staff_id, staff)
        elif e.actor == "system":
            who = system
        else:
            who = party if e.actor.startswith("resident:") else public
        rows.append(
            TimelineRow(
                verb=e.verb,
                iso=e.at.isoformat(),
                at=clock.format_local(e.at),
                label=label,
                change=change,
                note=(note[1] if en else note[0]) if note else None,
                photo_ids=list(e.data.get("photo_ids") or []),
                who=who,
            )
        )
    return rows
