"""Prefect tasks for the reconciler: find what did not start or did not finish, and
put it back in the outbox queue (the relay then starts it under a fresh run key)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from sqlmodel import col, func, select

from models import clock
from models.case import Case
from models.db import read_session
from models.enums import CaseStatus, OutboxState
from models.event import Outbox
from models.outbox import parse_run_key, redrive

# Statuses where the system, not a person, owes the next move.
SYSTEM_OWES = (CaseStatus.SUBMITTED, CaseStatus.TRIAGED, CaseStatus.ESCALATED, CaseStatus.REOPENED)


@dataclass(frozen=True)
class Redriven:
    outbox_id: int
    case_id: int
    step: str
    reason: str


def _latest_step_row(case_id: int) -> Outbox | None:
    with read_session() as session:
        return session.exec(
            select(Outbox)
            .where(Outbox.case_id == case_id, col(Outbox.step).is_not(None))
            .order_by(col(Outbox.id).desc())
            .limit(1)
        ).first()


def _redrive_latest(
    case_id: int, *, step: str | None, seq: int | None, redrive_no: int | None, reason: str
) -> Redriven | None:
    row = _latest_step_row(case_id)
    if row is None or row.id is None or row.step is None:
        return None
    if step is not None and (row.step != step or int(row.payload.get("seq", -1)) != seq):
        return None  # the case has moved on since that run
    if redrive_no is not None and int(row.payload.get("redrive", 0)) != redrive_no:
        return None  # already re-driven after that run
    if not redrive(row.id, reason=reason):
        return None
    return Redriven(row.id, case_id, row.step, reason)


def _still_owed(case_ids: list[int]) -> list[int]:
    """Those of these cases that wait on the system for their next step."""
    if not case_ids:
        return []
    with read_session() as session:
        found = session.exec(
            select(Case.id).where(
                col(Case.id).in_(set(case_ids)), col(Case.status).in_(SYSTEM_OWES)
            )
        ).all()
        return [case_id for case_id in found if case_id is not None]


@task(name="redrive_failed_deliveries", persist_result=False, cache_policy=NO_CACHE)
async def redrive_failed_deliveries(limit: int = 500) -> list[Redriven]:
    def run() -> list[Redriven]:
        with read_session() as session:
            rows = session.exec(
                select(Outbox.id, Outbox.case_id, Outbox.step)
                .where(Outbox.state == OutboxState.FAILED)
                .order_by(col(Outbox.id))
                .limit(limit)
            ).all()
        done = []
        for outbox_id, case_id, step in rows:
            assert outbox_id is not None
            if redrive(outbox_id, reason="delivery failed"):
                done.append(Redriven(outbox_id, case_id, step or "-", "delivery failed"))
        return done

    return await asyncio.to_thread(run)


# A case to re-drive: (case id, step, seq, redrive number); step None = its latest step.
_Target = tuple[int, str | None, int | None, int | None]


def _redrive_each(targets: list[_Target], reason: str) -> list[Redriven]:
    done = []
    for case_id, step, seq, number in targets:
        found = _redrive_latest(case_id, step=step, seq=seq, redrive_no=number, reason=reason)
        if found:
            done.append(found)
    return done


@task(name="redrive_crashed_runs", persist_result=False, cache_policy=NO_CACHE)
async def redrive_crashed_runs(lookback_s: int = 86_400, limit: int = 200) -> list[Redriven]:
    """Step runs that ended Crashed or Failed (a killed worker, a step out of retries)."""
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=["tiaojie"]),
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.CRASHED, StateType.FAILED])
                ),
                start_time=FlowRunFilterStartTime(
                    after_=datetime.now(UTC) - timedelta(seconds=lookback_s)
                ),
            ),
            limit=min(limit, 200),  # the Prefect API refuses more than 200 a page
        )
    keys = [parse_run_key(run.idempotency_key or "") for run in runs]
    # A batch run names its cases in its parameters (ids only); those the system still
    # owes a step are re-driven one by one.
    batched = [
        int(case_id)
        for run in runs
        if (run.idempotency_key or "").startswith("batch:")
        for case_id in (run.parameters or {}).get("case_ids", [])
    ]

    def run() -> list[Redriven]:
        owed: list[_Target] = [(case_id, None, None, None) for case_id in _still_owed(batched)]
        return _redrive_each(owed, "batch run crashed or failed") + _redrive_each(
            [parsed for parsed in keys if parsed is not None], "flow run crashed or failed"
        )

    return await asyncio.to_thread(run)


async def _queued_in_prefect(numbers: list[str], pending_grace_s: int) -> set[str]:
    """Case numbers with a step run waiting for a worker: ``Scheduled`` (a worker will
    take it), or ``Pending`` for less than ``pending_grace_s`` (a process is starting).
    Re-driving those would only queue the same work twice behind them. A ``Pending``
    run older than that (its worker died before starting it) does not count."""
    if not numbers:
        return set()
    since = datetime.now(UTC) - timedelta(seconds=pending_grace_s)
    found: set[str] = set()
    async with get_client() as client:
        for start in range(0, len(numbers), 100):
            chunk = numbers[start : start + 100]
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    tags=FlowRunFilterTags(any_=[f"case:{n}" for n in chunk]),
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])
                    ),
                ),
                limit=200,
            )
            for flow_run in runs:
                state = flow_run.state
                if state is None or "tiaojie" not in flow_run.tags:
                    continue
                if state.type == StateType.PENDING and state.timestamp < since:
                    continue
                found.update(t[5:] for t in flow_run.tags if t.startswith("case:"))
    return found


@task(name="redrive_stuck_cases", persist_result=False, cache_policy=NO_CACHE)
async def redrive_stuck_cases(stuck_after_s: int, limit: int = 500) -> list[Redriven]:
    """Cases waiting on the system (submitted, triaged, escalated, reopened) for longer
    than ``stuck_after_s`` whose latest step is not already queued (in the outbox, or
    as a step run waiting for a worker in Prefect: a long queue is not a lost case)."""
    cutoff = clock.now() - timedelta(seconds=stuck_after_s)

    def candidates() -> list[tuple[int | None, str]]:
        with read_session() as session:
            return list(
                session.exec(
                    select(Case.id, Case.number)
                    .where(
                        col(Case.is_open).is_(True),
                        col(Case.status).in_(SYSTEM_OWES),
                        # Held for 研判: waiting for a person, not for the system.
                        col(Case.held_for_assessment).is_(False),
                        col(Case.updated_at) <= cutoff,
                    )
                    .order_by(col(Case.updated_at))
                    .limit(limit)
                ).all()
            )

    stuck = await asyncio.to_thread(candidates)
    queued = await _queued_in_prefect([number for _, number in stuck], max(stuck_after_s, 60))

    def run() -> list[Redriven]:
        targets: list[_Target] = [
            (case_id, None, None, None)
            for case_id, number in stuck
            if case_id is not None and number not in queued
        ]
        return _redrive_each(targets, "case stuck")

    return await asyncio.to_thread(run)


@task(name="count_outbox_backlog", persist_result=False, cache_policy=NO_CACHE)
async def count_outbox_backlog(older_than_s: int) -> int:
    """Pending rows older than the threshold: a relay that is down or far behind."""
    cutoff = clock.now() - timedelta(seconds=older_than_s)

    def run() -> int:
        with read_session() as session:
            return int(
                session.exec(
                    select(func.count())
                    .select_from(Outbox)
                    .where(Outbox.state == OutboxState.PENDING, col(Outbox.created_at) <= cutoff)
                ).one()
            )

    return await asyncio.to_thread(run)
