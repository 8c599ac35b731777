"""Prefect tasks of the policy simulator (thin wrappers over models.sim_runs): record the
request, run it, publish the comparison. They pass the run's id; the database keeps the
request, the summary and the report. Nothing personal reaches Prefect: the summary holds
figures and unit names only (a simulated case's words are stand-ins)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from prefect import Flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun, State

from models import clock
from models.db import read_session, write_session
from models.errors import TiaojieError
from models.scenario import ScenarioError
from models.settings import get_settings
from models.sim_runs import (
    checked_request,
    create_run,
    fail_flow_run,
    fail_run,
    finish_run,
    get_run,
    mark_running,
    prepare,
    request_of,
    run_scenarios,
    sweep_stale_runs,
    unfinished_flow_runs,
)
from models.sim_table import comparison_markdown
from tasks.steps import sweep_task

ARTIFACT_KEY = "tiaojie-simulation"


@task(name="open_simulation", persist_result=False, cache_policy=NO_CACHE)
def open_simulation(raw: dict[str, Any], run_id: int | None, flow_run_id: str | None) -> int:
    """The run recorded by the web page (``run_id``), or a new record of ``raw`` (the
    Prefect UI's parameters) once it is checked; marked running. Returns its id."""
    with write_session() as session:
        if run_id is None:
            request = checked_request(raw)
            prepare(request)  # a bad request fails here and records nothing
            run_id = create_run(session, request, origin="prefect", by=None).id
            assert run_id is not None
        mark_running(session, run_id, flow_run_id=flow_run_id)
    return run_id


def _reason(exc: Exception) -> str:
    if isinstance(exc, TiaojieError):
        return f"{exc.message_zh} / {exc.message_en}"
    if isinstance(exc, ScenarioError):
        return str(exc)
    return f"内部错误 internal error: {type(exc).__name__}"


@task(name="run_simulation", persist_result=False, cache_policy=NO_CACHE)
def run_simulation(run_id: int) -> int:
    """Run the recorded request against the live database (only read) and keep the
    summary and the report; a run that cannot finish is recorded as failed, with why."""
    from models.sim_report import report_html  # plotting: only in the process that needs it

    with read_session() as session:
        request = request_of(get_run(session, run_id))
    try:
        scenarios = prepare(request)
        with read_session() as live:
            document = run_scenarios(
                live, scenarios, start=request.start, days=request.days, seed=request.seed
            )
        report = report_html(document)
    except Exception as exc:
        with write_session() as session:
            fail_run(session, run_id, _reason(exc))
        raise
    with write_session() as session:
        finish_run(session, run_id, document, report)
    return run_id


def report_url(run_id: int) -> str:
    return f"{get_settings().web_base_url}/web/simulations/{run_id}/report.html"


@task(name="publish_simulation", persist_result=False, cache_policy=NO_CACHE)
def publish_simulation(run_id: int) -> str:
    """The comparison table as a Markdown artifact, linked to the report page."""
    with read_session() as session:
        summary = get_run(session, run_id).summary
    assert summary is not None
    artifact = create_markdown_artifact(
        comparison_markdown(summary, report_url=report_url(run_id)),
        key=ARTIFACT_KEY,
        description=f"政策模拟 #{run_id} 情景对比 / Simulation #{run_id}: scenarios compared",
    )
    return str(artifact)


def record_cut_short(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Flow hook (cancelled, or crashed): the record says so rather than "running"."""
    with write_session() as session:
        fail_flow_run(
            session,
            str(flow_run.id),
            f"流程运行被取消或中断 / the flow run was {state.name or state.type.value.lower()}",
        )


async def flow_run_states(ids: list[str]) -> dict[str, str]:
    """Prefect's state type of each of these flow runs (those it still knows)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    wanted = FlowRunFilter(id=FlowRunFilterId(any_=[uuid.UUID(i) for i in ids]))
    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=wanted, limit=len(ids))
    return {str(r.id): r.state_type.value for r in runs if r.state_type is not None}


@sweep_task("sweep_stale_simulations")
async def sweep_stale_simulations() -> int:
    """Runs that will never finish marked failed, with why (the rule:
    :func:`models.sim_runs.sweep_stale_runs`); returns how many."""
    with read_session() as session:
        ids = unfinished_flow_runs(session)
    states = await flow_run_states(ids) if ids else {}

    def write() -> int:
        with write_session() as session:
            return len(sweep_stale_runs(session, now=clock.now(), flow_states=states))

    return await asyncio.to_thread(write)
