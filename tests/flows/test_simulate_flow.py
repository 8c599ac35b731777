"""The simulate flow (政策模拟): a small scenario over a few days is run, stored and
published as a Markdown artifact (the comparison table, a link to the report, nothing
personal); bad parameters fail before anything is stored; the supervisors' page starts
the deployment and the run it recorded is the one the flow fills in."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import Engine
from sqlmodel import func, select

from deployments.definitions import definitions
from deployments.launch import SIMULATE_DEPLOYMENT
from flows.simulate import simulate
from models.db import read_session
from models.demo import demo_complaints
from models.simulation_run import SimulationRun, SimulationStatus
from tasks.simulate import ARTIFACT_KEY
from tests.factories import City
from tests.flows.conftest import LoopRunner

pytestmark = pytest.mark.prefect

SMALL = """
name = "小样本 Small: two more mediators"
[arrivals]
mode = "generate"
per_working_day = 3
mix = { labour = 1, neighbour = 2 }
[[staffing]]
unit = "CMA"
role = "mediator"
add = 2
"""


def _runs(engine: Engine) -> list[SimulationRun]:
    with read_session(engine) as session:
        return list(session.exec(select(SimulationRun)).all())


def _artifact(aloop: LoopRunner) -> Any:
    async def latest() -> list[Any]:
        async with get_client() as client:
            return await client.read_latest_artifacts(limit=50)

    found = [a for a in aloop.run(latest()) if a.key == ARTIFACT_KEY]
    assert found
    return found[0]


def _personal_data() -> set[str]:
    values: set[str] = set()
    for complaint in demo_complaints():
        for party in complaint.parties:
            values |= {v for v in (party.name, party.phone, party.id_number) if v}
    return values


def test_a_small_simulation_is_stored_and_published(
    city: City, case_db: Engine, aloop: LoopRunner
) -> None:
    run_id = simulate(scenarios=[], scenario_toml=SMALL, start=date(2026, 11, 23), days=3, seed=7)

    (run,) = _runs(case_db)
    assert run.id == run_id and run.status == SimulationStatus.DONE
    assert run.origin == "prefect" and run.flow_run_id and run.error is None
    assert run.summary is not None and list(run.summary["scenarios"]) == ["custom"]
    assert run.summary["scenarios"]["custom"]["arrivals"] > 0
    assert run.report_html is not None and "政策模拟报告" in run.report_html

    markdown = str(_artifact(aloop).data)
    assert "| 指标 Measure | custom |" in markdown
    for row in ("综合 Composite", "及时响应率", "化解率", "满意率", "Referrals", "Overdue peak"):
        assert row in markdown
    assert "Workload p50" in markdown and "Workload p95" in markdown
    assert "settled share" in markdown
    assert f"/web/simulations/{run_id}/report.html" in markdown
    published = markdown + json.dumps(run.summary, ensure_ascii=False)
    assert not [v for v in _personal_data() if v in published]


@pytest.mark.parametrize(
    "params",
    [
        {"scenarios": ["no-such-scenario"]},
        {"scenarios": [], "scenario_toml": "name = \n"},
        {"scenarios": [], "scenario_toml": 'name = "x"\npolicies = "/etc/passwd"\n'},
        {"scenarios": []},
    ],
    ids=["unknown-name", "bad-toml", "file-reference", "nothing-chosen"],
)
def test_bad_parameters_fail_and_store_nothing(
    city: City, case_db: Engine, params: dict[str, Any]
) -> None:
    with pytest.raises(Exception, match=r"scenario|TOML|limits"):
        simulate(start=date(2026, 11, 23), days=3, **params)
    assert _runs(case_db) == []


def test_the_page_starts_the_deployment_the_flow_fills_in_its_run(
    city: City, case_db: Engine, aloop: LoopRunner
) -> None:
    import anyio.from_thread
    import httpx

    from api.app import create_app
    from api.web.auth import issue_session
    from models.db import write_session
    from models.settings import Settings
    from tests.api.conftest import SyncASGITransport

    (simulate_definition,) = [d for d in definitions() if d.flow is simulate]
    assert simulate_definition.full_name == SIMULATE_DEPLOYMENT

    async def deploy() -> None:
        await (await simulate_definition.to_deployment()).aapply()

    aloop.run(deploy())
    with write_session(case_db) as session:
        cookie, csrf = issue_session(session, city.staff["supervisor"].id or 0)
    app = create_app(Settings(database_url=str(case_db.url)))
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        httpx.Client(
            transport=SyncASGITransport(app, portal), base_url="http://testserver", timeout=30
        ) as client,
    ):
        client.cookies.set("tj_session", cookie)
        answer = client.post(
            "/web/simulations",
            data={"csrf_token": csrf, "start": "2026-11-23", "days": "3", "seed": "7"},
            files={"upload": ("small-plan.toml", SMALL.encode(), "application/toml")},
            follow_redirects=False,
        )
    assert answer.status_code == 303, answer.text
    (run,) = _runs(case_db)
    assert run.status == SimulationStatus.PENDING and run.flow_run_id

    async def created() -> Any:
        async with get_client() as client:
            flow_run = await client.read_flow_run(run.flow_run_id)
            await client.delete_flow_run(flow_run.id)  # no worker here is meant to run it
            return flow_run

    flow_run = aloop.run(created())
    assert flow_run.parameters["run_id"] == run.id
    # What the worker would do with that flow run:
    assert simulate(**flow_run.parameters) == run.id
    (done,) = _runs(case_db)
    assert (
        done.status == SimulationStatus.DONE and done.started_by_id == city.staff["supervisor"].id
    )
    assert list(done.summary or {}) and "small-plan" in (done.summary or {})["scenarios"]
    with read_session(case_db) as session:
        assert session.exec(select(func.count()).select_from(SimulationRun)).one() == 1


def test_a_run_that_cannot_finish_is_recorded_as_failed_with_why(
    city: City, case_db: Engine
) -> None:
    # By default the limits in force replay the period's history: this city has none.
    with pytest.raises(Exception, match="no complaints to simulate"):
        simulate(start=date(2026, 11, 23), days=3)
    (run,) = _runs(case_db)
    assert run.status == SimulationStatus.FAILED and run.parameters["scenarios"] == ["as-is"]
    assert run.error and "no complaints to simulate" in run.error and run.summary is None


def test_a_cancelled_or_crashed_flow_run_leaves_no_run_saying_running(
    city: City, case_db: Engine
) -> None:
    import uuid

    from prefect.client.schemas.objects import FlowRun
    from prefect.states import Cancelled, Crashed

    from models.db import write_session
    from models.sim_runs import SimulationRequest, create_run, mark_running
    from tasks.simulate import record_cut_short

    request = SimulationRequest(scenarios=["as-is"], start=date(2026, 11, 23), days=3)
    cancelled, crashed, other = (uuid.uuid4() for _ in range(3))
    with write_session(case_db) as session:
        for flow_run_id in (cancelled, crashed, other):
            run = create_run(session, request, origin="prefect", by=None)
            assert run.id is not None
            mark_running(session, run.id, flow_run_id=str(flow_run_id))
    assert simulate.on_cancellation_hooks == [record_cut_short] == simulate.on_crashed_hooks
    for flow_run_id, state in ((cancelled, Cancelled()), (crashed, Crashed())):
        record_cut_short(simulate, FlowRun(id=flow_run_id, flow_id=uuid.uuid4()), state)
    by_flow_run = {r.flow_run_id: r for r in _runs(case_db)}
    assert by_flow_run[str(cancelled)].status == SimulationStatus.FAILED
    assert "cancelled" in (by_flow_run[str(cancelled)].error or "").lower()
    assert by_flow_run[str(crashed)].status == SimulationStatus.FAILED
    assert by_flow_run[str(other)].status == SimulationStatus.RUNNING


def test_the_sweep_fails_a_run_whose_flow_run_died_unrecorded(
    city: City, case_db: Engine, aloop: LoopRunner
) -> None:
    """Killed with its runner (no hook ran): the flow run is Crashed in Prefect and the
    row says running. The escalation sweep's step asks Prefect and marks it failed; a run
    whose flow run is still under way is left alone."""
    from prefect.states import Crashed, Running

    from models.db import write_session
    from models.sim_runs import SimulationRequest, create_run, mark_running
    from tasks.simulate import sweep_stale_simulations

    async def flow_runs() -> list[str]:
        async with get_client() as client:
            dead = await client.create_flow_run(simulate, state=Crashed())
            alive = await client.create_flow_run(simulate, state=Running())
            return [str(dead.id), str(alive.id)]

    dead, alive = aloop.run(flow_runs())
    request = SimulationRequest(scenarios=["as-is"], start=date(2026, 11, 23), days=3)
    with write_session(case_db) as session:
        for flow_run_id in (dead, alive):
            run = create_run(session, request, origin="web", by=None)
            assert run.id is not None
            mark_running(session, run.id, flow_run_id=flow_run_id)

    assert aloop.run(sweep_stale_simulations.fn()) == 1

    by_flow_run = {r.flow_run_id: r for r in _runs(case_db)}
    assert by_flow_run[dead].status == SimulationStatus.FAILED
    assert "ended (crashed)" in (by_flow_run[dead].error or "")
    assert by_flow_run[alive].status == SimulationStatus.RUNNING
