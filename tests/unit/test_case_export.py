"""The case list's search and its export: keyset pages cover every match once; 10,000
cases export to an .xlsx that openpyxl opens and that matches the list row for row;
personal data is masked unless the reader is entitled; no cell can run as a formula."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import openpyxl
from sqlmodel import Session, col, select

from models import clock
from models.case import Case
from models.case_export import HEADER, rows, to_csv, to_xlsx
from models.case_search import CaseFilter, batches, search
from models.enums import CaseStatus, Category, Priority
from models.unit import Unit
from tests.conftest import T0
from tests.factories import PHONE, build_city, make_case

MANY = 10_000


def _bulk(session: Session, count: int) -> None:
    """Plain cases straight into the table (the export reads rows, not workflows)."""
    communities = session.exec(select(Unit).where(col(Unit.code).in_(("CMA", "CMB")))).all()
    cases = []
    for n in range(count):
        unit = communities[n % 2]
        at = T0 - timedelta(minutes=n % 5000)  # many share a minute: ties break by id
        cases.append(
            Case(
                number=f"JX-2026-{n + 100:06d}",
                category=list(Category)[n % 8],
                priority=Priority.NORMAL,
                status=CaseStatus.ASSIGNED if n % 3 else CaseStatus.CLOSED,
                is_open=bool(n % 3),
                description=f"第{n}号诉求" if n % 7 else '=HYPERLINK("http://x")',
                unit_id=unit.id,
                unit_path=unit.path,
                created_at=at,
                updated_at=at,
                resolution_due_at=at + timedelta(days=n % 20) if n % 4 else None,
                is_group=n % 11 == 0,
            )
        )
    session.add_all(cases)
    session.flush()


def _paged(session: Session, f: CaseFilter, sort: str, *, limit: int) -> list[str]:
    """The numbers of every page of the list, following each page's cursor."""
    numbers: list[str] = []
    cursor = None
    while True:
        page = search(session, f, reach=None, now=T0, sort=sort, cursor=cursor, limit=limit)
        numbers += [c.number for c in page.cases]
        if (cursor := page.next_cursor) is None:
            return numbers


def test_keyset_pages_cover_every_match_once_in_every_sort(
    session: Session, vclock: clock.VirtualClock
) -> None:
    build_city(session)
    _bulk(session, 700)
    f = CaseFilter(status=CaseStatus.ASSIGNED)
    for sort in ("newest", "oldest", "due", "number"):
        seen = _paged(session, f, sort, limit=64)
        assert len(seen) == len(set(seen)) == 466, sort
        assert search(session, f, reach=None, now=T0, sort=sort, limit=64).total == 466
    spoiled = search(session, f, reach=None, now=T0, cursor="not-a-cursor", limit=5)
    assert len(spoiled.cases) == 5  # a spoiled cursor starts again, never a 500
    # The export's batches (rows of a few columns) walk the same order as the pages.
    columns = (Case.id, Case.number, Case.created_at, Case.resolution_due_at)
    for sort in ("newest", "oldest", "due", "number"):
        paged = _paged(session, f, sort, limit=500)
        walked = batches(session, f, columns, reach=None, now=T0, sort=sort, size=64)
        sizes = []
        numbers: list[str] = []
        for batch in walked:
            sizes.append(len(batch))
            numbers += [row.number for row in batch]
        assert numbers == paged, sort
        assert sizes == [64] * 7 + [466 - 7 * 64], sort


def test_ten_thousand_cases_export_to_xlsx_matching_the_list(
    session: Session, vclock: clock.VirtualClock
) -> None:
    build_city(session)
    make_case(session)  # with a complainant's name and phone
    _bulk(session, MANY)
    everything = CaseFilter()
    columns = (Case.id, Case.number, Case.created_at)
    listed = [
        c.number for b in batches(session, everything, columns, reach=None, now=T0) for c in b
    ]
    assert len(listed) == MANY + 1

    data, count = to_xlsx(
        rows(session, everything, reach=None, reveal=lambda _cases: set(), now=T0)
    )
    assert count == MANY + 1
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    sheet = book.worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == HEADER
    assert [row[0] for row in values[1:]] == listed
    cells = [str(v) for row in values[1:] for v in row if v is not None]
    assert not any(v.startswith(("=", "+", "@")) for v in cells)
    assert '\'=HYPERLINK("http://x")' in cells
    assert PHONE not in cells and f"{PHONE[:3]}****{PHONE[-4:]}" in cells
    book.close()


def test_csv_masks_by_reader_and_never_starts_a_formula(
    session: Session, vclock: clock.VirtualClock
) -> None:
    build_city(session)
    entitled = make_case(session, description="-1+2 邻居噪声 +86 138 0013 8000")
    other = make_case(session)
    f = CaseFilter()

    def export(reveal_id: int | None) -> list[list[str]]:
        body = to_csv(
            rows(
                session,
                f,
                reach=None,
                reveal=lambda cs: {c.id for c in cs if c.id == reveal_id},
                now=T0,
            )
        )
        assert body.startswith("\ufeff".encode())
        return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))

    masked = export(None)
    assert all(PHONE not in cell for row in masked for cell in row)
    description = {row[0]: row[-1] for row in masked[1:]}[entitled.number]
    assert description.startswith("'-1+2") and "138****8000" in description
    clear = {row[0]: row for row in export(entitled.id)[1:]}
    assert clear[entitled.number][11] == PHONE and PHONE not in clear[other.number][11]
