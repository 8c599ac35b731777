"""Intake API: the real app (uvicorn, a staff token, full validation, SQLite file) next
to the bare baseline (:mod:`bench.baseline_app`), both under concurrent httpx clients on
loopback, then both at a paced 100 requests a second."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from bench import home as home_mod
from bench.common import PYTHON, Workspace, free_port, ratio, rnd, wait_http
from bench.config import Sizes
from bench.load import closed_loop, paced

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


def _measure(
    ws: Workspace,
    sizes: Sizes,
    console: Console,
    *,
    target: str,
    env: dict[str, str],
    name: str,
    path: str,
    health: str,
    headers: dict[str, str],
) -> dict[str, Any]:
    proc, base = _serve(ws, target, env, name)
    try:
        try:
            started = wait_http(base + health, timeout=60, proc=proc)
        except Exception as exc:
            raise RuntimeError(f"{name} did not start: {exc}\n{ws.log_tail(name)}") from exc
        console.print(
            f"{name}: up in {started:.1f} s; {sizes.intake_concurrency} clients for {sizes.intake_seconds:.0f} s"
        )
        closed = closed_loop(
            base + path,
            headers=headers,
            body=home_mod.case_body,
            concurrency=sizes.intake_concurrency,
            seconds=sizes.intake_seconds,
            warmup=sizes.intake_warmup,
        )
        console.print(f"{name}: {closed.per_s:.0f} cases/s, {closed.failed} failed")
        pace = paced(
            base + path,
            headers=headers,
            body=home_mod.case_body,
            rate=sizes.paced_rate,
            seconds=sizes.paced_seconds,
            offset=10**6,
        )
        console.print(f"{name} at {sizes.paced_rate:.0f}/s: p99 {pace.summary()['p99_ms']} ms")
        if closed.ok == 0:
            raise RuntimeError(f"{name}: no request succeeded: {closed.first_error}")
        return {"closed": closed.summary(), "paced": pace.summary()}
    finally:
        ws.stop(proc)


def run(ws: Workspace, sizes: Sizes, console: Console) -> dict[str, Any]:
    real_home = home_mod.prepare(ws, "intake-real")
    base_home = home_mod.prepare(ws, "intake-baseline")
    headers = {"Authorization": f"Bearer {real_home.token}"}
    baseline = _measure(
        ws,
        sizes,
        console,
        target="bench.baseline_app:app",
        env={**base_home.env, "BENCH_DB_URL": base_home.db_url},
        name="baseline-app",
        path="/cases",
        health="/health",
        headers={},
    )
    real = _measure(
        ws,
        sizes,
        console,
        target="api.app:app",
        env=real_home.env,
        name="tiaojie-api",
        path="/api/v1/cases",
        health="/docs",
        headers=headers,
    )
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
        "note": "one uvicorn process each, SQLite WAL file, a lean keep-alive HTTP/1.1 client on the same 2 cores",
    }
