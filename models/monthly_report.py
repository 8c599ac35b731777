"""The monthly report (月报) every street and district sends upward, as .xlsx: the three
rates per community and per street with their ranking, overdue cases and escalations
by level, and the problem of the month.

Every figure comes from :mod:`models.metrics`, the functions the dashboard and the
metrics API call, for the calendar month in Asia/Shanghai; nothing is counted twice in
two ways. Only aggregates, unit names and case numbers: no personal data (the metrics
layer masks respondents who are people).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from models import clock, metrics
from models.enums import UnitLevel
from models.errors import FieldProblem, ValidationError
from models.month_problem import MonthProblemPublic, get_month_problem
from models.settings import get_settings
from models.spreadsheet import Cell, add_sheet, new_book, to_bytes
from models.unit import Unit, column_by_code

RATE_LEVELS = (UnitLevel.COMMUNITY, UnitLevel.STREET, UnitLevel.AGENCY)
RATE_HEADER = (
    "名次 Rank",
    "单位编码 Code",
    "单位 Unit",
    "案件数 Cases",
    "响应考核件 Response cases",
    "按时响应 Responded in time",
    "响应率 Response rate",
    "解决考核件 Resolution cases",
    "解决数 Resolved",
    "解决率 Resolution rate",
    "评价数 Rated",
    "满意数 Satisfied",
    "满意率 Satisfaction rate",
    "综合得分 Score",
)
NOTE = (
    "每件按决定时刻计入当时负责的单位。响应率=首次联系在响应时限内的件数/响应考核件"
    "（自动派单不算联系，时限先到即计为超时）；解决率=独立回访中当事人答“已解决/基本解决”的件数"
    "/解决考核件（办理时限先到即计为未解决；移交件须接收单位反馈已解决）；满意率=答“满意/基本满意”"
    "的件数/评价数。综合得分=响应{r:.0%}+解决{s:.0%}+满意{t:.0%}。"
    " / Each case counts for the unit responsible at its deciding moment. Response = first "
    "contact within the response limit ÷ response cases (an automatic assignment is not a "
    "contact; a limit passed first is late); resolution = resolved or basically resolved at "
    "an independent return visit ÷ resolution cases (a limit passed first is unresolved; a "
    "referral needs the receiving unit's resolved outcome); satisfaction = satisfied or "
    "basically satisfied ÷ rated. Score = response {r:.0%} + resolution {s:.0%} + "
    "satisfaction {t:.0%}."
)


@dataclass(frozen=True)
class MonthlyReport:
    month: str  # "2026-11"
    start: datetime
    end: datetime
    as_of: datetime
    rates: dict[UnitLevel, list[metrics.UnitRates]]
    overdue: list[metrics.LevelCount]
    escalations: list[tuple[UnitLevel, int]]
    problem: metrics.ProblemOfTheMonth | None
    decided: MonthProblemPublic | None = None


MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")  # ASCII digits: \d takes every script's


def month_of(value: str) -> date:
    """``"2026-11"`` → the 1st of that month; anything else (``2026-13``, ``abc``,
    ``0001-01``) a :class:`~models.errors.ValidationError` saying how a month is written:
    the one reading of a month asked for (the REST metrics, the report page, the flow)."""
    if not MONTH.fullmatch(value) or not (clock.FIRST_YEAR <= int(value[:4]) <= clock.LAST_YEAR):
        shown = value[:20]
        zh = (
            f"月份 {shown} 格式不正确，应为 YYYY-MM（如 2026-11），"
            f"{clock.FIRST_YEAR} 年至 {clock.LAST_YEAR} 年"
        )
        en = (
            f"{shown!r} is not a month; write it YYYY-MM (e.g. 2026-11), "
            f"from {clock.FIRST_YEAR} to {clock.LAST_YEAR}"
        )
        raise ValidationError(
            f"month: {en}", f"month：{zh}", problems=[FieldProblem("month", zh, en)]
        )
    return date(int(value[:4]), int(value[5:]), 1)


def previous_month(today: date) -> date:
    first = today.replace(day=1)
    return date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)


def build(
    session: Session, first: date, *, now: datetime, within_path: str | None = None
) -> MonthlyReport:
    start, end = metrics.month_range(first)
    as_of = min(now, end)
    rates = metrics.rates_by_level(
        session, since=start, until=end, levels=RATE_LEVELS, within_path=within_path
    )
    overdue = metrics.overdue_by_level(session, now=as_of, within_path=within_path, since=start)
    escalated = metrics.recent_escalations(
        session, since=start, until=end, within_path=within_path, limit=1_000_000
    )
    codes = {row.to_unit for row in escalated if row.to_unit}
    levels = column_by_code(session, codes, Unit.level)
    per_level = Counter(levels.get(row.to_unit) for row in escalated if row.to_unit)
    order = sorted(UnitLevel, key=lambda lv: (lv == UnitLevel.AGENCY, lv.rank))
    escalations = [(lv, per_level.get(lv, 0)) for lv in order]
    problem = metrics.problem_of_the_month(session, month_start=first, within_path=within_path)
    month = f"{first:%Y-%m}"
    decided = get_month_problem(session, month=month)
    return MonthlyReport(month, start, end, as_of, rates, overdue, escalations, problem, decided)


def _rate_rows(rows: list[metrics.UnitRates]) -> list[tuple[Cell, ...]]:
    return [
        (
            r.rank,
            r.unit_code,
            r.unit_name,
            r.cases,
            r.response_cases,
            r.responded_in_time,
            r.response_rate,
            r.resolution_cases,
            r.resolved,
            r.resolution_rate,
            r.rated,
            r.satisfied,
            r.satisfaction_rate,
            r.score,
        )
        for r in sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, r.unit_code))
    ]


def to_xlsx(report: MonthlyReport) -> bytes:
    book = new_book()
    last_day = clock.to_local(report.end).date() - timedelta(days=1)
    add_sheet(
        book,
        "月报 Summary",
        ("项目 Item", "内容 Value"),
        [
            ("月份 Month", report.month),
            (
                "统计期间 Period",
                f"{report.month}-01 – {last_day:%Y-%m-%d}（北京时间 Beijing time）",
            ),
            ("逾期统计时点 Overdue as of", report.as_of),
            ("生成时间 Made at", clock.now()),
            ("说明 Note", _note()),
        ],
    )
    for level in RATE_LEVELS:
        add_sheet(book, f"{level.zh}三率 {level.en}", RATE_HEADER, _rate_rows(report.rates[level]))
    add_sheet(
        book,
        "逾期 Overdue",
        ("层级 Level", "在办超期案件 Open cases overdue here", "本月到期未办 Limits passed"),
        [(f"{c.level_zh} {c.level_en}", c.overdue, c.breaches) for c in report.overdue],
    )
    add_sheet(
        book,
        "提级 Escalations",
        ("提级至 Escalated to", "次数 Escalations"),
        [(f"{lv.zh} {lv.en}", n) for lv, n in report.escalations],
    )
    p = report.problem
    add_sheet(
        book,
        "突出问题 Problem",
        ("类别 Category", "依据 By", "对象 About", "案件数 Cases", "案件编号 Case numbers"),
        [
            (
                f"{p.category_zh} {p.category_en}",
                "被申请人 respondent" if p.kind == "respondent" else "地点 place",
                p.label,
                p.count,
                ", ".join(p.case_numbers),
            )
        ]
        if p
        else [("本月暂无突出问题 nothing recurring this month", None, None, 0, None)],
    )
    d = report.decided
    add_sheet(
        book,
        "每月一题 Decision",
        ("题目 Problem", "类别 Category", "牵头单位 Lead unit", "工作方案 Plan", "确定时间 Set at"),
        [(d.title, f"{d.category_zh}", d.lead_unit_name, d.plan, d.set_at)]
        if d
        else [("尚未确定 not set yet", None, None, None, None)],
    )
    return to_bytes(book)


def _note() -> str:
    w = metrics.weights()
    return NOTE.format(r=w["response"], s=w["resolution"], t=w["satisfaction"])


def reports_dir() -> Path:
    return get_settings().home / "reports"


def stored_path(month: str) -> Path:
    return reports_dir() / f"monthly-{month}.xlsx"


def store(data: bytes, month: str) -> Path:
    """Keep the city-wide report of ``month`` under ``TIAOJIE_HOME/reports`` (owner-only)."""
    folder = reports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = stored_path(month)
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.chmod(0o600)
    partial.replace(path)
    return path
