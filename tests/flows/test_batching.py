"""Adaptive batching: when more cases wait than there are free run slots, they share
``intake-batch`` runs; each case is still triaged, assigned and notified once, and can
be found in Prefect by its number."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from sqlalchemy import Engine
from sqlmodel import col, func, select

from deployments.definitions import BATCH_FLOWS, STEP_FLOWS
from flows.batching import plan_runs
from flows.relay import InProcessExecutor, Relay
from models.case import Case
from models.db import read_session, write_session
from models.enums import OutboxState
from models.event import CaseEvent, Outbox
from models.outbox import Job, batch_spec
from tasks.give_way import in_urgent_run, urgent_run
from tests.factories import City, make_case
from tests.flows.conftest import Receiver
from tests.flows.helpers import runs_of

DESCRIPTIONS = [
    "服装厂拖欠工人工资两个月，老板联系不上。",
    "楼下饭店油烟噪音扰民，晚上十一点还在营业。",
    "邻居装修占用楼道，堆放建筑垃圾，多次沟通无果。",
    "物业公司停车费涨价，未经业主大会同意。",
]


def _job(i: int) -> Job:
    return Job(
        outbox_id=i,
        case_id=100 + i,
        seq=1,
        verb="submitted",
        step="intake",
        idempotency_key=f"{100 + i}:1:submitted",
        redrive=0,
        case_number=f"JX-2026-{i:06d}",
        category="labour",
        priority="normal",
        unit_code=None,
    )


def test_plan_runs_gives_each_case_its_own_run_while_slots_are_free() -> None:
    jobs = [_job(i) for i in range(3)]
    assert plan_runs(jobs, free_slots=8, batch_max=50) == ([[j] for j in jobs], [])
    assert plan_runs([], free_slots=8, batch_max=50) == ([], [])


def test_plan_runs_shares_the_free_slots_evenly_and_the_rest_waits() -> None:
    jobs = [_job(i) for i in range(10)]
    groups, rest = plan_runs(jobs, free_slots=3, batch_max=50)
    assert [len(g) for g in groups] == [4, 3, 3] and rest == []
    assert [j for g in groups for j in g] == jobs  # each once, oldest first
    many = [_job(i) for i in range(60)]
    groups, rest = plan_runs(many, free_slots=1, batch_max=25)
    assert groups == [many[:25]] and rest == many[25:]
    # No free slot: everything waits for the next poll.
    assert plan_runs(jobs, free_slots=0, batch_max=25) == ([], jobs)


@task(persist_result=False, cache_policy=NO_CACHE)
async def _sees_urgent_run() -> bool:
    """What a batch step's worker thread sees (tasks/steps.py runs them in threads)."""
    return await asyncio.to_thread(in_urgent_run)


@flow(persist_result=False)
async def _probe() -> bool:
    return await _sees_urgent_run()


def test_a_run_kept_for_urgent_work_is_known_as_such_down_to_its_step_threads(
    aloop: Any,
) -> None:
    """So its own batch steps never give way (tasks/give_way.py) while the backlog's do."""

    async def urgent() -> bool:
        with urgent_run():
            return await _probe()

    assert aloop.run(urgent()) is True
    assert aloop.run(_probe()) is False


def test_batch_run_is_named_tagged_and_keyed_by_its_cases() -> None:
    jobs = [_job(i) for i in range(3)]
    spec = batch_spec("intake", jobs)
    assert spec.name.startswith("JX-2026-000000 … JX-2026-000002 (3 件 cases)")
    assert {f"case:JX-2026-{i:06d}" for i in range(3)} <= set(spec.tags)
    assert spec.parameters == {"case_ids": [100, 101, 102]}  # ids only
    assert batch_spec("intake", list(jobs)).key == spec.key  # a redelivery: same run
    assert batch_spec("intake", jobs[:2]).key != spec.key


@pytest.mark.prefect
def test_waiting_cases_share_runs_and_each_is_routed_once(
    case_db: Engine, city: City, receiver: Receiver, aloop: Any
) -> None:
    with write_session(case_db) as s:
        cases = [
            make_case(s, description=DESCRIPTIONS[i % 4], place_code=("BA1", "BB1")[i % 2])
            for i in range(12)
        ]
        ids = [c.id for c in cases]
        numbers = [c.number for c in cases]
    # Two intake run slots for twelve waiting cases: two runs of six.
    executor = InProcessExecutor(STEP_FLOWS, concurrency=4, batch_flows=BATCH_FLOWS, lane=2)
    aloop.run(Relay(executor, engine=case_db).run_until_idle())

    with read_session(case_db) as s:
        routed = s.exec(
            select(Case).where(
                col(Case.id).in_(ids), col(Case.status).in_(["assigned", "referred"])
            )
        ).all()
        assert len(routed) == 12
        for verb in ("triaged", "assigned"):
            per_case = s.exec(
                select(CaseEvent.case_id, func.count())
                .where(col(CaseEvent.case_id).in_(ids), CaseEvent.verb == verb)
                .group_by(col(CaseEvent.case_id))
            ).all()
            assert all(n == 1 for _, n in per_case), (verb, per_case)
        pending = s.exec(
            select(func.count())
            .select_from(Outbox)
            .where(col(Outbox.case_id).in_(ids), Outbox.state != OutboxState.DELIVERED)
        ).one()
        assert pending == 0
        assigned = [c for c in routed if c.status.value == "assigned"]
    for case in assigned:
        key = next(k for k in receiver.keys if k.startswith(f"{case.id}:"))
        assert receiver.count(key) == 1

    # Each case is found in Prefect by its number: one run, a batch, completed.
    batch_ids = set()
    for number in numbers:
        runs = aloop.run(runs_of(number))
        assert len(runs) == 1, (number, [r.name for r in runs])
        run = runs[0]
        assert "batch" in run.tags and run.name.endswith("· intake")
        assert run.state is not None and run.state.is_completed()
        assert set(run.parameters) == {"case_ids"}
        batch_ids.add(run.id)
    assert len(batch_ids) == 2

    async def artifacts() -> list[Any]:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=list(batch_ids))
                )
            )

    tables = aloop.run(artifacts())
    rows = [
        row for a in tables for row in (json.loads(a.data) if isinstance(a.data, str) else a.data)
    ]
    shown = {row["案件 case"] for row in rows}
    assert shown == set(numbers)


@pytest.mark.prefect
def test_a_case_that_fails_in_a_batch_is_named_and_redriven_alone(
    case_db: Engine, city: City, receiver: Receiver, aloop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.reconcile import reconcile
    from models import triage
    from models.errors import GuardFailed
    from tests.flows.helpers import drive

    with write_session(case_db) as s:
        cases = [make_case(s, description=DESCRIPTIONS[i], place_code="BA1") for i in range(4)]
        ids = [c.id for c in cases]
        broken = ids[1]
    real = triage.triage_case

    def flaky(session: Any, *, case_id: int, actor: Any) -> Any:
        if case_id == broken:
            raise GuardFailed("the place of this case is unknown", "案件地点无法识别")
        return real(session, case_id=case_id, actor=actor)

    monkeypatch.setattr(triage, "triage_case", flaky)
    executor = InProcessExecutor(STEP_FLOWS, concurrency=4, batch_flows=BATCH_FLOWS, lane=1)
    aloop.run(Relay(executor, engine=case_db).run_until_idle())

    def statuses() -> dict[int | None, str]:
        with read_session(case_db) as s:
            return {c.id: c.status.value for c in s.exec(select(Case).where(col(Case.id).in_(ids)))}

    assert [statuses()[i] for i in ids] == ["assigned", "submitted", "assigned", "assigned"]
    (run,) = aloop.run(runs_of(cases[1].number))
    assert run.state is not None and run.state.is_failed()
    assert str(broken) in (run.state.message or "")  # the supervisor sees which case

    monkeypatch.setattr(triage, "triage_case", real)  # the cause is fixed
    assert aloop.run(reconcile(stuck_after_s=3600))["crashed_runs"] == 1
    drive(aloop, case_db)
    assert set(statuses().values()) == {"assigned"}
    notified = sorted(int(k.split(":")[0]) for k in receiver.keys if k.endswith(":assigned"))
    assert notified == sorted(ids)  # each assignee told once
    assert aloop.run(reconcile(stuck_after_s=3600))["crashed_runs"] == 0
