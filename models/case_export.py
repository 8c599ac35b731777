"""The case list as a spreadsheet (案件导出): the same filter, reach and order as the list
page, one row per case. Names and phones are shown in clear only in the cases that
``reveal(batch)`` (the caller's personal-data rule, asked once per batch) says the reader
is entitled to; everyone else gets the
masked forms, and phone or ID numbers typed into the description are masked the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Row
from sqlmodel import Session, col, select

from models import confidentiality, pii
from models.access import ACCESS_COLUMNS, AccessFacts
from models.case import Case
from models.case_search import CaseFilter, batches
from models.cases import CONTACT_COLUMNS, shown_contact
from models.enums import PartySide
from models.overdue import overdue_clause
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
# What a row shows and what the personal-data rule reads, by column: a batch of rows,
# not of whole cases and parties (their other columns cost five times these).
_SHOWN: tuple[Any, ...] = tuple(
    col(c)
    for c in (
        Case.number,
        Case.created_at,
        Case.category,
        Case.priority,
        Case.status,
        Case.resolution_due_at,
        Case.is_group,
        Case.description,
    )
)
_CASE_COLUMNS = tuple({c.key: c for c in (*ACCESS_COLUMNS, *_SHOWN)}.values())


class Described(Protocol):
    """What :func:`description_for_export` reads of a case (a ``Case``, or a row)."""

    @property
    def confidential(self) -> bool: ...
    @property
    def description(self) -> str: ...


def _first_complainants(session: Session, ids: list[int]) -> dict[int, Row[Any]]:
    """Each case's first complainant (lowest id), as a row of the contact columns."""
    out: dict[int, Row[Any]] = {}
    parties = session.exec(
        select(col(Party.case_id), *CONTACT_COLUMNS)
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
    reveal: Callable[[Sequence[AccessFacts]], set[int]],
    now: datetime,
    sort: str = "newest",
) -> Iterator[tuple[Cell, ...]]:
    """One tuple per matching case, in list order, read :data:`BATCH` cases at a time
    (rows of :data:`models.access.ACCESS_COLUMNS` and the shown columns, which is what
    ``reveal`` is given). Overdue is :func:`models.overdue.overdue_clause`, the rule's
    SQL form, read with the row."""
    units = dict(session.exec(select(col(Unit.id), col(Unit.code))).all())
    staff = dict(session.exec(select(col(Staff.id), col(Staff.display_name))).all())
    columns = (*_CASE_COLUMNS, overdue_clause(now).label("overdue"))
    for cases in batches(session, f, columns, reach=reach, now=now, sort=sort, size=BATCH):
        parties = _first_complainants(session, [c.id for c in cases])
        clear = reveal(cases)
        for case in cases:
            yield _row(case, parties.get(case.id), case.id in clear, units, staff)


def _row(
    case: Row[Any],
    party: Row[Any] | None,
    clear: bool,
    units: dict[Any, str],
    staff: dict[Any, str],
) -> tuple[Cell, ...]:
    name, phone = shown_contact(party, reveal=clear) if party is not None else ("", None)
    return (
        case.number,
        case.created_at,
        case.category.label,
        case.priority.label,
        case.status.label,
        units.get(case.unit_id, ""),
        staff.get(case.assignee_id, ""),
        case.resolution_due_at,
        "是 yes" if case.overdue else "",
        "是 yes" if case.is_group else "",
        name,
        phone or "",
        description_for_export(case, clear=clear),
    )


def description_for_export(case: Described, *, clear: bool) -> str:
    """A confidential case's description leaves only for a reader entitled to it."""
    if case.confidential and not clear:
        return confidentiality.HIDDEN
    return case.description if clear else pii.scrub_text(case.description)


def to_xlsx(data: Iterator[tuple[Cell, ...]]) -> tuple[bytes, int]:
    book = new_book(stream=True)
    count = add_sheet(book, "案件 Cases", HEADER, data)
    return to_bytes(book), count


def to_csv(data: Iterator[tuple[Cell, ...]]) -> bytes:
    return csv_bytes(HEADER, data)
