"""reports (daily): the month's ranking of communities and paired agencies on the three
rates (each with the number of cases it counts), overdue cases per level, recurring
clusters and the problem of the month, as Prefect artifacts. The figures are the
dashboard's (:mod:`models.metrics`).

Every figure is an aggregate over unit codes, categories and case numbers; respondents
that are people are masked by the metrics layer, firms are named. Every text put into a
Markdown artifact is escaped (a firm's name typed by the public cannot become a link).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from models import clock
from models.text import markdown_escape as md
from tasks.reports import (
    read_clusters,
    read_monthly_ranking,
    read_overdue_by_level,
    read_problem_of_the_month,
)


def _pct(value: Any) -> str:
    return f"{float(value) * 100:.1f}%" if isinstance(value, int | float) else "—"


def _share(row: dict[str, Any], rate: str, part: str, whole: str) -> str:
    return f"{_pct(row.get(rate))} ({row.get(part, 0)}/{row.get(whole, 0)})"


def rates_markdown(rows: list[dict[str, Any]], *, month: str) -> str:
    lines = [
        f"# 月度排名 Monthly ranking {month}",
        "",
        "响应率：首次联系在时限内；解决率、满意率：当事人在独立回访中的回答；括号内为件数。 "
        "Response: first contact within the limit; resolution and satisfaction: the "
        "complainant's answers at an independent return visit; cases in brackets.",
        "",
        "| 名次 Rank | 单位 Unit | 案件 Cases | 响应率 Response | 解决率 Resolution "
        "| 满意率 Satisfaction | 得分 Score |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=lambda r: (r.get("rank") is None, r.get("rank") or 0)):
        lines.append(
            f"| {md(row.get('rank') or '—')} | {md(row.get('unit_name', ''))} "
            f"{md(row.get('unit_code', ''))} "
            f"| {row.get('cases', 0)} "
            f"| {_share(row, 'response_rate', 'responded_in_time', 'response_cases')} "
            f"| {_share(row, 'resolution_rate', 'resolved', 'resolution_cases')} "
            f"| {_share(row, 'satisfaction_rate', 'satisfied', 'rated')} "
            f"| {_pct(row.get('score'))} |"
        )
    if not rows:
        lines.append("| — | 本月无案件 no cases this month | 0 | — | — | — | — |")
    return "\n".join(lines)


@flow(name="reports", persist_result=False, log_prints=False)
async def reports(days: int = 30) -> dict[str, int]:
    now = clock.now()
    since = now - timedelta(days=days)
    local = clock.to_local(now)
    month_start = local.date().replace(day=1)
    rates = await read_monthly_ranking(month_start)
    overdue = await read_overdue_by_level(now)
    clusters = await read_clusters(since)
    problem = await read_problem_of_the_month(month_start)

    await acreate_markdown_artifact(
        key="tiaojie-unit-ranking",
        markdown=rates_markdown(rates, month=f"{month_start:%Y-%m}"),
        description="月度排名：三率（响应率、解决率、满意率） / Monthly ranking, three rates",
    )
    await acreate_table_artifact(
        key="tiaojie-unit-rates",
        table=rates or [{"结果 result": "无数据 no data"}],
        description="各单位三率 / Rates per unit",
    )
    await acreate_table_artifact(
        key="tiaojie-overdue-by-level",
        table=overdue or [{"结果 result": "无逾期 nothing overdue"}],
        description="各层级逾期案件 / Overdue cases per level",
    )
    await acreate_table_artifact(
        key="tiaojie-clusters",
        table=clusters or [{"结果 result": "无聚集 no clusters"}],
        description="同源聚集 / Recurring clusters",
    )
    problem_md = "# 本月突出问题 Problem of the month\n\n" + (
        "\n".join(f"- **{md(k)}**: {md(v)}" for k, v in problem.items())
        if problem
        else "本月暂无突出问题 / nothing recurring this month"
    )
    await acreate_markdown_artifact(
        key="tiaojie-problem-of-the-month",
        markdown=problem_md,
        description="本月突出问题 / Problem of the month",
    )
    get_run_logger().info(
        "报表 reports: %s units, %s overdue rows, %s clusters",
        len(rates),
        len(overdue),
        len(clusters),
    )
    return {"units": len(rates), "overdue_levels": len(overdue), "clusters": len(clusters)}
