"""The simulation's comparison table: the scenarios side by side, one row per measure
(composite, the three rates, the share settled at each level, referrals, the overdue
peak, workload p50/p95), as rows for a page and as Markdown for a Prefect artifact.

Only figures and the scenarios' own names: a summary holds no case text and no person.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"


def _num(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:g}" if isinstance(value, float) else str(value)


Measure = tuple[str, Callable[[dict[str, Any]], str]]

ALWAYS_SHOWN = ("community", "street")


def measures(summary: dict[str, Any]) -> list[Measure]:
    """(label, how to read it from one scenario's results), in the table's order."""
    from models.sim_report import LEVELS, RATES  # plotting stays out of a process until needed

    rows: list[Measure] = [(label, _reader(key, _pct)) for key, label in (RATES[3], *RATES[:3])]
    scenarios = summary["scenarios"].values()
    for level in LEVELS:
        # Community and street are where the question is asked ("what stays at the
        # grassroots?"), so their 0% is an answer too; other levels only when they settled any.
        if level in ALWAYS_SHOWN or any(r["settled_share_by_level"].get(level) for r in scenarios):
            rows.append((f"{level} 化解占比 settled share", _level_reader(level)))
    rows += [
        ("转结对部门 Referrals", lambda r: _num(r["referrals"]["total"])),
        ("超期峰值 Overdue peak", _reader("overdue_peak", _num)),
        ("人均日办件 Workload p50", _reader("workload_p50", _num)),
        ("人均日办件 Workload p95", _reader("workload_p95", _num)),
        ("案件 Cases", _reader("arrivals", _num)),
    ]
    return rows


def _reader(key: str, show: Callable[[Any], str]) -> Callable[[dict[str, Any]], str]:
    return lambda r: show(r.get(key))


def _level_reader(level: str) -> Callable[[dict[str, Any]], str]:
    return lambda r: _pct(r["settled_share_by_level"].get(level, 0.0))


def comparison_rows(summary: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Each measure with its value per scenario (in the summary's order)."""
    results = list(summary["scenarios"].values())
    return [(label, [read(r) for r in results]) for label, read in measures(summary)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def comparison_markdown(summary: dict[str, Any], *, report_url: str) -> str:
    """The comparison as Markdown, with the period, the scenarios' names and a link to
    the full report."""
    keys = list(summary["scenarios"])
    period = summary["period"]
    lines = [
        "## 政策模拟 Policy simulation",
        "",
        f"时段 Period: {period['from']}, {period['days']} 天 days · "
        f"随机种子 seed {summary['seed']}",
        "",
    ]
    lines += [f"- **{_cell(k)}**: {_cell(summary['scenarios'][k]['name'])}" for k in keys]
    lines += [
        "",
        "| 指标 Measure | " + " | ".join(_cell(k) for k in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    lines += [
        f"| {label} | " + " | ".join(values) + " |" for label, values in comparison_rows(summary)
    ]
    lines += ["", f"[完整报告（图表）Full report with charts]({report_url})", ""]
    return "\n".join(lines)
