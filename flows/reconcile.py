"""reconcile (scheduled): re-drive every case whose next step did not start or did not
finish. Killing any process at any moment loses no case: what it left behind is found
here and queued again under a fresh run key; the domain steps are idempotent, and each
notification has its own key, so nothing is done twice."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact

from models.settings import get_settings
from tasks.reconcile import (
    count_outbox_backlog,
    redrive_crashed_runs,
    redrive_failed_deliveries,
    redrive_stuck_cases,
)

ARTIFACT_KEY = "tiaojie-reconcile"


@flow(name="reconcile", persist_result=False, log_prints=False)
async def reconcile(stuck_after_s: int | None = None) -> dict[str, int]:
    settings = get_settings()
    stuck_after = settings.reconcile_stuck_after_s if stuck_after_s is None else stuck_after_s
    failed = await redrive_failed_deliveries()
    crashed = await redrive_crashed_runs()
    stuck = await redrive_stuck_cases(stuck_after)
    backlog = await count_outbox_backlog(max(stuck_after, 60))
    logger = get_run_logger()
    counts = {
        "failed_deliveries": len(failed),
        "crashed_runs": len(crashed),
        "stuck_cases": len(stuck),
        "backlog": backlog,
    }
    logger.info(
        "对账 reconcile: 投递失败 %s, 运行崩溃 %s, 滞留 %s, 积压 %s",
        *counts.values(),
    )
    if backlog:
        logger.warning(
            "outbox backlog %s rows older than %s s: is the relay running?", backlog, stuck_after
        )
    redriven = failed + crashed + stuck
    if redriven:
        await acreate_table_artifact(
            key=ARTIFACT_KEY,
            table=[
                {"case_id": r.case_id, "step": r.step, "outbox_id": r.outbox_id, "reason": r.reason}
                for r in redriven
            ],
            description="对账重新驱动的步骤 / Steps re-driven by the reconciler",
        )
    return counts
