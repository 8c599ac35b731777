"""Deployments are defined once and registered idempotently; the deployment executor
creates one run per key; the one-process worker carries a case to its assignee."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from prefect.automations import Automation
from prefect.client.orchestration import get_client
from sqlalchemy import Engine

from deployments.definitions import (
    STEP_FLOWS,
    ZOMBIE_AUTOMATION,
    definitions,
    install_automations,
)
from deployments.deploy import deploy_all
from deployments.serve import run_worker
from flows.relay import DeploymentDispatcher
from models.case import Case
from models.db import read_session, write_session
from models.lifecycle import NEXT_STEP
from models.outbox import Job
from tests.factories import City, make_case
from tests.flows.conftest import Receiver

pytestmark = pytest.mark.prefect


def test_every_step_has_a_flow_and_a_deployment() -> None:
    steps = {s for s in NEXT_STEP.values() if s}
    assert steps <= set(STEP_FLOWS)
    names = {d.flow.name for d in definitions()}
    assert set(STEP_FLOWS) <= names
    assert {"escalation", "reconcile", "reports", "monthly_report", "retention"} <= names


def test_deploy_twice_and_create_runs_from_deployments(aloop: Any) -> None:
    first = aloop.run(deploy_all("tiaojie-test"))
    second = aloop.run(deploy_all("tiaojie-test"))
    assert first == second and len(first) == len(definitions())
    assert {"retrain-triage/tiaojie", "risk-notice/tiaojie"} <= set(first)

    async def automations() -> list[Any]:
        await install_automations()
        async with get_client() as client:
            return await client.read_automations_by_name(ZOMBIE_AUTOMATION)

    found = aloop.run(automations())
    assert len(found) == 1
    assert found[0].trigger.posture == "Proactive"
    assert isinstance(aloop.run(Automation.aread(name=ZOMBIE_AUTOMATION)), Automation)

    dispatcher = DeploymentDispatcher(
        {step: f"{flow.name}/tiaojie" for step, flow in STEP_FLOWS.items()}
    )
    job = Job(
        outbox_id=1,
        case_id=424242,
        seq=2,
        verb="triaged",
        step="assignment",
        idempotency_key="424242:2:triaged",
        redrive=0,
        case_number="DEP-2026-000001",
        category="labour",
        priority="normal",
        unit_code="CMA",
    )

    async def twice() -> tuple[Any, Any]:
        async with get_client() as client:
            first = await dispatcher.start(client, job)
            again = await dispatcher.start(client, job)
            await client.delete_flow_run(first.id)  # no worker here is meant to run it
            return first, again

    a, b = aloop.run(twice())
    assert a.id == b.id
    assert a.name == "DEP-2026-000001 · assignment"
    assert a.parameters == {"case_id": 424242}
    assert {"case:DEP-2026-000001", "unit:CMA", "category:labour"} <= set(a.tags)
    assert a.work_pool_name == "tiaojie-test"


def test_one_process_worker_carries_a_case_to_its_assignee(
    case_db: Engine, city: City, receiver: Receiver, aloop: Any
) -> None:
    stop = asyncio.Event()

    async def start() -> asyncio.Task[None]:
        return asyncio.create_task(run_worker(serve_deployments=True, stop=stop))

    worker = aloop.run(start())
    try:
        with write_session(case_db) as s:
            case_id = make_case(s).id
        deadline = time.monotonic() + 60
        while True:
            with read_session(case_db) as s:
                case = s.get(Case, case_id)
                assert case is not None
                if case.status.value == "assigned" and receiver.keys:
                    break
            assert time.monotonic() < deadline, case.status
            time.sleep(0.2)
    finally:
        aloop.loop.call_soon_threadsafe(stop.set)

        async def wait() -> None:
            await asyncio.wait_for(worker, timeout=60)

        aloop.run(wait())
    assert receiver.keys == [f"{case_id}:3:assigned"]
