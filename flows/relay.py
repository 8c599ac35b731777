"""The outbox relay: turns committed case events into Prefect events and Prefect work.

Every transition writes one ``Outbox`` row in the same transaction as the case (see
``models/lifecycle.py``). The relay polls pending rows in batches, claims them with a
short lease (so that two relays never deliver the same row at the same time), and for
each row:

1. emits the Prefect event ``tiaojie.case.<verb>`` on the resource
   ``tiaojie.case.<case id>`` (named by the case number, labelled with category, unit
   and priority), with ids only in the payload and a deterministic event id, so that a
   redelivery shows once in the event feed;
2. when the row names a workflow step, starts it as a flow run created with the
   idempotency key ``"{case_id}:{step}:{seq}"`` (a repeated delivery gets the same run
   back and starts nothing new), named ``"<case number> · <step>"``, tagged
   ``case:<number>``, ``category:…``, ``unit:…``, ``priority:…``, with the parameters
   ``{"case_id": id}`` only;
3. marks the row delivered only once the run exists (at-least-once delivery + one run
   per key + idempotent domain steps = effectively once).

Steps already done start nothing. The ``intake`` run goes on to assignment and the
assignee's notification in the same run, and ``assignment`` goes on to the
notification (a case costs one flow run, not three: on a work pool each run starts a
new Python process). Before starting a step the relay checks the case database, in one
query per batch: a step whose precondition the case has left (``intake`` once the case
is past submitted/reopened, ``assignment`` once it is no longer assignable) or whose
notification is recorded as sent is marked delivered without a run, with the reason in
``last_error`` (``"skipped: …"``). The ``triaged`` and ``assigned`` rows written by such
a chained run (actor ``system``) are held for ``CHAIN_GRACE_S`` the first time they are
seen if their step is not done yet, since the run that wrote them is about to do it;
after the grace, a step still not done (that run died) is started as usual.

Adaptive batching: a step with a batch flow (``intake`` → ``intake-batch``) has a lane
of ``settings.relay_batch_lane`` runs in flight. While the lane has room each case gets
a run of its own; cases that arrive while it is full wait in the outbox (their claim is
released) and share the next free run, up to ``settings.relay_batch_max`` cases
(:func:`plan_runs`). Batch size so follows the arrival rate with nothing to tune. A
batch run is named by its first and last case numbers, tagged ``case:<number>`` for
each case, keyed by the rows it delivers, and takes only the case ids.

Two executors, chosen by ``settings.executor``:

* ``inprocess`` (embedded default): the run is executed in this process by a warm
  async executor with bounded concurrency (no process start per run);
* ``deployment`` (scale-out): the run is created from the step's deployment, and any
  number of ``prefect worker start --pool …`` processes run it.

The reconciler (``flows/reconcile.py``) re-drives a row by resetting it to pending with
a higher ``redrive`` count in its payload; the run key then gets a ``:<n>`` suffix.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from prefect import Flow
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import FlowRunCreate
from prefect.client.schemas.objects import FlowRun, FlowRunPolicy
from prefect.events import emit_event
from prefect.flow_engine import run_flow_async
from prefect.states import Pending, to_state_create
from sqlalchemy import Engine, update
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from models import clock
from models.case import Case
from models.db import get_engine, read_session, write_session
from models.enums import CaseStatus, OutboxState
from models.event import CaseEvent, Outbox
from models.settings import get_settings
from models.unit import Unit

log = logging.getLogger("tiaojie.relay")

EVENT_NAMESPACE = uuid.UUID("6d1f3c52-8a4e-4b7e-9a55-7469616f6a69")
LEASE_S = 60.0
DRAIN_TIMEOUT_S = 30.0
FINAL_STATE_TYPES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
# Rows whose step the run that wrote them goes on to do (see the module docstring).
CHAINED_VERBS = frozenset({"triaged", "assigned"})
CHAIN_GRACE_S = 20.0
# How often the relay looks again while every run slot is taken (each look asks the
# Prefect server about the runs in flight, in deployment mode).
FULL_WAIT_S = 0.2
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


def plan_runs(
    jobs: list[Job], *, free_slots: int, batch_max: int
) -> tuple[list[list[Job]], list[Job]]:
    """Adaptive batching: at most ``free_slots`` runs for these waiting cases (oldest
    first), each case its own run while there are enough free slots (the quiet case: a
    run per case, named by its number); beyond that, the cases share the free runs
    evenly, at most ``batch_max`` a run, and the rest wait for the next free slot.
    Returns the runs and the cases left waiting. Under load the slots stay busy while
    cases gather, so batches grow with the arrival rate and shrink again when it falls."""
    if not jobs or free_slots <= 0:
        return [], list(jobs)
    runs = min(free_slots, len(jobs))
    taken = jobs[: runs * max(1, batch_max)]
    size, extra = divmod(len(taken), runs)
    out: list[list[Job]] = []
    start = 0
    for i in range(runs):
        end = start + size + (1 if i < extra else 0)
        out.append(taken[start:end])
        start = end
    return out, jobs[len(taken) :]


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


# --- the outbox table ---------------------------------------------------------------


def claim_jobs(*, limit: int, engine: Engine | None = None) -> list[Job]:
    """Claim up to ``limit`` pending rows that are due (oldest first) for ``LEASE_S``."""
    now = clock.now()
    with write_session(engine) as session:
        rows = session.execute(
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
            .order_by(col(Outbox.id))
            .limit(limit)
        ).all()
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


def _notified_keys(session: Any, keys: list[str]) -> set[str]:
    from models.notification import Notification

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
    from models.routing import ASSIGNABLE

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


# --- Prefect side ---------------------------------------------------------------------


def emit_case_event(job: Job) -> None:
    resource = {
        "prefect.resource.id": f"tiaojie.case.{job.case_id}",
        "prefect.resource.name": job.case_number,
        "tiaojie.category": job.category,
        "tiaojie.priority": job.priority,
        "tiaojie.unit": job.unit_code or "",
    }
    payload: dict[str, Any] = {"case_id": job.case_id, "seq": job.seq}
    if job.step:
        payload["step"] = job.step
    emit_event(
        event=f"tiaojie.case.{job.verb}",
        resource=resource,
        payload=payload,
        id=uuid.uuid5(EVENT_NAMESPACE, job.idempotency_key),
    )


class Dispatcher(Protocol):
    async def start(self, client: PrefectClient, job: Job) -> FlowRun: ...

    async def start_batch(self, client: PrefectClient, step: str, jobs: list[Job]) -> FlowRun: ...

    concurrency: int  # step runs in flight at once, all steps together
    lane: int  # runs of one batchable step in flight at once

    def batch_steps(self) -> frozenset[str]: ...

    async def in_flight(self, client: PrefectClient) -> dict[str, int]:
        """Step runs started from here and not ended yet, by step."""
        ...

    async def drain(self) -> None: ...


_flow_ids: dict[str, uuid.UUID] = {}


async def create_flow_run(client: PrefectClient, flow: Flow[Any, Any], spec: RunSpec) -> FlowRun:
    """Create (or find, by idempotency key) the run of ``flow`` described by ``spec``."""
    flow_id = _flow_ids.get(flow.name)
    if flow_id is None:
        flow_id = await client.create_flow(flow)
        _flow_ids[flow.name] = flow_id
    body = FlowRunCreate(
        flow_id=flow_id,
        flow_version=flow.version,
        name=spec.name,
        parameters=spec.parameters,
        tags=spec.tags,
        idempotency_key=spec.key,
        state=to_state_create(Pending()),
        empirical_policy=FlowRunPolicy(
            retries=flow.retries, retry_delay=int(flow.retry_delay_seconds or 0)
        ),
    )
    payload = body.model_dump(mode="json", exclude_unset=True)
    response = await _post_retrying_fast(client, "/flow_runs/", payload)
    if response is None:  # still busy: the client's own (slow) retries
        response = await client.request("POST", "/flow_runs/", json=payload)
    return FlowRun.model_validate(response.json())


# A Prefect server on SQLite answers 503 at once when its write lock is taken; the
# client then waits 2 s, then 4 s. The relay delivers one row after another, so each 503
# stalled every case behind it (the bench measured about 0.5 rows/s). Creating a run is
# idempotent by key, so it is retried here within a few tenths of a second first.
FAST_RETRY_DELAYS_S = (0.02, 0.05, 0.1, 0.2, 0.3)


async def _post_retrying_fast(
    client: PrefectClient, path: str, payload: dict[str, Any]
) -> Any | None:
    import httpx

    http = client._client
    for delay in FAST_RETRY_DELAYS_S:
        request = http.build_request("POST", path, json=payload)
        # The base class's send: no retry loop of its own.
        response = await httpx.AsyncClient.send(http, request)
        if response.status_code != 503:
            response.raise_for_status()
            return response
        await asyncio.sleep(delay)
    return None


class InProcessExecutor:
    """Runs step flows in this process: warm imports, at most ``concurrency`` at once."""

    def __init__(
        self,
        flows: Mapping[str, Flow[Any, Any]],
        *,
        concurrency: int,
        batch_flows: Mapping[str, Flow[Any, Any]] | None = None,
        lane: int = 1,
    ) -> None:
        self.flows = dict(flows)
        self.batch_flows = dict(batch_flows or {})
        self.concurrency = max(1, concurrency)
        self.lane = max(1, lane)
        self._slots = asyncio.Semaphore(self.concurrency)
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._steps: dict[uuid.UUID, str] = {}

    def batch_steps(self) -> frozenset[str]:
        return frozenset(self.batch_flows)

    async def in_flight(self, client: PrefectClient) -> dict[str, int]:
        return dict(Counter(self._steps[run_id] for run_id in self._running))

    async def start(self, client: PrefectClient, job: Job) -> FlowRun:
        assert job.step is not None
        return await self._start(client, self.flows[job.step], job.spec, job.step)

    async def start_batch(self, client: PrefectClient, step: str, jobs: list[Job]) -> FlowRun:
        return await self._start(client, self.batch_flows[step], batch_spec(step, jobs), step)

    async def _start(
        self, client: PrefectClient, flow: Flow[Any, Any], spec: RunSpec, step: str
    ) -> FlowRun:
        flow_run = await create_flow_run(client, flow, spec)
        state_type = flow_run.state.type.value if flow_run.state else "PENDING"
        if flow_run.id in self._running or state_type in FINAL_STATE_TYPES:
            return flow_run  # a repeated delivery: the run exists and is done or going
        if state_type == "RUNNING":
            return flow_run  # someone else runs it; a dead one is the reconciler's
        task = asyncio.create_task(self._execute(flow, flow_run, spec, step))
        self._running[flow_run.id] = task
        self._steps[flow_run.id] = step
        run_id = flow_run.id

        def forget(_task: asyncio.Task[None]) -> None:
            self._running.pop(run_id, None)
            self._steps.pop(run_id, None)

        task.add_done_callback(forget)
        return flow_run

    async def _execute(
        self, flow: Flow[Any, Any], flow_run: FlowRun, spec: RunSpec, step: str
    ) -> None:
        async with self._slots:
            try:
                await run_flow_async(
                    flow, flow_run=flow_run, parameters=spec.parameters, return_type="state"
                )
            except Exception:  # the run's state says what went wrong; keep the loop alive
                log.exception("step %s (%s) crashed", step, spec.name)

    async def drain(self) -> None:
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)


# The deployment dispatcher counts a run it started as taking a slot until the run ends,
# or for this long at most (a run whose worker died must not hold a slot for ever; the
# zombie automation and the reconciler deal with the run itself).
INFLIGHT_TTL_S = 120.0


class DeploymentDispatcher:
    """Creates runs from the steps' deployments; workers on the work pool run them."""

    def __init__(
        self,
        deployment_names: Mapping[str, str],
        *,
        concurrency: int = 8,
        batch_deployment_names: Mapping[str, str] | None = None,
        lane: int | None = None,
    ) -> None:
        self.deployment_names = dict(deployment_names)  # step -> "flow/deployment"
        self.batch_deployment_names = dict(batch_deployment_names or {})
        self.concurrency = max(1, concurrency)
        self.lane = max(1, lane or self.concurrency)
        self._ids: dict[str, uuid.UUID] = {}
        self._inflight: dict[uuid.UUID, tuple[str, float]] = {}  # id -> step, start

    def batch_steps(self) -> frozenset[str]:
        return frozenset(self.batch_deployment_names)

    async def in_flight(self, client: PrefectClient) -> dict[str, int]:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        now = time.monotonic()
        self._inflight = {k: v for k, v in self._inflight.items() if now - v[1] < INFLIGHT_TTL_S}
        if self._inflight:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(self._inflight))),
                limit=200,
            )
            for run in runs:
                if run.state is not None and run.state.type.value in FINAL_STATE_TYPES:
                    self._inflight.pop(run.id, None)
        return dict(Counter(step for step, _ in self._inflight.values()))

    async def _deployment_id(self, client: PrefectClient, name: str) -> uuid.UUID:
        found = self._ids.get(name)
        if found is None:
            found = self._ids[name] = (await client.read_deployment_by_name(name)).id
        return found

    async def _create(self, client: PrefectClient, name: str, spec: RunSpec, step: str) -> FlowRun:
        run = await client.create_flow_run_from_deployment(
            await self._deployment_id(client, name),
            parameters=spec.parameters,
            idempotency_key=spec.key,
            name=spec.name,
            tags=spec.tags,
        )
        if not (run.state and run.state.type.value in FINAL_STATE_TYPES):
            self._inflight[run.id] = (step, time.monotonic())
        return run

    async def start(self, client: PrefectClient, job: Job) -> FlowRun:
        assert job.step is not None
        return await self._create(client, self.deployment_names[job.step], job.spec, job.step)

    async def start_batch(self, client: PrefectClient, step: str, jobs: list[Job]) -> FlowRun:
        spec = batch_spec(step, jobs)
        return await self._create(client, self.batch_deployment_names[step], spec, step)

    async def drain(self) -> None:
        return None


class Relay:
    """Polls the outbox and delivers it; see the module docstring."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        batch_size: int | None = None,
        poll_s: float | None = None,
        engine: Engine | None = None,
        on_delivered: Callable[[Job], Awaitable[None]] | None = None,
    ) -> None:
        settings = get_settings()
        self.dispatcher = dispatcher
        self.batch_size = batch_size or settings.relay_batch_size
        self.poll_s = settings.relay_poll_s if poll_s is None else poll_s
        self.engine = engine
        self.on_delivered = on_delivered
        self.delivered = 0
        self._stop: asyncio.Event | None = None

    async def drain_once(self, client: PrefectClient) -> int:
        """Deliver one batch; returns how many rows were delivered."""
        # One look at the runs in flight a poll (in deployment mode it asks the server).
        flying = await self.dispatcher.in_flight(client)
        while sum(flying.values()) >= self.dispatcher.concurrency:
            if self._stop is not None and self._stop.is_set():
                return 0
            await asyncio.sleep(FULL_WAIT_S)
            flying = await self.dispatcher.in_flight(client)
        engine = self.engine or get_engine()
        jobs = await asyncio.to_thread(claim_jobs, limit=self.batch_size, engine=engine)
        verdicts = await asyncio.to_thread(step_verdicts, jobs, engine=engine)
        done: list[int] = []
        skipped: dict[int, str] = {}
        held: list[Job] = []
        # Rows of different cases are delivered concurrently (a busy Prefect server takes
        # about a second to create a run: one after another, a batch of 200 outlived its
        # lease); the rows of one case stay in order.
        by_case: dict[int, list[Job]] = {}
        for job in jobs:
            by_case.setdefault(job.case_id, []).append(job)
        batches = await self._plan_batches(by_case, verdicts, flying)
        slots = asyncio.Semaphore(get_settings().relay_concurrency)

        async def failed(job: Job, exc: Exception) -> None:
            log.warning(
                "delivery of outbox row %s (%s) failed: %s",
                job.outbox_id,
                job.verb,
                type(exc).__name__,
            )
            await asyncio.to_thread(
                mark_failed, job.outbox_id, f"{type(exc).__name__}: {exc}", engine=engine
            )

        async def delivered(job: Job) -> None:
            done.append(job.outbox_id)
            if self.on_delivered is not None:
                await self.on_delivered(job)

        async def deliver(job: Job) -> None:
            verdict = verdicts.get(job.outbox_id, "run")
            try:
                if not job.held:
                    emit_case_event(job)
                if verdict == "hold":
                    held.append(job)
                    return
                if verdict.startswith(SKIPPED_PREFIX):
                    skipped[job.outbox_id] = verdict
                elif job.step:
                    await self.dispatcher.start(client, job)
            except Exception as exc:
                await failed(job, exc)
                return
            await delivered(job)

        async def deliver_batch(step: str, group: list[Job]) -> None:
            async with slots:
                try:
                    for job in group:
                        if not job.held:
                            emit_case_event(job)
                    await self.dispatcher.start_batch(client, step, group)
                except Exception as exc:
                    for job in group:
                        await failed(job, exc)
                    return
                for job in group:
                    await delivered(job)

        async def deliver_case(case_jobs: list[Job]) -> None:
            async with slots:
                for job in case_jobs:
                    await deliver(job)

        await asyncio.gather(
            *(deliver_case(group) for group in by_case.values()),
            *(deliver_batch(step, group) for step, group in batches),
        )
        await asyncio.to_thread(hold, held, engine=engine)
        await asyncio.to_thread(
            mark_skipped, {k: v for k, v in skipped.items() if k in done}, engine=engine
        )
        await asyncio.to_thread(
            mark_delivered, [k for k in done if k not in skipped], engine=engine
        )
        self.delivered += len(done)
        return len(done)

    async def _plan_batches(
        self, by_case: dict[int, list[Job]], verdicts: dict[int, str], flying: dict[str, int]
    ) -> list[tuple[str, list[Job]]]:
        """Take the rows of batchable steps out of ``by_case``: those that start a run
        of their own stay, several cases that share a run are returned as a batch, and
        those for which no run slot is free go back to the queue (:func:`plan_runs`).
        Batchable: a step with a batch flow, to be run, the case's only row this poll.
        ``flying``: the runs in flight by step, as seen at the start of this poll."""
        steps = self.dispatcher.batch_steps()
        if not steps:
            return []
        ready: dict[str, list[Job]] = {}
        for case_jobs in by_case.values():
            job = case_jobs[0]
            if len(case_jobs) == 1 and job.step in steps and verdicts.get(job.outbox_id) == "run":
                ready.setdefault(job.step, []).append(job)
        if not ready:
            return []
        others = sum(
            1
            for case_jobs in by_case.values()
            for job in case_jobs
            if job.step not in ready and verdicts.get(job.outbox_id) == "run"
        )
        total_free = self.dispatcher.concurrency - sum(flying.values()) - others
        batch_max = get_settings().relay_batch_max
        out: list[tuple[str, list[Job]]] = []
        waiting: list[int] = []
        for step, step_jobs in ready.items():
            free = min(self.dispatcher.lane - flying.get(step, 0), total_free)
            groups, rest = plan_runs(step_jobs, free_slots=free, batch_max=batch_max)
            total_free -= len(groups)
            for group in groups:
                if len(group) > 1:
                    out.append((step, group))
                    for job in group:
                        del by_case[job.case_id]
            for job in rest:
                waiting.append(job.outbox_id)
                del by_case[job.case_id]
        engine = self.engine or get_engine()
        await asyncio.to_thread(release, waiting, engine=engine)
        return out

    async def run(self, stop: asyncio.Event, client: PrefectClient | None = None) -> None:
        """Poll until ``stop`` is set; a failing poll is logged and retried."""
        if client is None:
            # One Prefect client for every step run started from here: without these
            # contexts each in-process flow run builds two new clients (each loading the
            # CA bundle into a fresh SSL context), which profiled at a third of the
            # worker's CPU under load (bench/).
            from prefect.context import AsyncClientContext, SyncClientContext

            with SyncClientContext.get_or_create():
                async with AsyncClientContext.get_or_create() as ctx:
                    await self.run(stop, ctx.client)
            return
        self._stop = stop
        while not stop.is_set():
            try:
                count = await self.drain_once(client)
            except Exception:
                log.exception("relay poll failed; retrying")
                count = 0
            if count < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.poll_s)
        # Steps in flight share this client: let them finish (bounded) before it closes.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.dispatcher.drain(), timeout=DRAIN_TIMEOUT_S)

    async def run_until_idle(
        self, client: PrefectClient | None = None, *, max_rounds: int = 1000
    ) -> int:
        """Deliver and execute until no pending work is left (tests, one-shot runs)."""
        if client is None:
            async with get_client() as own:
                return await self.run_until_idle(own, max_rounds=max_rounds)
        total = 0
        for _ in range(max_rounds):
            count = await self.drain_once(client)
            await self.dispatcher.drain()
            total += count
            if count == 0 and not await asyncio.to_thread(_has_due_pending, self.engine):
                return total
        return total


def _has_due_pending(engine: Engine | None) -> bool:
    with read_session(engine) as session:
        return (
            session.exec(
                select(Outbox.id).where(
                    Outbox.state == OutboxState.PENDING, col(Outbox.available_at) <= clock.now()
                )
            ).first()
            is not None
        )


def build_dispatcher() -> Dispatcher:
    """The dispatcher the settings ask for."""
    from deployments.definitions import (
        BATCH_FLOWS,
        STEP_FLOWS,
        batch_deployment_names,
        step_deployment_names,
    )

    settings = get_settings()
    if settings.executor == "deployment":
        return DeploymentDispatcher(
            step_deployment_names(),
            concurrency=settings.executor_concurrency,
            batch_deployment_names=batch_deployment_names(),
            lane=settings.relay_batch_lane,
        )
    return InProcessExecutor(
        STEP_FLOWS,
        concurrency=settings.executor_concurrency,
        batch_flows=BATCH_FLOWS,
        lane=settings.relay_batch_lane or 1,
    )
