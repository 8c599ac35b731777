"""The one writer of workbooks (models.spreadsheet): what openpyxl reads back from a
sheet, streamed or in memory: a bold header with frozen panes, text that cannot run as
a formula, numbers as numbers, times in Beijing time with their formats, empty text as
an empty cell."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import openpyxl
import pytest

from models import spreadsheet


@pytest.mark.parametrize("stream", [True, False])
def test_a_sheet_reads_back_as_written(stream: bool) -> None:
    book = spreadsheet.new_book(stream=stream)
    rows: list[tuple[spreadsheet.Cell, ...]] = [
        ("=1+1", 7, 0.25, datetime(2026, 11, 30, 16, 30, tzinfo=UTC), date(2026, 12, 1)),
        ("", None, -3, True, "文字 text"),
    ]
    title = "第一 First" + "x" * 40
    assert spreadsheet.add_sheet(book, title, ("@a", "b", "c", "d", "e"), rows) == 2
    assert spreadsheet.add_sheet(book, "空 Empty", ("only",), []) == 0
    data = spreadsheet.to_bytes(book)

    loaded = openpyxl.load_workbook(io.BytesIO(data))
    first, empty = loaded.worksheets
    assert first.title == title[:31] and empty.title == "空 Empty"
    assert first.freeze_panes == empty.freeze_panes == "A2"
    assert [c.value for c in first[1]] == ["'@a", "b", "c", "d", "e"]
    assert all(c.font.b for c in first[1]) and not first["A2"].font.b
    assert [c.value for c in first[2]] == [
        "'=1+1",
        7,
        0.25,
        datetime(2026, 12, 1, 0, 30),  # Beijing time, without a zone
        datetime(2026, 12, 1),
    ]
    assert first["A2"].data_type == "s"
    assert first["D2"].number_format == "yyyy-mm-dd h:mm:ss"
    assert first["E2"].number_format == "yyyy-mm-dd"
    assert [c.value for c in first[3]] == [None, None, -3, True, "文字 text"]
    assert [[c.value for c in row] for row in empty.iter_rows()] == [["only"]]


def test_a_value_of_another_kind_is_refused() -> None:
    book = spreadsheet.new_book()
    with pytest.raises(TypeError):
        spreadsheet.add_sheet(book, "s", ("a",), [(object(),)])  # type: ignore[list-item]
