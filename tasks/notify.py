"""Prefect tasks that notify people about a case (see :mod:`tasks.notifier`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from models import clock
from models.db import read_session
from models.errors import NotificationError, NotificationRejected
from models.follow_ups import due_follow_ups
from tasks.notifier import deliver, deliver_many, follow_up_messages, pending_messages

log = logging.getLogger("tiaojie.notify")
NOTIFY_BATCH = 200


def notify_case_sync(case_id: int) -> list[str]:
    """Send every notification this case still owes; returns the keys sent now."""
    with read_session() as session:
        messages = pending_messages(session, case_id=case_id)
    sent: list[str] = []
    for message in messages:
        if deliver(message) == "sent":
            sent.append(message.key)
    return sent


def _retry_unless_rejected(_task: Any, _run: Any, state: State[Any]) -> bool:
    """A receiver that refused for good (4xx) will refuse again: do not retry."""
    try:
        state.result()
    except NotificationRejected:
        return False
    except Exception:
        return True
    return True


def notify_task(
    name: str, *, retry_condition_fn: Callable[..., bool] | None = None
) -> Callable[[Callable[..., Any]], Any]:
    """A task that sends one case's notices: three retries, backing off, never persisted
    (a message names a case), the run named after the case."""
    return task(
        name=name,
        retries=3,
        retry_delay_seconds=[2, 10, 30],
        retry_condition_fn=retry_condition_fn,
        persist_result=False,
        cache_policy=NO_CACHE,
        task_run_name=name + "-{case_id}",
    )


@notify_task("notify_case", retry_condition_fn=_retry_unless_rejected)
async def notify_case(case_id: int) -> list[str]:
    return await asyncio.to_thread(notify_case_sync, case_id)


@task(name="notify_cases", persist_result=False, cache_policy=NO_CACHE)
async def notify_cases(case_ids: list[int]) -> dict[str, int]:
    """Notify many cases (after a sweep); one failure does not stop the others."""

    def run() -> dict[str, int]:
        # In batches: one read and two write transactions per batch, not per message
        # (a sweep of 10,000 cases owes about 20,000 messages).
        counts = {"sent": 0, "failed": 0}
        for start in range(0, len(case_ids), NOTIFY_BATCH):
            chunk = case_ids[start : start + NOTIFY_BATCH]
            with read_session() as session:
                messages = [m for cid in chunk for m in pending_messages(session, case_id=cid)]
            result = deliver_many(messages)
            counts["sent"] += result["sent"]
            counts["failed"] += result["failed"]
            if result["failed"]:
                log.warning(
                    "%s notifications failed in a batch of %s", result["failed"], len(chunk)
                )
        return counts

    return await asyncio.to_thread(run)


@task(name="remind_due_follow_ups", persist_result=False, cache_policy=NO_CACHE)
async def remind_due_follow_ups() -> int:
    """Remind assignees of return visits that are due (once per visit)."""
    now = clock.now()

    def run() -> int:
        with read_session() as session:
            ids = due_follow_ups(session, now=now)
            messages = follow_up_messages(session, case_ids=ids, now=now)
        sent = 0
        for message in messages:
            try:
                sent += deliver(message) == "sent"
            except NotificationError as exc:
                log.warning("return-visit reminder %s failed: %s", message.key, exc.code)
        return sent

    return await asyncio.to_thread(run)
