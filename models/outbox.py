"""The outbox store: the queue of committed case events waiting for the orchestration
layer, and the names their runs are created under.

Every transition writes one ``Outbox`` row in the same transaction as the case (see
``models/lifecycle.py``). The relay (``flows/relay.py``) claims pending rows in batches
with a short lease (``LEASE_S``: two relays never deliver the same row at the same
time), emergencies and fresh rows ahead of a backlog with a share kept for the backlog
(:func:`claim_jobs`), marks them delivered once their run exists, skipped when their
step was already done, held while the run that wrote them is about to do their step
(``CHAINED_VERBS``, ``CHAIN_GRACE_S``), or failed with a growing delay and a cap. The
reconciler (``tasks/reconcile.py``) re-drives a row by resetting it to pending with a
higher ``redrive`` count in its payload.

**Run keys** (the flow run's idempotency key, so that a repeated delivery finds the
same run and starts nothing new): ``"{case_id}:{step}:{seq}"``, with ``":{redrive}"``
appended once re-driven (:attr:`Job.run_key`, read back by :func:`parse_run_key`); a
run for several cases (:func:`batch_spec`) is keyed ``"batch:{step}:{digest}"`` of the
rows it delivers. Runs carry case ids only, never personal data.

Plain Python and SQL: no Prefect here, so the tasks and the reconciler use it without
importing any flow.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import col, func, select

from models import clock
from models.case import Case
from models.db import read_session, write_session
from models.enums import OutboxState, Priority
from models.event import CaseEvent, Outbox
from models.settings import get_settings
from models.unit import Unit

LEASE_S = 60.0
# Rows whose step the run that wrote them goes on to do (see flows/relay.py).
CHAINED_VERBS = frozenset({"triaged", "assigned"})
CHAIN_GRACE_S = 20.0
SKIPPED_PREFIX = "skipped: "


@dataclass(frozen=True)
class Job:
    """One outbox row to deliver, with what Prefect may know about its case."""

    outbox_id: int
    case_id: int
    seq: int
    verb: str
    step: str | None
    idempotency_key: str
    redrive: int
    case_number: str
    category: str
    priority: str
    unit_code: str | None
    held: bool = False  # held once already (its event was emitted then)
    created_at: datetime | None = None
    actor: str | None = None

    @property
    def run_key(self) -> str:
        base = f"{self.case_id}:{self.step}:{self.seq}"
        return base if self.redrive == 0 else f"{base}:{self.redrive}"

    @property
    def run_name(self) -> str:
        return f"{self.case_number} · {self.step}"

    @property
    def tags(self) -> list[str]:
        return [
            "tiaojie",
            f"case:{self.case_number}",
            f"step:{self.step}",
            f"category:{self.category}",
            f"unit:{self.unit_code or 'none'}",
            f"priority:{self.priority}",
        ]

    @property
    def parameters(self) -> dict[str, Any]:
        return {"case_id": self.case_id}

    @property
    def spec(self) -> RunSpec:
        return RunSpec(self.run_name, self.parameters, self.tags, self.run_key)


@dataclass(frozen=True)
class RunSpec:
    """What a step run is created with: its name, ids-only parameters, tags and key."""

    name: str
    parameters: dict[str, Any]
    tags: list[str]
    key: str


def batch_spec(step: str, jobs: list[Job]) -> RunSpec:
    """One run for several cases' ``step``: named by its first and last case numbers,
    tagged with every case number (so a case's runs are found by its tag), keyed by the
    rows it delivers (a redelivery of the same rows finds the same run)."""
    numbers = [job.case_number for job in jobs]
    digest = hashlib.sha256(",".join(job.run_key for job in jobs).encode()).hexdigest()[:24]
    tags = ["tiaojie", "batch", f"step:{step}"]
    tags += sorted({f"category:{job.category}" for job in jobs})
    tags += [f"case:{number}" for number in numbers]
    return RunSpec(
        name=f"{numbers[0]} … {numbers[-1]} ({len(jobs)} 件 cases) · {step}",
        parameters={"case_ids": [job.case_id for job in jobs]},
        tags=tags,
        key=f"batch:{step}:{digest}",
    )


def parse_run_key(key: str) -> tuple[int, str, int, int] | None:
    """``"12:assignment:3"`` or ``"12:assignment:3:1"`` → (case id, step, seq, redrive)."""
    parts = key.split(":")
    if len(parts) not in (3, 4):
        return None
    try:
        redrive = int(parts[3]) if len(parts) == 4 else 0
        return int(parts[0]), parts[1], int(parts[2]), redrive
    except ValueError:
        return None


# --- the queue -------------------------------------------------------------------------


def _claimable(now: datetime) -> Any:
    """Due pending rows with what a :class:`Job` carries of their case."""
    return (
        sa_select(
            Outbox,
            col(Case.number),
            col(Case.category),
            col(Case.priority),
            col(Unit.code),
            col(CaseEvent.actor),
        )
        .join(Case, col(Case.id) == col(Outbox.case_id))
        .outerjoin(Unit, col(Unit.id) == col(Case.unit_id))
        .outerjoin(CaseEvent, col(CaseEvent.id) == col(Outbox.event_id))
        .where(col(Outbox.state) == OutboxState.PENDING, col(Outbox.available_at) <= now)
    )


def backlog_reserve(limit: int) -> int:
    """Places of a poll's batch kept for the backlog (see :func:`claim_jobs`)."""
    share = get_settings().relay_backlog_share
    return min(limit, max(1, math.ceil(limit * share)))


def fresh_since(now: datetime, started: datetime | None = None) -> datetime:
    """Rows written at or after this moment are fresh (lane 2 of :func:`claim_jobs`):
    written in the last ``settings.relay_fresh_s``, and, given the moment the relay
    ``started``, not before it. What was written while no relay ran is the backlog of
    an outage, however young: measured with a backlog filed four to five minutes before
    (``bench/backlog.py``), its last minute counted as fresh under the five-minute rule
    and filled the run kept for fresh work ahead of the new cases (their p95 51 s on a
    quiet machine)."""
    since = now - timedelta(seconds=get_settings().relay_fresh_s)
    return since if started is None else max(since, clock.ensure_utc(started))


def is_emergency(job: Job) -> bool:
    """A claimed row of lane 1 of :func:`claim_jobs`: its case is an emergency."""
    return job.priority == Priority.EMERGENCY.value


def is_urgent(job: Job, now: datetime, started: datetime | None = None) -> bool:
    """A claimed row of lane 1 or 2 of :func:`claim_jobs`: its case is an emergency, or
    the row is fresh (:func:`fresh_since`). The relay keeps run slots for these
    (``flows/batching.py``)."""
    if is_emergency(job):
        return True
    if job.created_at is None:
        return False
    return clock.ensure_utc(job.created_at) >= fresh_since(now, started)


def claim_jobs(
    *,
    limit: int,
    engine: Engine | None = None,
    held_back: frozenset[str] = frozenset(),
    started: datetime | None = None,
) -> list[Job]:
    """Claim up to ``limit`` pending rows that are due, for ``LEASE_S``: fresh work
    ahead of a backlog, and the backlog never starved.

    **Claim order** (the one place it is decided; the relay and the batch planner keep
    it). A poll's batch is filled in this order:

    1. emergencies (case priority 紧急 emergency), oldest first;
    2. fresh rows, written less than ``settings.relay_fresh_s`` ago, oldest first;
    3. the backlog: every other due row, oldest first.

    Lanes 1 and 2 take at most ``limit - backlog_reserve(limit)`` places:
    ``settings.relay_backlog_share`` of every batch (at least one row) is kept for the
    oldest rows, and lane 3 also takes whatever places the fresh lanes leave. So a new
    case or an emergency is claimed in the next poll however long the queue, and a
    backlog of ``n`` rows is gone within ``ceil(n / backlog_reserve(limit))`` polls
    however much fresh work keeps arriving. A row jumps the queue only when it is its
    case's earliest pending row: the rows of one case are delivered in order.

    ``held_back``: steps whose runs cannot start now (the relay's lane for them is
    full): lane 3 leaves their rows alone (they would only be claimed and released
    again, hundreds a poll, while the backlog's batch run works) and takes only each
    case's earliest row (so no case's later row overtakes its waiting one). Lanes 1 and
    2 still take them: runs kept for urgent work may be free.

    ``started``: when the calling relay started (see :func:`fresh_since`).
    """
    now = clock.now()
    reserve = backlog_reserve(limit)
    earlier = aliased(Outbox)
    earlier_pending = (
        sa_select(col(earlier.id))
        .where(
            col(earlier.case_id) == col(Outbox.case_id),
            col(earlier.state) == OutboxState.PENDING,
            col(earlier.id) < col(Outbox.id),
        )
        .exists()
    )
    emergency = col(Case.priority) == Priority.EMERGENCY
    with write_session(engine) as session:
        rows = list(
            session.execute(
                _claimable(now)
                .where(
                    or_(emergency, col(Outbox.created_at) >= fresh_since(now, started)),
                    ~earlier_pending,
                )
                .order_by(case((emergency, 0), else_=1), col(Outbox.id))
                .limit(limit - reserve)
            ).all()
        )
        taken = [row[0].id for row in rows]
        backlog = _claimable(now).where(col(Outbox.id).not_in(taken))
        if held_back:
            backlog = backlog.where(
                or_(col(Outbox.step).is_(None), col(Outbox.step).not_in(held_back)),
                ~earlier_pending,
            )
        rows += session.execute(backlog.order_by(col(Outbox.id)).limit(limit - len(rows))).all()
        if not rows:
            return []
        ids = [row[0].id for row in rows]
        session.execute(
            update(Outbox)
            .where(col(Outbox.id).in_(ids))
            .values(available_at=now + timedelta(seconds=LEASE_S))
        )
        jobs = []
        for outbox, number, category, priority, unit_code, actor in rows:
            assert outbox.id is not None
            jobs.append(
                Job(
                    outbox_id=outbox.id,
                    case_id=outbox.case_id,
                    seq=int(outbox.payload.get("seq", 0)),
                    verb=outbox.verb,
                    step=outbox.step,
                    idempotency_key=outbox.idempotency_key,
                    redrive=int(outbox.payload.get("redrive", 0)),
                    case_number=number,
                    category=category.value,
                    priority=priority.value,
                    unit_code=unit_code,
                    held=bool(outbox.payload.get("held")),
                    created_at=outbox.created_at,
                    actor=actor,
                )
            )
        return jobs


def mark_skipped(reasons: dict[int, str], *, engine: Engine | None = None) -> None:
    """Delivered without a run: the step was already done (the reason is kept)."""
    if not reasons:
        return
    with write_session(engine) as session:
        now = clock.now()
        for outbox_id, reason in reasons.items():
            session.execute(
                update(Outbox)
                .where(col(Outbox.id) == outbox_id, col(Outbox.state) == OutboxState.PENDING)
                .values(state=OutboxState.DELIVERED, delivered_at=now, last_error=reason[:500])
            )


def hold(jobs: list[Job], *, engine: Engine | None = None) -> None:
    """Look at these rows again once the chained run had its grace."""
    if not jobs:
        return
    with write_session(engine) as session:
        for job in jobs:
            row = session.get(Outbox, job.outbox_id)
            if row is None or row.state != OutboxState.PENDING:
                continue
            assert job.created_at is not None
            row.payload = {**row.payload, "held": True}
            row.available_at = clock.ensure_utc(job.created_at) + timedelta(seconds=CHAIN_GRACE_S)
            session.add(row)


def _update_pending(ids: list[int], engine: Engine | None, **values: Any) -> None:
    """Set ``values`` on those of these rows that are still pending."""
    if not ids:
        return
    with write_session(engine) as session:
        session.execute(
            update(Outbox)
            .where(col(Outbox.id).in_(ids), col(Outbox.state) == OutboxState.PENDING)
            .values(**values)
        )


def mark_delivered(ids: list[int], *, engine: Engine | None = None) -> None:
    _update_pending(
        ids, engine, state=OutboxState.DELIVERED, delivered_at=clock.now(), last_error=None
    )


def release(ids: list[int], *, engine: Engine | None = None) -> None:
    """Give claimed rows back to the queue at once (they wait for a free run slot)."""
    _update_pending(ids, engine, available_at=clock.now())


def mark_failed(outbox_id: int, error: str, *, engine: Engine | None = None) -> None:
    """Count a failed delivery; retry later with backoff, give up after the cap."""
    settings = get_settings()
    with write_session(engine) as session:
        row = session.get(Outbox, outbox_id)
        if row is None or row.state != OutboxState.PENDING:
            return
        row.attempts += 1
        row.last_error = error[:500]
        if row.attempts >= settings.outbox_max_attempts:
            row.state = OutboxState.FAILED
        else:
            delay = min(2 ** (row.attempts - 1), 300)
            row.available_at = clock.now() + timedelta(seconds=delay)
        session.add(row)


def redrive(outbox_id: int, *, reason: str, engine: Engine | None = None) -> bool:
    """Put a delivered or failed row back in the queue under a fresh run key."""
    with write_session(engine) as session:
        row = session.get(Outbox, outbox_id)
        if row is None:
            return False
        if row.state == OutboxState.PENDING:
            # Already queued, unless it waits for a chained run (held, or about to be):
            # then bring it now. A row leased by a relay at work is left alone.
            held = bool(row.payload.get("held"))
            leased = not held and clock.ensure_utc(row.available_at) > clock.now()
            chained = row.verb in CHAINED_VERBS and int(row.payload.get("redrive", 0)) == 0
            if leased or not (held or chained):
                return False
        count = int(row.payload.get("redrive", 0)) + 1
        if count > get_settings().outbox_max_attempts:
            return False
        row.payload = {**row.payload, "redrive": count}
        row.state = OutboxState.PENDING
        row.available_at = clock.now()
        row.last_error = reason[:500]
        session.add(row)
        return True


def last_row_id(engine: Engine | None = None) -> int:
    """The newest outbox row's id (0 for none): where :func:`submitted_after` looks from."""
    with read_session(engine) as session:
        return int(session.exec(select(func.max(Outbox.id))).one() or 0)


def submitted_after(row_id: int, steps: frozenset[str], engine: Engine | None = None) -> int:
    """The id of a row newer than ``row_id`` for one of ``steps`` (a new submission for
    ``intake``), else 0: a primary-key range read, cheap enough to ask ten times a second
    whatever the table's size."""
    if not steps:
        return 0
    with read_session(engine) as session:
        found = session.exec(
            select(Outbox.id)
            .where(col(Outbox.id) > row_id, col(Outbox.step).in_(steps))
            .order_by(col(Outbox.id).desc())
            .limit(1)
        ).first()
        return int(found or 0)


def has_due_pending(engine: Engine | None) -> bool:
    with read_session(engine) as session:
        return (
            session.exec(
                select(Outbox.id).where(
                    Outbox.state == OutboxState.PENDING, col(Outbox.available_at) <= clock.now()
                )
            ).first()
            is not None
        )
