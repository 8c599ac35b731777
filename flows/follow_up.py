"""follow_up: schedule return visits after an agreement, a failed mediation or a
referral; after a visit is recorded, close the case, reopen it, or keep waiting for
the next visit."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.notify import notify_case
from tasks.steps import plan_follow_up, schedule_follow_ups, settle_after_follow_up


@flow(name="follow_up", persist_result=False, log_prints=False)
async def follow_up(case_id: int) -> str:
    logger = get_run_logger()
    plan = await plan_follow_up(case_id)
    if plan.action == "schedule":
        visits = await schedule_follow_ups(case_id)
        logger.info("回访已安排 return visits scheduled: %s", len(visits))
        return "scheduled"
    if plan.action == "await_receiver":
        await notify_case(case_id)  # tell the receiving unit it has a case to sign for
        logger.info("等待接收单位签收 waiting for the receiving unit")
        return "awaiting receiver"
    if plan.action == "settle":
        outcome = await settle_after_follow_up(case_id)
        logger.info("回访结论 after the return visit: %s", outcome)
        return str(outcome)
    logger.info("状态 %s，无需回访操作 nothing to do", plan.status)
    return "nothing"
