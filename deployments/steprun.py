"""The command of a flow-run process on the work pool: one process start, several runs.

    python -m deployments.steprun            # what the worker starts for a flow run

A ``process`` worker starts a new Python process for every flow run, and importing
Prefect and Tiaojie costs 2 to 3 s of CPU each time (much more when the machine is
busy). This entry point

1. runs the flow run the worker started it for, exactly as ``python -m prefect.engine``
   does (same environment, same signals, same states);
2. then, while the process is warm, takes more *step* runs (intake, intake-batch,
   assignment, notify, mediation, follow_up) that are waiting ``Scheduled`` on the same
   deployments, and runs them here, a few at a time. Each is claimed with the same
   ``Scheduled → Pending`` transition a worker proposes, which the Prefect server grants
   to one claimant only, so a run is never run twice; each stays its own flow run with
   its own name (the case number), tags, idempotency key and ids-only parameters. A
   process killed while it runs them leaves them ``Running`` without heartbeats: the
   zombie automation marks them ``Crashed`` and the reconciler re-drives their cases,
   as for any run.

It stops taking runs when none are waiting, after ``TIAOJIE_WARM_RUNS`` runs (default
40; 0 turns this off) or after ``TIAOJIE_WARM_BUDGET_S`` seconds (default 120).
``TIAOJIE_WARM_CONCURRENCY`` runs go at once (default 4). Only this module and
``prefect`` are imported before the first run; each step's flow module is imported
when a run of it is taken.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import runpy
import sys
import time
from typing import Any
from uuid import UUID

DEPLOYMENT_NAME = "tiaojie"
# step (flow name) -> "module:attribute"
STEP_ENTRYPOINTS: dict[str, str] = {
    "intake": "flows.intake:intake",
    "intake-batch": "flows.intake:intake_batch",
    "assignment": "flows.assignment:assignment",
    "notify": "flows.notify:notify",
    "mediation": "flows.mediation:mediation",
    "follow_up": "flows.follow_up:follow_up",
}

log = logging.getLogger("tiaojie.steprun")


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def load_step_flow(step: str) -> Any:
    module, attribute = STEP_ENTRYPOINTS[step].split(":")
    return getattr(importlib.import_module(module), attribute)


async def claim_waiting(client: Any, deployment_ids: list[UUID], limit: int) -> list[Any]:
    """Up to ``limit`` step runs due now, each moved to Pending by us (or skipped)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterNextScheduledStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.exceptions import Abort
    from prefect.states import Pending
    from prefect.types._datetime import now
    from prefect.utilities.engine import propose_state

    waiting = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=deployment_ids),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
            next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(before_=now("UTC")),
        ),
        sort=FlowRunSort.NEXT_SCHEDULED_START_TIME_ASC,
        limit=limit * 2,
    )
    taken: list[Any] = []
    for run in waiting:
        if len(taken) >= limit:
            break
        try:
            state = await propose_state(client, Pending(), flow_run_id=run.id)
        except Abort:
            continue  # a worker or another warm process took it first
        if state.is_pending():
            taken.append(run)
    return taken


async def take_more(first_run_id: UUID) -> int:
    """Run waiting step runs in this process; returns how many were run."""
    from prefect.client.orchestration import get_client
    from prefect.context import AsyncClientContext, SyncClientContext
    from prefect.exceptions import ObjectNotFound
    from prefect.flow_engine import run_flow_async

    most = int(_env_number("TIAOJIE_WARM_RUNS", 40))
    budget_s = _env_number("TIAOJIE_WARM_BUDGET_S", 120)
    at_once = max(1, int(_env_number("TIAOJIE_WARM_CONCURRENCY", 4)))
    if most <= 0:
        return 0
    started = time.monotonic()
    with SyncClientContext.get_or_create():
        async with AsyncClientContext.get_or_create() as ctx:
            client = ctx.client if ctx.client is not None else get_client()
            first = await client.read_flow_run(first_run_id)
            pool = None
            if first.deployment_id is not None:
                pool = (await client.read_deployment(first.deployment_id)).work_pool_name
            steps: dict[UUID, str] = {}
            for step in STEP_ENTRYPOINTS:
                try:
                    deployment = await client.read_deployment_by_name(f"{step}/{DEPLOYMENT_NAME}")
                except ObjectNotFound:
                    continue
                if deployment.work_pool_name == pool:
                    steps[deployment.id] = step
            if not steps:
                return 0
            done = 0
            while done < most and time.monotonic() - started < budget_s:
                runs = await claim_waiting(client, list(steps), min(at_once, most - done))
                if not runs:
                    break

                async def run_one(run: Any) -> None:
                    step = steps.get(run.deployment_id)
                    assert step is not None
                    try:
                        await run_flow_async(
                            load_step_flow(step),
                            flow_run=run,
                            parameters=run.parameters,
                            return_type="state",
                        )
                    except Exception:  # its state says what went wrong; go on
                        log.exception("flow run %s ended with an error", run.id)

                await asyncio.gather(*(run_one(run) for run in runs))
                done += len(runs)
            return done


def main() -> None:
    flow_run_id = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PREFECT__FLOW_RUN_ID")
    code: str | int | None = 0
    try:
        runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, (str, int)) or exc.code is None else 1
    if code in (0, None) and flow_run_id:
        try:
            extra = asyncio.run(take_more(UUID(flow_run_id)))
        except Exception:
            log.exception("taking more step runs in this process failed")
        else:
            if extra:
                print(f"tiaojie: {extra} more step runs in this process", flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
