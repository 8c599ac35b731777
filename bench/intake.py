"""Intake API: the real app (uvicorn, a staff token, full validation, SQLite file) next
to the bare baseline (:mod:`bench.baseline_app`), both under concurrent clients on loopback
(:mod:`bench.load`), then both at a paced 100 requests a second; the load alternates
between the two in ABBA turns (see :func:`_measure`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from bench import home as home_mod
from bench.common import PYTHON, Workspace, free_port, ratio, rnd, wait_http
from bench.config import Sizes
from bench.load import LoadResult, closed_loop, combine, paced

UVICORN_FLAGS = ["--log-level", "warning", "--no-access-log"]


def _serve(ws: Workspace, target: str, env: dict[str, str], name: str) -> tuple[Any, str]:
    port = free_port()
    proc = ws.start(
        [
            PYTHON,
            "-m",
            "uvicorn",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *UVICORN_FLAGS,
        ],
        env=env,
        log_name=name,
    )
    return proc, f"http://127.0.0.1:{port}"


@dataclass
class _Server:
    name: str
    target: str
    env: dict[str, str]
    path: str
    health: str
    headers: dict[str, str]
    base: str = ""
    proc: Any = None
    closed: list[LoadResult] = field(default_factory=list)
    paced: list[LoadResult] = field(default_factory=list)


def _start(ws: Workspace, server: _Server, console: Console) -> None:
    server.proc, server.base = _serve(ws, server.target, server.env, server.name)
    try:
        started = wait_http(server.base + server.health, timeout=60, proc=server.proc)
    except Exception as exc:
        raise RuntimeError(
            f"{server.name} did not start: {exc}\n{ws.log_tail(server.name)}"
        ) from exc
    console.print(f"{server.name}: up in {started:.1f} s")


def _measure(ws: Workspace, sizes: Sizes, console: Console, servers: list[_Server]) -> None:
    """Both servers up side by side; the load alternates between them in ABBA order
    (baseline, real, real, baseline), half the time each turn, so that a machine that
    gets busier or quieter during the run weighs on both alike (this machine is shared
    and noisy). Warm-up requests are sent before the first turn and not counted."""
    for server in servers:
        _start(ws, server, console)
    half = sizes.intake_seconds / 2
    paced_half = sizes.paced_seconds / 2
    for server in servers:  # warm-up only (raises when every warm-up request fails)
        closed_loop(
            server.base + server.path,
            headers=server.headers,
            body=home_mod.case_body,
            concurrency=sizes.intake_concurrency,
            seconds=0.0,
            warmup=sizes.intake_warmup,
        )
    order = [*servers, *reversed(servers)]
    for turn, server in enumerate(order):
        closed = closed_loop(
            server.base + server.path,
            headers=server.headers,
            body=home_mod.case_body,
            concurrency=sizes.intake_concurrency,
            seconds=half,
            warmup=0,
        )
        server.closed.append(closed)
        console.print(
            f"{server.name} (turn {turn + 1}): {closed.per_s:.0f} cases/s, {closed.failed} failed"
        )
    for turn, server in enumerate(order):
        pace = paced(
            server.base + server.path,
            headers=server.headers,
            body=home_mod.case_body,
            rate=sizes.paced_rate,
            seconds=paced_half,
            offset=10**6 * (turn + 1),
        )
        server.paced.append(pace)
        console.print(
            f"{server.name} at {sizes.paced_rate:.0f}/s (turn {turn + 1}): "
            f"p99 {pace.summary()['p99_ms']} ms"
        )
    for server in servers:
        if combine(server.closed).ok == 0:
            raise RuntimeError(f"{server.name}: no request succeeded")


def run(ws: Workspace, sizes: Sizes, console: Console) -> dict[str, Any]:
    real_home = home_mod.prepare(ws, "intake-real")
    base_home = home_mod.prepare(ws, "intake-baseline")
    baseline_server = _Server(
        name="baseline-app",
        target="bench.baseline_app:app",
        env={**base_home.env, "BENCH_DB_URL": base_home.db_url},
        path="/cases",
        health="/health",
        headers={},
    )
    real_server = _Server(
        name="tiaojie-api",
        target="api.app:app",
        env=real_home.env,
        path="/api/v1/cases",
        health="/docs",
        headers={"Authorization": f"Bearer {real_home.token}"},
    )
    try:
        _measure(ws, sizes, console, [baseline_server, real_server])
    finally:
        for server in (baseline_server, real_server):
            if server.proc is not None:
                ws.stop(server.proc)
    real = {
        "closed": combine(real_server.closed).summary(),
        "paced": combine(real_server.paced).summary(),
    }
    baseline = {
        "closed": combine(baseline_server.closed).summary(),
        "paced": combine(baseline_server.paced).summary(),
    }
    rc, bc = real["closed"], baseline["closed"]
    return {
        "cases_per_s": rc["per_s"],
        "p50_ms": rc["p50_ms"],
        "p99_ms": rc["p99_ms"],
        "baseline_cases_per_s": bc["per_s"],
        "ratio": ratio(rc["per_s"], bc["per_s"]),
        "baseline_p50_ms": bc["p50_ms"],
        "baseline_p99_ms": bc["p99_ms"],
        "paced_rate_per_s": sizes.paced_rate,
        "paced_p99_ms": real["paced"]["p99_ms"],
        "baseline_paced_p99_ms": baseline["paced"]["p99_ms"],
        "concurrency": sizes.intake_concurrency,
        "seconds": rnd(sizes.intake_seconds, 1),
        "detail": {"tiaojie": real, "baseline": baseline},
        "turns": "ABBA: baseline, tiaojie, tiaojie, baseline; half the seconds each turn",
        "note": "one uvicorn process each, SQLite WAL file, a lean keep-alive HTTP/1.1 client on the same 2 cores",
    }
