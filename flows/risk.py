"""risk-notice: tell the people a dangerous or unsettling case concerns.

Started by the Prefect automation on the ``tiaojie.risk.warning`` and
``tiaojie.cluster.warning`` events (the early warning reaches the street's responsible
leader, 包案领导, with the assessment task's deadline), and by intake itself for an
emergency (the community leader and the on-duty supervisor hear at once). Every notice
is delivered once, by key, however often the flow runs.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.triage import notify_risk


@flow(name="risk-notice", persist_result=False, log_prints=False)
async def risk_notice(case_id: int) -> int:
    sent = await notify_risk(case_id)
    get_run_logger().info("风险通知 risk notices sent: %s", len(sent))
    return len(sent)
