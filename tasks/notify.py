"""Prefect tasks that notify people about a case (see :mod:`tasks.notifier`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from models.db import read_session
from models.errors import NotificationError, NotificationRejected
from tasks.notifier import deliver, pending_messages

log = logging.getLogger("tiaojie.notify")


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


@task(
    name="notify_case",
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=_retry_unless_rejected,
    persist_result=False,
    cache_policy=NO_CACHE,
    task_run_name="notify_case-{case_id}",
)
async def notify_case(case_id: int) -> list[str]:
    return await asyncio.to_thread(notify_case_sync, case_id)


@task(name="notify_cases", persist_result=False, cache_policy=NO_CACHE)
async def notify_cases(case_ids: list[int]) -> dict[str, int]:
    """Notify many cases (after a sweep); one failure does not stop the others."""

    def run() -> dict[str, int]:
        counts = {"sent": 0, "failed": 0}
        for case_id in case_ids:
            try:
                counts["sent"] += len(notify_case_sync(case_id))
            except NotificationError as exc:
                counts["failed"] += 1
                log.warning("notification for case id %s failed: %s", case_id, exc.code)
        return counts

    return await asyncio.to_thread(run)
