"""The case list as a spreadsheet (案件导出): the same filter, reach and order as the list
page, one row per case. Names and phones are shown in clear only in the cases that
``reveal(batch)`` (the caller's personal-data rule, asked once per batch) says the reader
is entitled to; everyone else gets the
masked forms, and phone or ID numbers typed into the description are masked the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from models import confidentiality, pii
from models.case import Case
from models.case_search import CaseFilter, batches
from models.cases import show_party
from models.enums import PartySide
from models.overdue import is_overdue, next_visits
from models.party import Party
from models.spreadsheet import Cell, add_sheet, csv_bytes, new_book, to_bytes
from models.staff import Staff
from models.unit import Unit

HEADER = (
    "案件编号 Number",
    "登记时间 Recorded",
    "类别 Category",
    "优先级 Priority",
    "状态 Status",
    "处理单位 Unit",
    "承办人 Handler",
    "办结期限 Due",
    "逾期 Overdue",
    "群体 Group",
    "申请人 Complainant",
    "电话 Phone",
    "诉求 Description",
)
BATCH = 1000


def _first_complainants(session: Session, ids: list[int]) -> dict[int, Party]:
    out: dict[int, Party] = {}
    parties = session.exec(
        select(Party)
        .where(col(Party.case_id).in_(ids), Party.side == PartySide.COMPLAINANT)
        .order_by(col(Party.id))
    ).all()
    for party in parties:
        out.setdefault(party.case_id, party)
    return out


def rows(
    session: Session,
    f: CaseFilter,
    *,
    reach: ColumnElement[bool] | None,
    reveal: Callable[[Sequence[Case]], set[int]],
    now: datetime,
    sort: str = "newest",
) -> Iterator[tuple[Cell, ...]]:
    """One tuple per matching case, in list order, read :data:`BATCH` cases at a time."""
    units = {u.id: u.code for u in session.exec(select(Unit)).all()}
    staff = {s.id: s.display_name for s in session.exec(select(Staff)).all()}
    for cases in batches(session, f, reach=reach, now=now, sort=sort, size=BATCH):
        ids = [c.id for c in cases if c.id is not None]
        parties = _first_complainants(session, ids)
        visits = next_visits(session, ids)
        clear = reveal(cases)
        for case in cases:
            shown = parties.get(case.id or 0)
            yield _row(case, shown, case.id in clear, units, staff, visits, now)


def _row(
    case: Case,
    party: Party | None,
    clear: bool,
    units: dict[Any, str],
    staff: dict[Any, str],
    visits: dict[int, datetime],
    now: datetime,
) -> tuple[Cell, ...]:
    shown = show_party(party, reveal=clear) if party is not None else None
    late = is_overdue(case, now=now, next_visit=visits.get(case.id or 0))
    return (
        case.number,
        case.created_at,
        case.category.label,
        case.priority.label,
        case.status.label,
        units.get(case.unit_id, ""),
        staff.get(case.assignee_id, ""),
        case.resolution_due_at,
        "是 yes" if late else "",
        "是 yes" if case.is_group else "",
        shown.name if shown else "",
        (shown.phone or "") if shown else "",
        description_for_export(case, clear=clear),
    )


def description_for_export(case: Case, *, clear: bool) -> str:
    """A confidential case's description leaves only for a reader entitled to it."""
    if case.confidential and not clear:
        return confidentiality.HIDDEN
    return case.description if clear else pii.scrub_text(case.description)


def to_xlsx(data: Iterator[tuple[Cell, ...]]) -> tuple[bytes, int]:
    book = new_book()
    count = add_sheet(book, "案件 Cases", HEADER, data)
    return to_bytes(book), count


def to_csv(data: Iterator[tuple[Cell, ...]]) -> bytes:
    return csv_bytes(HEADER, data)
