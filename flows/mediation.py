"""mediation: starts mediation once every party has consented, then ends.

It never waits for the mediator inside a process: sessions, the agreement or a failure
are recorded through the API, and their events start the next step (follow-up). The
one-month limit is kept on the case (``mediation_due_at``) for the sweep and the pages.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.steps import check_mediation


@flow(name="mediation", persist_result=False, log_prints=False)
async def mediation(case_id: int) -> str:
    state = await check_mediation(case_id)
    logger = get_run_logger()
    if state.status == "in_mediation":
        logger.info(
            "%s 调解中，等待调解员录入 awaiting the mediator (due %s)",
            state.number,
            state.mediation_due_at,
        )
        return "awaiting_mediator"
    if state.status == "assigned":
        logger.info("%s 等待各方同意调解 awaiting the parties' consent", state.number)
        return "awaiting_consent"
    logger.info("%s 当前状态 %s，无需调解 nothing to do", state.number, state.status)
    return str(state.status)
