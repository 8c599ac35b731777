"""End to end: from the POST to the case being assigned, through ``tiaojie up`` (the
local Prefect server, the worker with its relay and steps, the HTTP app), under paced
arrivals: first at 2 cases a second for the latency figures, then at higher rates to find
the sustained throughput. Baseline: the naive design (:mod:`bench.naive`), one
synchronous flow run per case with one task per step, against the same Prefect server.

"Assigned" means the routing step is done: ``assigned_at`` (or ``referred_at``, when
routing sent the case to the paired agency) is stamped in the case database. Latency is
that stamp minus the wall-clock time the client sent the POST.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console

from bench import backlog as backlog_mod
from bench import home as home_mod
from bench.common import PeakRss, Workspace, percentile, poll_assigned, ratio, rnd, run_json
from bench.config import Sizes
from bench.servers import current_stack, start_stack


@dataclass
class Phase:
    rate: float
    seconds: float
    sent: dict[int, float] = field(default_factory=dict)  # case id -> wall time of the POST
    failed: int = 0
    first_error: str | None = None
    done: dict[int, float] = field(default_factory=dict)  # case id -> wall time assigned
    backlog_at_end: int | None = None
    window_end: float = 0.0
    started: float = 0.0
    emergencies: set[int] = field(default_factory=set)  # case ids filed as emergencies


async def arrivals(
    url: str,
    token: str,
    phase: Phase,
    offset: int,
    body: Callable[[int], dict[str, Any]] = home_mod.case_body,
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:

        async def post(i: int, scheduled_wall: float) -> None:
            data = body(offset + i)
            try:
                r = await client.post(url, json=data)
            except httpx.HTTPError as exc:
                phase.failed += 1
                phase.first_error = phase.first_error or f"{type(exc).__name__}: {exc}"
                return
            if r.status_code != 201:
                phase.failed += 1
                phase.first_error = phase.first_error or f"{r.status_code}: {r.text[:300]}"
                return
            case_id = int(r.json()["case"]["id"])
            phase.sent[case_id] = scheduled_wall
            if data.get("priority") == "emergency":
                phase.emergencies.add(case_id)

        n = int(phase.rate * phase.seconds)
        start = time.perf_counter()
        wall0 = time.time()
        phase.started = wall0
        tasks = []
        for i in range(n):
            delay = start + i / phase.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(i, wall0 + i / phase.rate)))
        await asyncio.gather(*tasks)


def _poll(db_url: str, phase: Phase) -> int:
    """Record newly assigned cases; returns how many are still waiting."""
    from models.db import build_engine

    if len(phase.done) == len(phase.sent):
        return 0
    engine = _engines.get(db_url) or _engines.setdefault(db_url, build_engine(db_url))
    return poll_assigned(engine, phase.sent, phase.done)


_engines: dict[str, Any] = {}


def _engine(stack: Any) -> Any:
    from models.db import build_engine

    url = stack.home.db_url
    return _engines.get(url) or _engines.setdefault(url, build_engine(url))


def _run_phase(
    stack: Any, phase: Phase, offset: int, drain_s: float, console: Console
) -> dict[str, Any]:
    asyncio.run(arrivals(stack.app_url + "/api/v1/cases", stack.home.token, phase, offset))
    phase.window_end = time.time()
    phase.backlog_at_end = _poll(stack.home.db_url, phase)
    deadline = time.perf_counter() + drain_s
    while _poll(stack.home.db_url, phase) and time.perf_counter() < deadline:
        time.sleep(0.2)
    lat = [phase.done[i] - phase.sent[i] for i in phase.done]
    n = len(phase.sent)
    span = (max(phase.done.values()) - phase.started) if phase.done else None
    out = {
        "rate_per_s": phase.rate,
        "seconds": phase.seconds,
        "submitted": n,
        "post_failed": phase.failed,
        "assigned": len(phase.done),
        "backlog_at_window_end": phase.backlog_at_end,
        "not_assigned_after_drain": n - len(phase.done),
        "throughput_per_s": rnd(len(phase.done) / span, 2) if span else None,
        "p50_s": rnd(percentile(lat, 50), 2),
        "p95_s": rnd(percentile(lat, 95), 2),
        "max_s": rnd(max(lat), 2) if lat else None,
        "first_error": phase.first_error,
    }
    console.print(
        f"{phase.rate:g}/s for {phase.seconds:g} s: {len(phase.done)}/{n} assigned, "
        f"{out['throughput_per_s']} cases/s, p50 {out['p50_s']} s, p95 {out['p95_s']} s, "
        f"backlog at window end {phase.backlog_at_end}"
    )
    return out


def _naive(
    ws: Workspace, sizes: Sizes, console: Console, prefect_env: dict[str, str]
) -> dict[str, Any]:
    home = home_mod.prepare(ws, "e2e-naive")
    env = {**home.env, **prefect_env, "PREFECT_LOGGING_LEVEL": "WARNING"}
    console.print(f"naive baseline: {sizes.naive_cases} cases, one synchronous flow run each…")
    out = run_json(
        ["bench.naive", "e2e", "--count", str(sizes.naive_cases)],
        env,
        timeout=900,
        what="naive e2e",
    )
    lat = out["latencies_s"]
    per_s = out["count"] / out["seconds"] if out["seconds"] else None
    console.print(f"naive: {per_s:.2f} cases/s, {statistics.median(lat):.2f} s a case")
    return {
        "cases": out["count"],
        "seconds": rnd(out["seconds"], 2),
        "cases_per_s": rnd(per_s, 3),
        "p50_s": rnd(percentile(lat, 50), 2),
        "p95_s": rnd(percentile(lat, 95), 2),
    }


def run(ws: Workspace, sizes: Sizes, console: Console) -> dict[str, Any]:
    stack = current_stack() or start_stack(ws, settle_s=sizes.idle_settle_s)
    console.print("waiting for tiaojie up…")
    stack.wait_ready()
    memory: dict[str, Any] = {
        "idle_rss_mb": stack.idle_rss.get("total"),
        "idle_by_process_mb": stack.idle_rss,
    }
    phases: list[dict[str, Any]] = []
    offset = 0
    try:
        # The baseline first, on the same (idle) Prefect server: measured after the
        # overload phases it would wait behind Tiaojie's backlog on the server.
        naive = _naive(ws, sizes, console, stack.prefect_env)
        with PeakRss([stack.proc.pid], interval=0.5) as peak:
            for rate, seconds in [(sizes.e2e_rate, sizes.e2e_seconds)] + [
                (r, sizes.e2e_burst_seconds) for r in sizes.e2e_burst_rates
            ]:
                phases.append(
                    _run_phase(stack, Phase(rate, seconds), offset, sizes.e2e_drain_s, console)
                )
                offset += 100_000
        memory["loaded_rss_mb"] = peak.peak.get("total")
        memory["loaded_by_process_mb"] = peak.peak
        memory["after_rss_mb"] = stack.rss().get("total")
        backlog = backlog_mod.run(
            stack, sizes, console, lambda sent, done: poll_assigned(_engine(stack), sent, done)
        )
    finally:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
    steady = phases[0]
    kept_up = [p for p in phases if p["throughput_per_s"] and p["not_assigned_after_drain"] == 0]
    best = max(kept_up or phases, key=lambda p: p["throughput_per_s"] or 0)
    last = phases[-1]
    return {
        "cases_per_s": best["throughput_per_s"],
        "p50_s": steady["p50_s"],
        "p95_s": steady["p95_s"],
        "naive_cases_per_s": naive["cases_per_s"],
        "ratio": ratio(best["throughput_per_s"], naive["cases_per_s"]),
        "latency_rate_per_s": steady["rate_per_s"],
        "throughput_at_rate_per_s": best["rate_per_s"],
        "backlog": last["backlog_at_window_end"],
        "backlog_after_drain": last["not_assigned_after_drain"],
        "naive_p50_s": naive["p50_s"],
        "naive_p95_s": naive["p95_s"],
        "backlog_new_p95_s": backlog["new_p95_s"],
        "backlog_emergency_p95_s": backlog["emergency_p95_s"],
        "backlog_drain_s": backlog["backlog_drain_s"],
        "phases": phases,
        "backlog_phase": backlog,
        "naive": naive,
        "up_ready_s": rnd(stack.ready_s, 1),
        "memory": memory,
    }
