"""intake: classify, link duplicates and clusters, set time limits, move to triaged.

Started by the ``submitted`` and ``reopened`` events. After a successful triage the
same run goes on to assignment and the assignee's notification (as tasks, each
idempotent), so that a case costs one flow run, not three: on a work pool every flow run
starts a new Python process. The ``triaged`` and ``assigned`` events still get their
steps from the relay, which finds them done and starts nothing (see ``flows/relay.py``),
or starts them when this run died before getting there.

``intake-batch`` does the same for several cases in one run, when the relay finds more
cases waiting than it has free run slots (adaptive batching, see ``flows/batching.py``):
one task per step for the whole batch, each case in its own transaction, a log line
and a row of the run's table artifact per case, and the run tagged with every case
number. A case that fails a step is named in the run's (Failed) final state and picked
up again like any case whose run died.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.client.schemas.objects import State
from prefect.events import emit_event
from prefect.states import Completed, Failed

from flows.assignment import assign_and_notify, log_assignment, owes_notification
from models.enums import Priority
from models.routing import AssignmentResult
from models.triage import TriageResult
from tasks.notify import notify_cases
from tasks.sms import send_receipts
from tasks.steps import assign_cases, triage_case, triage_cases
from tasks.triage import notify_risk


def report_triage(result: TriageResult) -> None:
    """The run's log line for a triaged case, and the early warning of a cluster."""
    logger = get_run_logger()
    logger.info(
        "%s 研判分流完成 triaged: category=%s priority=%s unit=%s group=%s",
        result.number,
        result.category,
        result.priority,
        result.unit_code,
        result.is_group,
    )
    if result.duplicate_of_id is not None:
        logger.info(
            "%s 疑似重复件 possible duplicate of case id %s", result.number, result.duplicate_of_id
        )
    if result.cluster_warning:
        # Early warning (苗头预警): many complaints against one source.
        logger.warning(
            "%s 同源投诉聚集预警 cluster warning: %s cases", result.number, result.cluster_size
        )
    if result.risk_level:
        logger.warning("%s 不稳定风险预警 warning: %s", result.number, result.risk_level)
    event = result.warning_event
    if event is not None:
        # The street's assessment task is open and its leader not told yet: the
        # automation on this event starts risk-notice, which tells the responsible
        # leader (包案领导). Once per task, not per complaint (TriageResult.warning_event).
        emit_event(event=event, **_warning_resources(result))
    if result.held_for_assessment:
        logger.info("%s 待研判 waits for a person to confirm its category", result.number)


def _warning_resources(result: TriageResult) -> dict[str, Any]:
    """What the early-warning event names: the case (ids and number only), and for a
    cluster the cluster as the resource, so the feed groups its warnings."""
    case = {
        "prefect.resource.id": f"tiaojie.case.{result.case_id}",
        "prefect.resource.name": result.number,
    }
    payload: dict[str, Any] = {"case_id": result.case_id, "level": result.risk_level}
    if not (result.cluster_warning and result.cluster_key):
        return {"resource": case, "payload": payload}
    return {
        "resource": {
            "prefect.resource.id": f"tiaojie.cluster.{result.cluster_key}",
            "prefect.resource.name": f"cluster {result.cluster_key[:8]}",
        },
        "related": [{**case, "prefect.resource.role": "case"}],
        "payload": {**payload, "cluster_size": result.cluster_size},
    }


@flow(name="intake", persist_result=False, log_prints=False)
async def intake(case_id: int) -> str:
    result = await triage_case(case_id)
    report_triage(result)
    if result.priority == Priority.EMERGENCY:
        await notify_risk(case_id)  # the community leader and the supervisor, at once
    if result.unit_code is not None:
        await assign_and_notify(case_id)
    # Last: a gateway that is down delays nothing else (the row keeps the error).
    await send_receipts([case_id])
    return str(result.category)


@flow(name="intake-batch", persist_result=False, log_prints=False)
async def intake_batch(case_ids: list[int]) -> State[Any]:
    """``intake`` for several cases at once (ids only)."""
    logger = get_run_logger()
    triaged = await triage_cases(case_ids)
    for result in triaged.done:
        report_triage(result)
        if result.priority == Priority.EMERGENCY:
            await notify_risk(result.case_id)
    routable = [r.case_id for r in triaged.done if r.unit_code is not None]
    assigned = await assign_cases(routable) if routable else None
    results = assigned.done if assigned else []
    for a in results:
        log_assignment(a)
    owed = [a.case_id for a in results if owes_notification(a)]
    if owed:
        counts = await notify_cases(owed)
        logger.info("通知已发送 notifications sent: %s", counts.get("sent", 0))
    await send_receipts(case_ids)
    failed = {**triaged.failed, **(assigned.failed if assigned else {})}
    await _table(triaged.done, results, failed)
    for case_id, error in failed.items():
        logger.warning("case id %s: step failed: %s", case_id, error)
    summary = f"{len(case_ids)} cases: {len(results)} routed, {len(failed)} failed"
    if failed:
        ids = sorted(failed)
        return Failed(message=f"{summary} (case ids {ids}); the reconciler re-drives them")
    return Completed(message=summary)


async def _table(
    triaged: list[TriageResult], assigned: list[AssignmentResult], failed: dict[int, str]
) -> None:
    """One row per case: what supervisors look for in the run (no personal data)."""
    by_id = {a.case_id: a for a in assigned}
    rows = []
    for t in triaged:
        a = by_id.get(t.case_id)
        rows.append(
            {
                "案件 case": t.number,
                "类别 category": str(t.category),
                "优先级 priority": str(t.priority),
                "结果 outcome": a.outcome if a else "triaged",
                "单位 unit": (a.unit_code if a else t.unit_code) or "",
                "承办人 assignee id": a.assignee_id if a and a.assignee_id else "",
            }
        )
    seen = {t.case_id for t in triaged}
    rows.extend(
        {"案件 case": f"id {cid}", "结果 outcome": "failed", "单位 unit": "", "类别 category": ""}
        for cid in failed
        if cid not in seen
    )
    await acreate_table_artifact(
        table=rows, description=f"受理研判 intake: {len(rows)} cases in this run"
    )
