"""Writing spreadsheets people open in Excel or WPS: .xlsx (openpyxl, write-only, so
memory stays flat for large exports) and CSV (UTF-8 with a BOM, which Excel needs to
read Chinese).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be
read by a spreadsheet as a formula (CSV/formula injection): such text gets a leading
``'`` and stays text. Numbers and dates are written as numbers and dates.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from models import clock

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
Cell = str | int | float | date | datetime | None


def safe_text(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def safe(value: Cell) -> Cell:
    """The value as a spreadsheet must store it: text that cannot run, local times."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, datetime):
        # Excel has no time zones: show Beijing time, as every page does.
        return clock.to_local(value).replace(tzinfo=None)
    return value


def add_sheet(
    book: Workbook, title: str, header: Sequence[str], rows: Iterable[Sequence[Cell]]
) -> int:
    """A sheet with a bold header row and frozen panes; returns the data rows written."""
    sheet: WriteOnlyWorksheet = book.create_sheet(title=title[:31])
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    cells = []
    for name in header:
        cell = WriteOnlyCell(sheet, value=safe_text(name))
        cell.font = bold
        cells.append(cell)
    sheet.append(cells)
    written = 0
    for row in rows:
        sheet.append([safe(v) for v in row])
        written += 1
    return written


def new_book() -> Workbook:
    return Workbook(write_only=True)


def to_bytes(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_text(h) for h in header])
    for row in rows:
        writer.writerow([_csv_text(safe(v)) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)
