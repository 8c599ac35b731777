"""intake: classify, link duplicates and clusters, set time limits, move to triaged.

Started by the ``submitted`` and ``reopened`` events. After a successful triage the
same run goes on to assignment and the assignee's notification (as tasks, each
idempotent), so that a case costs one flow run, not three: on a work pool every flow run
starts a new Python process. The ``triaged`` and ``assigned`` events still get their
steps from the relay, which finds them done and starts nothing (see ``flows/relay.py``),
or starts them when this run died before getting there.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.events import emit_event

from flows.assignment import assign_and_notify
from tasks.steps import triage_case


@flow(name="intake", persist_result=False, log_prints=False)
async def intake(case_id: int) -> str:
    logger = get_run_logger()
    result = await triage_case(case_id)
    logger.info(
        "%s 分拣完成 triaged: category=%s priority=%s unit=%s group=%s",
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
    if result.cluster_warning and result.cluster_key:
        # Early warning (苗头预警): many complaints against one source.
        emit_event(
            event="tiaojie.cluster.warning",
            resource={
                "prefect.resource.id": f"tiaojie.cluster.{result.cluster_key}",
                "prefect.resource.name": f"cluster {result.cluster_key[:8]}",
            },
            related=[
                {
                    "prefect.resource.id": f"tiaojie.case.{result.case_id}",
                    "prefect.resource.role": "case",
                    "prefect.resource.name": result.number,
                }
            ],
            payload={"case_id": result.case_id, "cluster_size": result.cluster_size},
        )
        logger.warning(
            "%s 同源投诉聚集预警 cluster warning: %s cases", result.number, result.cluster_size
        )
    if result.unit_code is not None:
        await assign_and_notify(case_id)
    return str(result.category)
