"""monthly_report (月报, 01:00 on the 1st of each month): the previous month's report as
.xlsx, kept under ``TIAOJIE_HOME/reports`` and linked from a Prefect artifact to the
page that serves it to supervisors (``/web/reports/monthly/YYYY-MM.xlsx``)."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_link_artifact

from models import clock
from models.monthly_report import month_of, previous_month
from models.settings import get_settings
from tasks.reports import write_monthly_report


@flow(name="monthly_report", persist_result=False, log_prints=False)
async def monthly_report(month: str | None = None) -> str:
    """``month`` as YYYY-MM; by default the month before today (Asia/Shanghai)."""
    chosen = month or f"{previous_month(clock.to_local(clock.now()).date()):%Y-%m}"
    month_of(chosen)  # refuse a malformed month before any work
    name = await write_monthly_report(chosen)
    url = f"{get_settings().web_base_url}/web/reports/monthly/{chosen}.xlsx"
    await acreate_link_artifact(
        key="tiaojie-monthly-report",
        link=url,
        link_text=f"月报 Monthly report {chosen} (.xlsx)",
        description=f"{chosen} 月报：三率与排名、逾期与提级、本月突出问题 / Monthly report",
    )
    get_run_logger().info("月报 monthly report %s written: %s", chosen, name)
    return name
