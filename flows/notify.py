"""notify: tell the people concerned about the case's latest events, once each."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.notify import notify_case


@flow(name="notify", persist_result=False, log_prints=False)
async def notify(case_id: int) -> int:
    sent = await notify_case(case_id)
    get_run_logger().info("通知已发送 notifications sent: %s", ", ".join(sent) or "none")
    return len(sent)
