"""assignment: route to the lowest unit that can handle the case and pick a person, or
refer it to the paired agency. Started by ``triaged`` and ``escalated``; the
``assigned`` event it causes starts the notify step."""

from __future__ import annotations

from prefect import flow, get_run_logger

from tasks.steps import assign_case


@flow(name="assignment", persist_result=False, log_prints=False)
async def assignment(case_id: int) -> str:
    result = await assign_case(case_id)
    get_run_logger().info(
        "%s 派单 %s: unit=%s assignee=%s agency=%s",
        result.number,
        result.outcome,
        result.unit_code,
        result.assignee_id,
        result.agency_code,
    )
    return str(result.outcome)
