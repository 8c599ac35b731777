"""The outbox relay: turns committed case events into Prefect events and Prefect work.

The relay polls pending outbox rows in batches (the store, its leases and run keys:
``models/outbox.py``), and for each row:

1. emits the Prefect event ``tiaojie.case.<verb>`` (``flows/prefect_api.py``);
2. when the row names a workflow step that the case still needs
   (``models/preconditions.py``), starts it as a flow run created with the row's run
   key as idempotency key (a repeated delivery gets the same run back and starts
   nothing new), named ``"<case number> · <step>"``, tagged ``case:<number>``,
   ``category:…``, ``unit:…``, ``priority:…``, with the parameters ``{"case_id": id}``
   only;
3. marks the row delivered only once the run exists (at-least-once delivery + one run
   per key + idempotent domain steps = effectively once).

The ``intake`` run goes on to assignment and the assignee's notification in the same
run, and ``assignment`` goes on to the notification (a case costs one flow run, not
three: on a work pool each run starts a new Python process); the rows those chained
runs write are held for a grace period rather than started twice. Cases waiting for a
batchable step share runs when the lane is full (``flows/batching.py``); ahead of a
backlog, emergencies and fresh cases get runs kept for them
(``settings.relay_emergency_lane``, ``relay_fresh_lane``), so a new complaint is not
stuck behind a backlog's batch run.

Two executors, chosen by ``settings.executor`` and built with the step flows or their
deployment names by ``deployments/definitions.py`` (:func:`build_dispatcher` there):

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
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from prefect import Flow
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.flow_engine import run_flow_async
from sqlalchemy import Engine

from flows.batching import emergency_lane, fresh_lane, is_kept_lane, plan_kept_runs, plan_runs
from flows.prefect_api import create_flow_run, emit_case_event
from models import clock
from models.db import get_engine
from models.outbox import (
    SKIPPED_PREFIX,
    Job,
    RunSpec,
    batch_spec,
    claim_jobs,
    has_due_pending,
    hold,
    is_urgent,
    last_row_id,
    mark_delivered,
    mark_failed,
    mark_skipped,
    release,
    submitted_after,
)
from models.preconditions import step_verdicts
from models.settings import get_settings
from tasks.give_way import urgent_run

log = logging.getLogger("tiaojie.relay")

DRAIN_TIMEOUT_S = 30.0
FINAL_STATE_TYPES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
# How often the relay looks again while every run slot is taken (each look asks the
# Prefect server about the runs in flight, in deployment mode).
FULL_WAIT_S = 0.2


class Dispatcher(Protocol):
    """``lane``: the name the run is counted under in :meth:`in_flight` (default: its
    step; the runs kept for urgent work are counted apart, ``flows/batching.py``)."""

    async def start(self, client: PrefectClient, job: Job, lane: str | None = None) -> FlowRun: ...

    async def start_batch(
        self, client: PrefectClient, step: str, jobs: list[Job], lane: str | None = None
    ) -> FlowRun: ...

    concurrency: int  # step runs in flight at once, all steps together
    lane: int  # runs of one batchable step in flight at once

    def batch_steps(self) -> frozenset[str]: ...

    async def in_flight(self, client: PrefectClient) -> dict[str, int]:
        """Step runs started from here and not ended yet, by lane."""
        ...

    async def drain(self) -> None: ...


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
        # Set when a run ends: its slot is free, the relay need not wait for its poll.
        self.freed = asyncio.Event()

    def batch_steps(self) -> frozenset[str]:
        return frozenset(self.batch_flows)

    async def in_flight(self, client: PrefectClient) -> dict[str, int]:
        return dict(Counter(self._steps[run_id] for run_id in self._running))

    async def start(self, client: PrefectClient, job: Job, lane: str | None = None) -> FlowRun:
        assert job.step is not None
        return await self._start(client, self.flows[job.step], job.spec, job.step, lane)

    async def start_batch(
        self, client: PrefectClient, step: str, jobs: list[Job], lane: str | None = None
    ) -> FlowRun:
        spec = batch_spec(step, jobs)
        return await self._start(client, self.batch_flows[step], spec, step, lane)

    async def _start(
        self,
        client: PrefectClient,
        flow: Flow[Any, Any],
        spec: RunSpec,
        step: str,
        lane: str | None = None,
    ) -> FlowRun:
        flow_run = await create_flow_run(client, flow, spec)
        state_type = flow_run.state.type.value if flow_run.state else "PENDING"
        if flow_run.id in self._running or state_type in FINAL_STATE_TYPES:
            return flow_run  # a repeated delivery: the run exists and is done or going
        if state_type == "RUNNING":
            return flow_run  # someone else runs it; a dead one is the reconciler's
        urgent = lane is not None and is_kept_lane(lane)
        task = asyncio.create_task(self._execute(flow, flow_run, spec, step, urgent))
        self._running[flow_run.id] = task
        self._steps[flow_run.id] = lane or step
        run_id = flow_run.id

        def forget(_task: asyncio.Task[None]) -> None:
            self._running.pop(run_id, None)
            self._steps.pop(run_id, None)
            self.freed.set()

        task.add_done_callback(forget)
        return flow_run

    async def _execute(
        self, flow: Flow[Any, Any], flow_run: FlowRun, spec: RunSpec, step: str, urgent: bool
    ) -> None:
        """Run it; a run kept for urgent work has the backlog's batches give way to it
        between their cases while it runs (``tasks/give_way.py``)."""
        async with self._slots:
            with urgent_run() if urgent else contextlib.nullcontext():
                try:
                    await run_flow_async(
                        flow, flow_run=flow_run, parameters=spec.parameters, return_type="state"
                    )
                except Exception:  # the run's state says what went wrong; go on
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

    async def _create(self, client: PrefectClient, name: str, spec: RunSpec, lane: str) -> FlowRun:
        run = await client.create_flow_run_from_deployment(
            await self._deployment_id(client, name),
            parameters=spec.parameters,
            idempotency_key=spec.key,
            name=spec.name,
            tags=spec.tags,
        )
        if not (run.state and run.state.type.value in FINAL_STATE_TYPES):
            self._inflight[run.id] = (lane, time.monotonic())
        return run

    async def start(self, client: PrefectClient, job: Job, lane: str | None = None) -> FlowRun:
        assert job.step is not None
        name = self.deployment_names[job.step]
        return await self._create(client, name, job.spec, lane or job.step)

    async def start_batch(
        self, client: PrefectClient, step: str, jobs: list[Job], lane: str | None = None
    ) -> FlowRun:
        spec = batch_spec(step, jobs)
        return await self._create(client, self.batch_deployment_names[step], spec, lane or step)

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
        self.wake_s = settings.relay_wake_s
        self.engine = engine
        # Batchable steps with older rows waiting, as the last claim that took their
        # rows saw it (while their lane is full their backlog is not claimed).
        self._backlog: set[str] = set()
        self.on_delivered = on_delivered
        self.delivered = 0
        # Rows written before this moment are an outage's backlog, not fresh work.
        self.started = clock.now()
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
        steps = self.dispatcher.batch_steps()
        held_back = frozenset(s for s in steps if flying.get(s, 0) >= self.dispatcher.lane)
        jobs = await asyncio.to_thread(
            claim_jobs,
            limit=self.batch_size,
            engine=engine,
            held_back=held_back,
            started=self.started,
        )
        now = clock.now()
        for step in steps - held_back:
            if any(job.step == step and not is_urgent(job, now, self.started) for job in jobs):
                self._backlog.add(step)
            else:
                self._backlog.discard(step)
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

        async def deliver_batch(step: str, group: list[Job], lane: str) -> None:
            async with slots:
                try:
                    for job in group:
                        if not job.held:
                            emit_case_event(job)
                    if len(group) == 1:  # a run of its own, named by its case
                        await self.dispatcher.start(client, group[0], lane)
                    else:
                        await self.dispatcher.start_batch(client, step, group, lane)
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
            *(deliver_batch(step, group, lane) for step, group, lane in batches),
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
    ) -> list[tuple[str, list[Job], str]]:
        """Take the rows of batchable steps out of ``by_case``: those that start a run
        of their own stay, several cases that share a run are returned as a batch, and
        those for which no run slot is free go back to the queue (:func:`plan_runs`),
        except emergencies and fresh cases ahead of a backlog while a run kept for them
        is free (:func:`plan_kept_runs`). Returned: (step, cases, lane counted under).
        Batchable: a step with a batch flow, to be run, the case's only row this poll.
        ``flying``: the runs in flight by lane, as seen at the start of this poll."""
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
        settings = get_settings()
        batch_max = settings.relay_batch_max
        now = clock.now()
        out: list[tuple[str, list[Job], str]] = []
        waiting: list[int] = []
        for step, step_jobs in ready.items():
            kept_free: dict[str, int] = {}
            for lane, size in (
                (emergency_lane(step), settings.relay_emergency_lane),
                (fresh_lane(step), settings.relay_fresh_lane),
            ):
                kept_free[lane] = max(0, min(size - flying.get(lane, 0), total_free))
                total_free -= kept_free[lane]
            kept, rest = plan_kept_runs(
                step_jobs,
                step=step,
                free=kept_free,
                batch_max=batch_max,
                now=now,
                backlog=step in self._backlog,
                started=self.started,
            )
            total_free += sum(kept_free.values()) - len(kept)  # kept but not used
            for group, lane in kept:
                out.append((step, group, lane))
                for job in group:
                    del by_case[job.case_id]
            free = min(self.dispatcher.lane - flying.get(step, 0), total_free)
            groups, rest = plan_runs(rest, free_slots=free, batch_max=batch_max)
            total_free -= len(groups)
            for group in groups:
                if len(group) > 1:
                    out.append((step, group, step))
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
                await self._pause(stop)
        # Steps in flight share this client: let them finish (bounded) before it closes.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.dispatcher.drain(), timeout=DRAIN_TIMEOUT_S)

    async def _pause(self, stop: asyncio.Event) -> None:
        """Wait for the next poll: ``poll_s`` at most, less when a new submission comes
        in (looked for every ``wake_s``, :func:`models.outbox.submitted_after`) or a run
        ends in this process (its slot is free for the cases waiting): an emergency
        filed during the wait is claimed within ``wake_s``, not half a poll later."""
        engine = self.engine or get_engine()
        steps = self.dispatcher.batch_steps()
        freed = getattr(self.dispatcher, "freed", None)
        if isinstance(freed, asyncio.Event):
            freed.clear()
        newest = await asyncio.to_thread(last_row_id, engine) if steps else 0
        until = time.monotonic() + self.poll_s
        while not stop.is_set() and (left := until - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(left, self.wake_s))
            if isinstance(freed, asyncio.Event) and freed.is_set():
                return
            if not steps:
                continue
            if await asyncio.to_thread(submitted_after, newest, steps, engine):
                return

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
            if count == 0 and not await asyncio.to_thread(has_due_pending, self.engine):
                return total
        return total
