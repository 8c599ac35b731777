"""Prefect tasks for the escalation sweep."""

from __future__ import annotations

import asyncio

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import col, select

from models import clock, confirmation, escalation
from models.access import Actor
from models.case import Case
from models.db import get_engine, read_session, write_session
from tasks.steps import sweep_task


@sweep_task("sweep_due_cases")
async def sweep_due_cases(batch_size: int = 500) -> escalation.SweepReport:
    """Remind cases near their limit and escalate those past it (idempotent per case,
    deadline and level: two sweeps at the same moment act once)."""
    now = clock.now()
    return await asyncio.to_thread(
        lambda: escalation.sweep(get_engine(), now=now, batch_size=batch_size, actor=Actor.system())
    )


@sweep_task("remind_court_confirmations")
async def remind_court_confirmations() -> list[int]:
    """Day-20 and day-28 reminders of the 30-day court-confirmation window (each sent
    once: the domain stamps it with the timeline event)."""
    now = clock.now()

    def run() -> list[int]:
        with write_session() as session:
            return confirmation.sweep_reminders(session, now=now, actor=Actor.system())

    return await asyncio.to_thread(run)


@task(name="find_case_ids", persist_result=False, cache_policy=NO_CACHE)
async def find_case_ids(numbers: list[str]) -> list[int]:
    def run() -> list[int]:
        ids: list[int] = []
        with read_session() as session:
            for start in range(0, len(numbers), 500):
                chunk = numbers[start : start + 500]
                ids.extend(
                    i
                    for i in session.exec(select(Case.id).where(col(Case.number).in_(chunk))).all()
                    if i is not None
                )
        return ids

    return await asyncio.to_thread(run)
