"""Reading a district's spreadsheets: CSV rows (UTF-8, with or without a BOM) and
GeoJSON features, each with the file, row and column a problem is reported against.

Excel on a Chinese Windows saves "CSV (逗号分隔)" in GBK. Guessing an encoding can turn
names into nonsense without anyone noticing, so a file that is not UTF-8 is refused
with a message that says how to save it as UTF-8 instead ("CSV UTF-8 (逗号分隔)").
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from models.errors import FieldProblem, ValidationError

SAVE_AS_UTF8_ZH = (
    "请在 Excel 中选择 文件 → 另存为 → 保存类型「CSV UTF-8 (逗号分隔) (*.csv)」后重新导入"
)
SAVE_AS_UTF8_EN = 'in Excel choose File > Save As > "CSV UTF-8 (Comma delimited) (*.csv)"'


_PYDANTIC_ZH = {
    "extra_forbidden": "未知的键（拼写错误？） / unknown key (a typo?)",
    "missing": "缺少必填项 / required, missing",
    "string_type": "应为文字 / must be text",
}


@dataclass(frozen=True)
class Problem:
    """One mistake in an input file. ``row`` counts the header as row 1 (as a
    spreadsheet shows it); 0 means the file as a whole."""

    file: str
    row: int
    column: str
    message_zh: str
    message_en: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.row}" if self.row else self.file
        if self.column:
            where += f":{self.column}"
        return f"{where}: {self.message_zh} / {self.message_en}"


class ImportRefused(ValidationError):
    """The file has mistakes; nothing was changed. ``problems`` lists every one."""

    code = "import_refused"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(
            f"{len(problems)} problem(s) found; nothing was changed",
            f"发现 {len(problems)} 处问题，未做任何更改",
            problems=[FieldProblem(p.column, str(p), str(p)) for p in problems],
        )
        self.file_problems = problems


@dataclass(frozen=True)
class Row:
    """One data row: its line in the file and its cells by column name."""

    number: int
    cells: dict[str, str]
    extra: dict[str, Any] | None = None


def decode(data: bytes, file: str) -> str:
    """The text of a UTF-8 file (a leading BOM is dropped), else :class:`ImportRefused`."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        guess = "GBK/GB18030（Excel 默认）" if _is_gb(data) else "未知编码 unknown encoding"
        raise ImportRefused(
            [
                Problem(
                    file,
                    line,
                    "",
                    f"文件不是 UTF-8 编码（看来是 {guess}）；{SAVE_AS_UTF8_ZH}",
                    f"the file is not UTF-8 (it looks like {guess}); {SAVE_AS_UTF8_EN} "
                    "and import it again",
                )
            ]
        ) from None


def _is_gb(data: bytes) -> bool:
    try:
        data.decode("gb18030")
    except UnicodeDecodeError:
        return False
    return True


def read_csv(path: Path, *, required: Iterable[str], optional: Iterable[str] = ()) -> list[Row]:
    """Rows of a CSV file with a header line; blank lines are skipped. Missing or unknown
    columns are refused (with the header row's number, 1)."""
    text = decode(path.read_bytes(), path.name)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    required = list(required)
    known = set(required) | set(optional)
    problems = [
        Problem(path.name, 1, name, f"缺少列 {name}", f"column {name} is missing")
        for name in required
        if name not in header
    ]
    problems += [
        Problem(
            path.name,
            1,
            name,
            f"未知的列 {name}（可用：{', '.join(sorted(known))}）",
            f"unknown column {name} (known: {', '.join(sorted(known))})",
        )
        for name in header
        if name and name not in known
    ]
    if problems:
        raise ImportRefused(problems)
    rows: list[Row] = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        cells = {
            name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(header)
        }
        rows.append(Row(reader.line_num, cells))
    return rows


def read_geojson(path: Path, *, columns: Iterable[str]) -> list[Row]:
    """Features of a GeoJSON FeatureCollection as rows (row = feature number, from 1);
    a Point geometry fills ``lat``/``lon`` when the properties do not, and a Polygon or
    MultiPolygon is kept in ``extra["boundary"]``."""
    try:
        doc = json.loads(decode(path.read_bytes(), path.name))
    except json.JSONDecodeError as exc:
        raise ImportRefused(
            [
                Problem(
                    path.name, exc.lineno, "", f"不是有效的 JSON：{exc.msg}", f"not JSON: {exc.msg}"
                )
            ]
        ) from None
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise ImportRefused(
            [Problem(path.name, 0, "", "不是 GeoJSON 要素集合", "not a GeoJSON FeatureCollection")]
        )
    names = list(columns)
    rows: list[Row] = []
    for n, feature in enumerate(features, start=1):
        props = feature.get("properties") or {} if isinstance(feature, dict) else {}
        cells = {k: "" if props.get(k) is None else str(props.get(k)).strip() for k in names}
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        extra: dict[str, Any] = {}
        if isinstance(geometry, dict):
            kind, coords = geometry.get("type"), geometry.get("coordinates")
            if kind == "Point" and isinstance(coords, list) and len(coords) >= 2:
                cells["lon"] = cells.get("lon") or str(coords[0])
                cells["lat"] = cells.get("lat") or str(coords[1])
            elif kind in ("Polygon", "MultiPolygon"):
                extra["boundary"] = {"type": kind, "coordinates": coords}
        rows.append(Row(n, cells, extra or None))
    return rows


def problems_from(
    exc: pydantic.ValidationError, file: str, row: int, columns: Mapping[str, str] | None = None
) -> list[Problem]:
    """Problems of one row from pydantic's errors (one per failing column)."""
    out: list[Problem] = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        column = (columns or {}).get(field, field)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] in _PYDANTIC_ZH:
            message = _PYDANTIC_ZH[error["type"]]
        zh, _, en = message.partition(" / ")
        out.append(Problem(file, row, column, zh, en or zh))
    return out
