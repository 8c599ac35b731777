"""Finding cases: the filters of the case list and its exports, sorting, and keyset
pagination (a page starts after the last row of the one before, so page 200 costs what
page 1 costs and a case recorded meanwhile neither repeats nor skips a row).

The caller passes the reach clause of the person asking (who may see which case is not
decided here) and the one overdue rule is :func:`models.overdue.overdue_clause`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, literal, or_
from sqlmodel import Session, col, select

from models import case_text, clock, workdays
from models.case import Case
from models.enums import CaseStatus, Category, Priority
from models.overdue import overdue_clause
from models.types import UTCDateTime

# A list counts its cases up to here ("10,000+"); a word search up to 1,000.
COUNT_CAP = 10_000
WORDS_COUNT_CAP = 1_000
# A word in more cases than this is matched while the cases are read in list order.
SCAN_ABOVE = 2_000
CASE_NUMBER = re.compile(r"^[A-Za-z]{1,8}-\d{4}-\d{1,8}$")
# Cases without a deadline sort after every dated one.
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CaseFilter:
    """Every field optional; set fields all apply (AND)."""

    status: CaseStatus | None = None
    category: Category | None = None
    priority: Priority | None = None
    unit_path: str | None = None  # the handling unit's subtree
    assignee_id: int | None = None
    created_from: date | None = None  # local (Asia/Shanghai) dates, both ends included
    created_to: date | None = None
    overdue: bool | None = None
    group: bool | None = None
    text: str | None = None  # a case number, or words of the description (models.case_text)
    # The reader's unit: a confidential case's words are searched only within its unit.
    reader_unit_id: int | None = None


@dataclass(frozen=True)
class Sort:
    key: str
    descending: bool

    def column(self) -> Any:
        if self.key == "due":
            return func.coalesce(col(Case.resolution_due_at), literal(FAR_FUTURE, UTCDateTime()))
        if self.key == "number":
            return col(Case.number)
        return col(Case.created_at)


SORTS = {
    "newest": Sort("created", True),
    "oldest": Sort("created", False),
    "due": Sort("due", False),
    "number": Sort("number", False),
}


@dataclass
class Page:
    cases: list[Case]
    total: int
    next_cursor: str | None
    sort: str = "newest"
    extra: dict[str, Any] = field(default_factory=dict)
    capped: bool = False  # more match than ``total`` says


def clauses(
    f: CaseFilter, *, now: datetime, dialect: str, scan: bool = False, joined: bool = False
) -> list[ColumnElement[bool]]:
    """The filter as SQL conditions; ``dialect`` chooses the full-text index
    (:mod:`models.case_text`), ``scan`` how a common word is matched (:func:`search`);
    ``joined``: the words are matched by joining :func:`models.case_text.matching_rows`,
    not here."""
    out: list[ColumnElement[bool]] = []
    if f.status is not None:
        out.append(col(Case.status) == f.status)
    if f.category is not None:
        out.append(col(Case.category) == f.category)
    if f.priority is not None:
        out.append(col(Case.priority) == f.priority)
    if f.unit_path is not None:
        out.append(col(Case.unit_path).startswith(f.unit_path, autoescape=True))
    if f.assignee_id is not None:
        out.append(col(Case.assignee_id) == f.assignee_id)
    if f.created_from is not None:
        out.append(col(Case.created_at) >= workdays.at_local(f.created_from, time(0, 0)))
    if f.created_to is not None:
        end = workdays.at_local(f.created_to + timedelta(days=1), time(0, 0))
        out.append(col(Case.created_at) < end)
    if f.overdue is not None:
        late = overdue_clause(now)
        out.append(late if f.overdue else ~late)
    if f.group is not None:
        out.append(col(Case.is_group) == f.group)
    if f.text:
        out.append(_text_clause(f, dialect, scan=scan, joined=joined))
    return out


def _text_clause(f: CaseFilter, dialect: str, *, scan: bool, joined: bool) -> ColumnElement[bool]:
    """A case number finds that case; anything else is words (:mod:`models.case_text`),
    searched in a confidential case only from within its unit."""
    text = (f.text or "").strip()
    searchable = or_(col(Case.confidential).is_(False), col(Case.unit_id) == f.reader_unit_id)
    if joined:
        return searchable
    found = None if CASE_NUMBER.match(text) else case_text.matching_clause(text, dialect, scan)
    if found is None:
        return col(Case.number) == text
    return and_(searchable, found)


def _words_table(f: CaseFilter, dialect: str) -> Any:
    """The matches of a word search to join (:func:`models.case_text.matching_rows`), or
    None (no words, a case number, PostgreSQL)."""
    text = (f.text or "").strip()
    if not text or CASE_NUMBER.match(text):
        return None
    return case_text.matching_rows(text, dialect)


def _encode(value: Any, case_id: int) -> str:
    raw = value.isoformat() if isinstance(value, datetime) else value
    return base64.urlsafe_b64encode(json.dumps([raw, case_id]).encode()).decode().rstrip("=")


def _decode(cursor: str, sort: Sort) -> tuple[Any, int] | None:
    try:
        raw, case_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        # The sort's own values may be far off (FAR_FUTURE for no due date): not the
        # typed-date rule, only what converts and what the database holds (a 500 before).
        value: Any = raw if sort.key == "number" else clock.ensure_utc(datetime.fromisoformat(raw))
        if not 0 < int(case_id) < 2**63:
            raise ValueError("not a case id")
        return value, int(case_id)
    except (ValueError, TypeError, OverflowError, json.JSONDecodeError):
        return None  # a spoiled cursor starts from the first page


def _sort_value(case: Case | Row[Any], sort: Sort) -> Any:
    if sort.key == "due":
        return case.resolution_due_at or FAR_FUTURE
    if sort.key == "number":
        return case.number
    return case.created_at


def _after(sort: Sort, value: Any, case_id: int) -> ColumnElement[bool]:
    column = sort.column()
    if sort.descending:
        return or_(column < value, and_(column == value, col(Case.id) < case_id))
    return or_(column > value, and_(column == value, col(Case.id) > case_id))


def _ordered(sort: Sort) -> list[Any]:
    column = sort.column()
    if sort.descending:
        return [column.desc(), col(Case.id).desc()]
    return [column.asc(), col(Case.id).asc()]


def search(
    session: Session,
    f: CaseFilter,
    *,
    reach: ColumnElement[bool] | None,
    now: datetime,
    sort: str = "newest",
    cursor: str | None = None,
    limit: int = 50,
    count: bool = True,
    offset: int = 0,
) -> Page:
    """One page of the cases matching ``f`` within ``reach``, and how many match (up to
    :data:`COUNT_CAP`, or :data:`WORDS_COUNT_CAP` for a word search: ``Page.capped``).

    A word found in many cases (more than :data:`SCAN_ABOVE`) is matched while reading
    the cases in list order, so that a page stops at its last row instead of fetching
    every match before sorting them (a common word in a million cases: tens of
    thousands); but not when the reader's matches fit on the page: read newest first,
    the page would never fill and every case would be read.

    ``offset`` (without a cursor) skips that many rows first: numbered pages, kept for
    clients that ask for them (the database reads every skipped row; the cursor of the
    page it gives, ``next_cursor``, continues from there at the cost of page 1)."""
    chosen = SORTS.get(sort, SORTS["newest"])
    dialect = session.get_bind().dialect.name
    reached = [reach] if reach is not None else []
    cap = WORDS_COUNT_CAP if f.text and not CASE_NUMBER.match(f.text.strip()) else COUNT_CAP
    total = _counted(session, f, reached, now=now, dialect=dialect, cap=cap) if count else 0
    # A word in 83,000 of 1,000,000 cases that a community's cases do not hold (a copy
    # of the bench city's cases, 50 times over): newest first read all of them, 570-700
    # ms; matches first 85-115 ms, and with none counted there is nothing to read.
    scan = (
        bool(f.text)
        and (not count or total > limit)
        and case_text.match_count(session, f.text or "", dialect, SCAN_ABOVE) > SCAN_ABOVE
    )
    where = clauses(f, now=now, dialect=dialect, scan=scan) + reached
    stmt = select(Case).where(*where)
    start = _decode(cursor, chosen) if cursor else None
    if start is not None:
        stmt = stmt.where(_after(chosen, *start))
    elif offset:
        stmt = stmt.offset(offset)
    ordered = stmt.order_by(*_ordered(chosen)).limit(limit + 1)
    # None counted, none to read (a word the reader's reach does not hold).
    rows = list(session.exec(ordered).all()) if total or not count else []
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows and more else None
    next_cursor = _encode(_sort_value(last, chosen), last.id or 0) if last is not None else None
    page = Page(rows, min(total, cap), next_cursor, sort if sort in SORTS else "newest")
    page.capped = total > cap
    return page


def _counted(
    session: Session,
    f: CaseFilter,
    reached: list[ColumnElement[bool]],
    *,
    now: datetime,
    dialect: str,
    cap: int,
) -> int:
    """How many cases match, counting no further than ``cap + 1``. A word search on
    SQLite walks the word index's matches joined to the cases, so that it stops at the
    cap (see :func:`models.case_text.matching_rows`)."""
    words = _words_table(f, dialect)
    matching = select(col(Case.id))
    if words is not None:
        matching = matching.select_from(words).join(Case, col(Case.id) == words.c.id)
    where = clauses(f, now=now, dialect=dialect, joined=words is not None) + reached
    counted = matching.where(*where).limit(cap + 1).subquery()
    return int(session.exec(select(func.count()).select_from(counted)).one())


def _where(
    session: Session, f: CaseFilter, *, reach: ColumnElement[bool] | None, now: datetime
) -> list[ColumnElement[bool]]:
    """The filter and the reach as conditions for reading every match (:func:`batches`);
    a word found in more than :data:`SCAN_ABOVE` cases is matched while the cases are
    read (:func:`search`)."""
    dialect = session.get_bind().dialect.name
    scan = (
        bool(f.text)
        and case_text.match_count(session, f.text or "", dialect, SCAN_ABOVE) > SCAN_ABOVE
    )
    where = clauses(f, now=now, dialect=dialect, scan=scan)
    return where + ([reach] if reach is not None else [])


def batches(
    session: Session,
    f: CaseFilter,
    columns: Sequence[Any],
    *,
    reach: ColumnElement[bool] | None,
    now: datetime,
    sort: str = "newest",
    size: int = 1000,
) -> Iterator[Sequence[Row[Any]]]:
    """All matching cases in list order as rows of ``columns`` (for exports), ``size``
    at a time: each batch is one statement, a keyset page after the last row of the one
    before, so memory stays flat over 10,000s of rows. Rows, not :class:`Case` objects:
    building whole cases (67 columns, 26 of them times) cost five times reading the
    columns an export shows. ``columns`` must hold ``Case.id`` and the sort's column
    (``created_at``, ``resolution_due_at`` or ``number``), which the next page starts
    after; their rows' attributes are named after the columns."""
    chosen = SORTS.get(sort, SORTS["newest"])
    where = _where(session, f, reach=reach, now=now)
    ordered = select(*columns).where(*where).order_by(*_ordered(chosen))
    stmt = ordered
    while True:
        rows = session.exec(stmt.limit(size + 1)).all()
        yield rows[:size]
        if len(rows) <= size:
            return
        last = rows[size - 1]
        stmt = ordered.where(_after(chosen, _sort_value(last, chosen), last.id))
