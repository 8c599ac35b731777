"""Thin Prefect tasks for the case steps: one domain service each.

Each task opens its own ``write_session()`` (one transaction, committed at exit), calls
one service of ``models/`` and returns ids or a small frozen dataclass. The database work
runs in a worker thread so that the async flows sharing the executor's event loop keep
moving while SQLite waits for its write lock. Results are never persisted by Prefect
(they hold ids only, but nothing about a case belongs on disk outside the database).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from models import follow_ups, mediating, referrals, routing, triage
from models.access import Actor
from models.case import Case
from models.db import read_session, write_session
from models.enums import CaseStatus
from models.errors import ConflictError, TiaojieError
from models.follow_up import FollowUp
from tasks.give_way import give_way

T = TypeVar("T")
R = TypeVar("R")

RETRY_DELAYS: list[float] = [1, 5, 20]
# Crash-test hook: pause a step inside its transaction, before the commit, so that a
# test can kill the process at the worst moment. Names the step ("assignment", ...).
PAUSE_ENV = "TIAOJIE_TEST_PAUSE_BEFORE_COMMIT"


def _maybe_pause(step: str) -> None:
    wanted = os.environ.get(PAUSE_ENV, "")
    if wanted and wanted.split(":")[0] == step:
        seconds = float(wanted.split(":")[1]) if ":" in wanted else 30.0
        marker = os.environ.get(PAUSE_ENV + "_MARKER")
        if marker:
            with open(marker, "w", encoding="utf-8") as fh:
                fh.write(str(os.getpid()))
        time.sleep(seconds)


def _write(step: str, fn: Callable[[Session], T]) -> T:
    """``fn`` in one write transaction (committed at exit)."""
    with write_session() as session:
        result = fn(session)
        session.flush()
        _maybe_pause(step)
        return result


async def _in_write_session(step: str, fn: Callable[[Session], T]) -> T:
    return await asyncio.to_thread(_write, step, fn)


def step_task(name: str) -> Callable[[Callable[..., Any]], Any]:
    return task(
        name=name,
        retries=3,
        retry_delay_seconds=RETRY_DELAYS,
        persist_result=False,
        cache_policy=NO_CACHE,
        task_run_name=name + "-{case_id}",
        log_prints=False,
    )


def sweep_task(name: str) -> Callable[[Callable[..., Any]], Any]:
    """A task over many cases (a sweep, a batch of receipts): retried twice as a whole,
    which is safe because each case it already did is not done again."""
    return task(
        name=name,
        retries=2,
        retry_delay_seconds=[5, 30],
        persist_result=False,
        cache_policy=NO_CACHE,
    )


SYSTEM = Actor.system()


@step_task("triage_case")
async def triage_case(case_id: int) -> triage.TriageResult:
    return await _in_write_session(
        "intake", lambda s: triage.triage_case(s, case_id=case_id, actor=SYSTEM)
    )


@step_task("assign_case")
async def assign_case(case_id: int) -> routing.AssignmentResult:
    return await _in_write_session(
        "assignment", lambda s: routing.assign_case(s, case_id=case_id, actor=SYSTEM)
    )


@dataclass(frozen=True)
class BatchOutcome(Generic[R]):
    """What a step did to each case of a batch: results, and the cases it could not do
    (case id -> the error's type and message, never personal data)."""

    done: list[R]
    failed: dict[int, str]


# Errors worth another try inside a batch (a lost race, a busy database); anything else
# (a guard, a missing unit) would fail the same way again.
TRANSIENT: tuple[type[BaseException], ...] = (ConflictError, OperationalError)
BATCH_RETRY_DELAYS_S: tuple[float, ...] = (0.2, 1.0, 3.0)


def _each_in_own_transaction(
    step: str, case_ids: list[int], fn: Callable[[Session, int], R]
) -> BatchOutcome[R]:
    """Run ``fn`` for each case in a transaction of its own, so that one case's failure
    neither undoes nor holds up the others. Retried here, per case, rather than by the
    task's own retries: those would run the whole batch again."""
    done: list[R] = []
    failed: dict[int, str] = {}
    for n, case_id in enumerate(case_ids):
        if n:
            give_way()  # to the runs kept for urgent work, if any are in flight
        for attempt in range(len(BATCH_RETRY_DELAYS_S) + 1):
            try:
                result = _write(step, lambda session: fn(session, case_id))  # noqa: B023
            except TRANSIENT as exc:
                if attempt < len(BATCH_RETRY_DELAYS_S):
                    time.sleep(BATCH_RETRY_DELAYS_S[attempt])
                    continue
                failed[case_id] = f"{type(exc).__name__}: {exc}"[:300]
            except TiaojieError as exc:
                failed[case_id] = f"{type(exc).__name__}: {exc.message_en}"[:300]
            else:
                done.append(result)
            break
    return BatchOutcome(done, failed)


def batch_task(name: str) -> Callable[[Callable[..., Any]], Any]:
    def run_name() -> str:
        from prefect.runtime import task_run

        ids = task_run.parameters.get("case_ids") or []
        return f"{name}-{ids[0] if ids else 'none'}-x{len(ids)}"

    # No task-level retries: each case is retried on its own (above).
    return task(
        name=name,
        persist_result=False,
        cache_policy=NO_CACHE,
        task_run_name=run_name,
        log_prints=False,
    )


async def _each_case(step: str, case_ids: list[int], service: Callable[..., R]) -> BatchOutcome[R]:
    """``service(session, case_id=..., actor=SYSTEM)`` for each case of a batch."""
    return await asyncio.to_thread(
        _each_in_own_transaction,
        step,
        case_ids,
        lambda s, cid: service(s, case_id=cid, actor=SYSTEM),
    )


@batch_task("triage_cases")
async def triage_cases(case_ids: list[int]) -> BatchOutcome[triage.TriageResult]:
    """:func:`triage_case` for several cases."""
    return await _each_case("intake", case_ids, triage.triage_case)


@batch_task("assign_cases")
async def assign_cases(case_ids: list[int]) -> BatchOutcome[routing.AssignmentResult]:
    """:func:`assign_case` for several cases."""
    return await _each_case("assignment", case_ids, routing.assign_case)


@dataclass(frozen=True)
class MediationState:
    case_id: int
    number: str
    status: str
    mediation_due_at: str | None


@step_task("check_mediation")
async def check_mediation(case_id: int) -> MediationState:
    """Where mediation stands. Starts it when the dispute is accepted, a mediator is
    named and every party has consented, and nobody has started it yet; otherwise only
    reports."""

    def run(session: Session) -> MediationState:
        case = session.get(Case, case_id)
        if case is None:
            return MediationState(case_id, "", "missing", None)
        if mediating.ready_to_start(session, case=case):
            case = mediating.start_mediation(session, case_id=case_id, actor=SYSTEM)
        due = case.mediation_due_at.isoformat() if case.mediation_due_at else None
        return MediationState(case_id, case.number, case.status.value, due)

    return await _in_write_session("mediation", run)


@dataclass(frozen=True)
class FollowUpPlan:
    case_id: int
    action: str  # "schedule" | "settle" | "await_receiver" | "nothing"
    status: str


@step_task("plan_follow_up")
async def plan_follow_up(case_id: int) -> FollowUpPlan:
    def run() -> FollowUpPlan:
        with read_session() as session:
            case = session.get(Case, case_id)
            if case is None or not case.is_open:
                return FollowUpPlan(case_id, "nothing", case.status.value if case else "missing")
            if case.status == CaseStatus.REFERRED and referrals.awaits_receiver(case):
                # The receiving unit signs for it first; its outcome brings us back here.
                return FollowUpPlan(case_id, "await_receiver", case.status.value)
            if case.status in (
                CaseStatus.AGREEMENT,
                CaseStatus.MEDIATION_FAILED,
                CaseStatus.REFERRED,
            ):
                return FollowUpPlan(case_id, "schedule", case.status.value)
            if case.status == CaseStatus.FOLLOW_UP:
                done = session.exec(
                    select(FollowUp.id).where(
                        FollowUp.case_id == case_id, col(FollowUp.done_at).is_not(None)
                    )
                ).first()
                return FollowUpPlan(case_id, "settle" if done else "schedule", case.status.value)
            return FollowUpPlan(case_id, "nothing", case.status.value)

    return await asyncio.to_thread(run)


@step_task("schedule_follow_ups")
async def schedule_follow_ups(case_id: int) -> list[int]:
    def run(session: Session) -> list[int]:
        visits = follow_ups.schedule_follow_ups(session, case_id=case_id, actor=SYSTEM)
        return [v.id for v in visits if v.id is not None]

    return await _in_write_session("follow_up", run)


@step_task("settle_after_follow_up")
async def settle_after_follow_up(case_id: int) -> str:
    return await _in_write_session(
        "follow_up",
        lambda s: follow_ups.settle_after_follow_up(s, case_id=case_id, actor=SYSTEM),
    )


__all__ = [
    "BatchOutcome",
    "FollowUpPlan",
    "MediationState",
    "assign_case",
    "assign_cases",
    "check_mediation",
    "plan_follow_up",
    "schedule_follow_ups",
    "settle_after_follow_up",
    "triage_case",
    "triage_cases",
]
