"""assignment: route to the lowest unit that can handle the case and pick a person, or
refer it to the paired agency, then tell the assignee.

Started by ``escalated`` (and by ``triaged`` when the intake run that triaged the case
did not go on to assign it, e.g. it was killed). The assignee's notification is sent in
the same run (a task), so a case costs one flow run, not two; the ``assigned`` event's
own ``notify`` step is then found done by the relay and not started again.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from models.routing import AssignmentResult
from tasks.notify import notify_case
from tasks.steps import assign_case


def log_assignment(result: AssignmentResult) -> None:
    get_run_logger().info(
        "%s 派单 %s: unit=%s assignee=%s agency=%s",
        result.number,
        result.outcome,
        result.unit_code,
        result.assignee_id,
        result.agency_code,
    )


def owes_notification(result: AssignmentResult) -> bool:
    """The case has an assignee (now, or already before this run) to tell."""
    return result.outcome == "assigned" or (
        result.outcome == "unchanged" and result.assignee_id is not None
    )


async def assign_and_notify(case_id: int) -> str:
    """Assign (idempotent) and, when the case now has an assignee, send what it owes."""
    result = await assign_case(case_id)
    log_assignment(result)
    if owes_notification(result):
        sent = await notify_case(case_id)
        get_run_logger().info("%s 通知已发送 notifications sent: %s", result.number, len(sent))
    return str(result.outcome)


@flow(name="assignment", persist_result=False, log_prints=False)
async def assignment(case_id: int) -> str:
    return await assign_and_notify(case_id)
