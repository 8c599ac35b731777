"""The monthly report (月报) every street and district sends upward, as .xlsx: the three
rates per community and per street with their ranking, overdue cases and escalations
by level, and the problem of the month.

Every figure comes from :mod:`models.metrics`, the functions the dashboard and the
metrics API call, for the calendar month in Asia/Shanghai; nothing is counted twice in
two ways. Only aggregates, unit names and case numbers: no personal data (the metrics
layer masks respondents who are people).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from models import clock, metrics, workdays
from models.enums import UnitLevel
from models.settings import get_settings
from models.spreadsheet import Cell, add_sheet, new_book, to_bytes
from models.unit import Unit

RATE_LEVELS = (UnitLevel.COMMUNITY, UnitLevel.STREET)
RATE_HEADER = (
    "名次 Rank",
    "单位编码 Code",
    "单位 Unit",
    "案件数 Cases",
    "按时响应 Responded in time",
    "响应率 Response rate",
    "化解数 Resolved",
    "化解率 Resolution rate",
    "评价数 Rated",
    "满意数 Satisfied",
    "满意率 Satisfaction rate",
    "综合得分 Score",
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


def month_of(value: str) -> date:
    """``"2026-11"`` → the 1st of that month (ValueError otherwise)."""
    year, _, month = value.partition("-")
    if len(year) != 4 or len(month) != 2:
        raise ValueError(f"not a month: {value!r} (use YYYY-MM)")
    return date(int(year), int(month), 1)


def previous_month(today: date) -> date:
    first = today.replace(day=1)
    return date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)


def bounds(first: date) -> tuple[datetime, datetime]:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return workdays.at_local(first, time(0, 0)), workdays.at_local(following, time(0, 0))


def build(
    session: Session, first: date, *, now: datetime, within_path: str | None = None
) -> MonthlyReport:
    start, end = bounds(first)
    as_of = min(now, end)
    rates = {
        level: metrics.unit_rates(
            session, since=start, until=end, level=level, within_path=within_path
        )
        for level in RATE_LEVELS
    }
    overdue = metrics.overdue_by_level(session, now=as_of, within_path=within_path)
    escalated = [
        row
        for row in metrics.recent_escalations(
            session, since=start, within_path=within_path, limit=1_000_000
        )
        if row.at < end
    ]
    codes = {row.to_unit for row in escalated if row.to_unit}
    levels = dict(
        session.exec(select(col(Unit.code), col(Unit.level)).where(col(Unit.code).in_(codes))).all()
    )
    per_level = Counter(levels.get(row.to_unit) for row in escalated if row.to_unit)
    order = sorted(UnitLevel, key=lambda lv: (lv == UnitLevel.AGENCY, lv.rank))
    escalations = [(lv, per_level.get(lv, 0)) for lv in order]
    problem = metrics.problem_of_the_month(session, month_start=first, within_path=within_path)
    return MonthlyReport(f"{first:%Y-%m}", start, end, as_of, rates, overdue, escalations, problem)


def _rate_rows(rows: list[metrics.UnitRates]) -> list[tuple[Cell, ...]]:
    return [
        (
            r.rank,
            r.unit_code,
            r.unit_name,
            r.cases,
            r.responded_in_time,
            r.response_rate,
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
            (
                "说明 Note",
                "响应率=按时响应/案件数；化解率=化解数/案件数；满意率=满意数/评价数（4–5分为满意）"
                " / Response = in time ÷ cases; resolution = resolved ÷ cases; satisfaction = "
                "satisfied (4-5) ÷ rated",
            ),
        ],
    )
    for level in RATE_LEVELS:
        add_sheet(book, f"{level.zh}三率 {level.en}", RATE_HEADER, _rate_rows(report.rates[level]))
    add_sheet(
        book,
        "逾期 Overdue",
        ("层级 Level", "逾期案件 Overdue cases"),
        [(f"{c.level_zh} {c.level_en}", c.overdue) for c in report.overdue],
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
    return to_bytes(book)


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
