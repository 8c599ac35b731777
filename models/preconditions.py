"""Whether a delivered case event still needs its step: the domain's preconditions for
starting a workflow step, read in one query per batch of outbox rows.

A step whose precondition the case has left (``intake`` once the case is past
submitted/reopened, ``assignment`` once it is no longer assignable) or whose
notification is recorded as sent is not started again; the row is marked delivered
with the reason (``"skipped: …"``). The ``triaged`` and ``assigned`` rows written by a
chained run (actor ``system``) are held for ``CHAIN_GRACE_S`` the first time they are
seen if their step is not done yet, since the run that wrote them is about to do it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import select as sa_select
from sqlmodel import col

from models import clock
from models.case import Case
from models.db import read_session
from models.enums import CaseStatus
from models.notification import Notification
from models.outbox import CHAIN_GRACE_S, CHAINED_VERBS, SKIPPED_PREFIX, Job
from models.routing import ASSIGNABLE


def _notified_keys(session: Any, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    return set(
        session.execute(
            sa_select(col(Notification.idempotency_key)).where(
                col(Notification.idempotency_key).in_(keys),
                col(Notification.sent_at).is_not(None),
            )
        )
        .scalars()
        .all()
    )


def step_verdicts(jobs: list[Job], *, engine: Engine | None = None) -> dict[int, str]:
    """For each job with a step: ``"run"`` (start it), ``"hold"`` (the run that wrote the
    row is about to do the step) or ``"skipped: <why>"`` (already done). One read."""
    stepped = [job for job in jobs if job.step]
    if not stepped:
        return {}
    with read_session(engine) as session:
        statuses = dict(
            session.execute(
                sa_select(col(Case.id), col(Case.status)).where(
                    col(Case.id).in_({job.case_id for job in stepped})
                )
            ).all()
        )
        notified = _notified_keys(
            session, [job.idempotency_key for job in stepped if job.step == "notify"]
        )
    now = clock.now()
    verdicts: dict[int, str] = {}
    for job in stepped:
        status = statuses.get(job.case_id)
        done: str | None = None
        if job.step == "intake" and status not in (CaseStatus.SUBMITTED, CaseStatus.REOPENED):
            done = f"case already triaged (status {status})"
        elif job.step == "assignment" and status not in ASSIGNABLE:
            done = f"case already assigned (status {status})"
        elif job.step == "notify" and job.idempotency_key in notified:
            done = "notification already sent"
        if done is not None:
            verdicts[job.outbox_id] = SKIPPED_PREFIX + done
        elif (
            job.verb in CHAINED_VERBS
            and job.actor == "system"
            and job.redrive == 0
            and not job.held
            and job.created_at is not None
            and now < clock.ensure_utc(job.created_at) + timedelta(seconds=CHAIN_GRACE_S)
        ):
            verdicts[job.outbox_id] = "hold"
        else:
            verdicts[job.outbox_id] = "run"
    return verdicts
