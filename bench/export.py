"""The case export (``models.case_export``): N cases through the list's search, the
personal-data rule and the formula guard into .xlsx and CSV, next to the baseline of
the same workbook writer (``models.spreadsheet``) given the columns straight from one
SELECT."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from sqlmodel import Session, col, select

from bench.citygen import build_city, create_database, load_cases
from bench.common import Workspace, ratio, rnd
from bench.config import Sizes


def _timed(fn: Any) -> tuple[Any, float]:
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def run(ws: Workspace, sizes: Sizes, console: Console) -> dict[str, Any]:
    from models import case_export, spreadsheet
    from models.case import Case
    from models.case_search import CaseFilter

    db_file = ws.path("export.db")
    engine = create_database(db_file)
    now = datetime.now(UTC)
    with Session(engine) as session:
        gen = build_city(session)
        session.commit()
    load_cases(db_file, gen, n=sizes.export_cases, due_fraction=0.05, now=now)
    console.print(f"{sizes.export_cases:,} cases loaded; exporting")
    everything = CaseFilter()

    def export(kind: str) -> bytes:
        with Session(engine) as session:
            rows = case_export.rows(
                session, everything, reach=None, reveal=lambda _cases: set(), now=now
            )
            return case_export.to_xlsx(rows)[0] if kind == "xlsx" else case_export.to_csv(rows)

    def baseline() -> bytes:
        with Session(engine) as session:
            plain = session.exec(
                select(  # type: ignore[call-overload]
                    col(Case.number),
                    col(Case.created_at),
                    col(Case.category),
                    col(Case.status),
                    col(Case.resolution_due_at),
                    col(Case.description),
                ).order_by(col(Case.created_at).desc(), col(Case.id).desc())
            ).all()
            book = spreadsheet.new_book(stream=True)
            spreadsheet.add_sheet(book, "cases", case_export.HEADER[:6], plain)
            return spreadsheet.to_bytes(book)

    xlsx, xlsx_s = _timed(lambda: export("xlsx"))
    csv, csv_s = _timed(lambda: export("csv"))
    _, baseline_s = _timed(baseline)
    engine.dispose()
    return {
        "cases": sizes.export_cases,
        "xlsx_s": rnd(xlsx_s),
        "csv_s": rnd(csv_s),
        "baseline_xlsx_s": rnd(baseline_s),
        "ratio": ratio(xlsx_s, baseline_s),
        "xlsx_mb": rnd(len(xlsx) / 2**20),
        "csv_mb": rnd(len(csv) / 2**20),
        "clock": "CPU seconds of this process (process_time)",
    }
