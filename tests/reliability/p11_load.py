"""Promise 11: load.

The HTTP app served by uvicorn in a process of its own on 127.0.0.1 (a free port), on
PostgreSQL when one is reachable. An open-loop generator submits cases at a fixed rate
(each request is due at its own moment, whether or not earlier ones were answered)
while reader threads list and open cases. Measured: errors (anything but 201, or no
answer), lost (a submission answered 201 whose case is not in the database, or never
accepted), p50/p95/p99 latency of submissions and of reads.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlmodel import Session, select

from models.case import Case
from tests.reliability.common import (
    ROOT,
    App,
    Database,
    PromiseResult,
    Scale,
    percentile,
    pg_database,
    require_pg,
    sqlite_database,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(database: Database) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "TIAOJIE_DATABASE_URL": database.url,
        "TIAOJIE_OPEN311_RATE_LIMIT_PER_MIN": "0",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise RuntimeError("uvicorn exited while starting")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.communicate(timeout=20)  # also closes its stderr pipe
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate(timeout=20)


def load(database: Database, base: str, rate: float, seconds: float) -> dict[str, Any]:
    helper = App(app=None, client=httpx.Client(), database=database)
    tokens = [helper.auth(u) for u in ("workerA", "workerB", "mediatorA", "gridB")]
    readers = [helper.auth(u) for u in ("supervisor", "workerA", "mediatorB")]
    helper.client.close()
    total = int(rate * seconds)
    lock = threading.Lock()
    next_index = [0]
    results: list[tuple[str, int, float]] = []
    read_latency: list[float] = []
    read_errors = [0]
    stop = threading.Event()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    client = httpx.Client(base_url=base, timeout=30, limits=limits)
    start = time.perf_counter() + 0.5

    def submitter() -> None:
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= total:
                return
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            marker = f"L{i:07d}"
            began = time.perf_counter()
            try:
                r = client.post(
                    "/api/v1/cases",
                    json={
                        "category": "environment",
                        "description": f"饭店油烟扰民，请处理。编号 {marker}",
                        # Each writer files in their own area (tokens above).
                        "place_code": ("BA1", "BB1", "BA2", "BB2")[i % 4],
                        "people_affected": 2,
                    },
                    headers={**tokens[i % len(tokens)], "Idempotency-Key": f"load-{marker}"},
                )
                status = r.status_code
            except httpx.HTTPError:
                status = 0
            with lock:
                results.append((marker, status, time.perf_counter() - began))

    def reader(n: int) -> None:
        headers = readers[n % len(readers)]
        while not stop.is_set():
            began = time.perf_counter()
            try:
                r = client.get("/api/v1/cases", params={"page_size": 20}, headers=headers)
                ok = r.status_code == 200
                if ok and r.json()["items"]:
                    case_id = r.json()["items"][0]["id"]
                    ok = client.get(f"/api/v1/cases/{case_id}", headers=headers).status_code == 200
            except httpx.HTTPError:
                ok = False
            with lock:
                read_latency.append(time.perf_counter() - began)
                read_errors[0] += not ok
            time.sleep(0.05)

    workers = [threading.Thread(target=submitter) for _ in range(48)]
    reading = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for t in workers + reading:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.perf_counter() - start
    stop.set()
    for t in reading:
        t.join()
    client.close()
    with Session(database.engine) as s:
        stored = {d.rsplit(" ", 1)[-1] for d in s.exec(select(Case.description)).all()}
    accepted = [m for m, st, _ in results if st == 201]
    errors = sum(1 for _, st, _ in results if st != 201)
    latencies = [lat for _, _, lat in results]
    return {
        "submissions": len(results),
        "achieved_per_s": round(len(results) / elapsed, 1),
        "errors": errors,
        "error_pct": round(100.0 * errors / max(1, len(results)), 3),
        "lost": sum(1 for m in accepted if m not in stored) + errors,
        "p50_ms": round(percentile(latencies, 50) * 1000),
        "p95_ms": round(percentile(latencies, 95) * 1000),
        "p99_ms": round(percentile(latencies, 99) * 1000),
        "reads": len(read_latency),
        "read_errors": read_errors[0],
        "read_p95_ms": round(percentile(read_latency, 95) * 1000),
    }


def run(scale: Scale) -> PromiseResult:
    rate, seconds = scale.pick((20.0, 10.0), (50.0, float(os.environ.get("TIAOJIE_LOAD_S", 600))))
    pg_url = require_pg()
    notes = []
    if pg_url:
        with pg_database(pg_url) as database, served(database) as base:
            figures = load(database, base, rate, seconds)
        where = "PostgreSQL"
    else:
        notes.append("PostgreSQL not reachable: ran on SQLite")
        with sqlite_database() as database, served(database) as base:
            figures = load(database, base, rate, seconds)
        where = "SQLite"
    if scale.long and seconds < 600:
        notes.append(
            f"load held {seconds:.0f} s instead of 10 minutes to fit the run's time on this "
            "2-core machine shared with other work"
        )
    passed = figures["error_pct"] < 0.1 and figures["lost"] == 0 and figures["read_errors"] == 0
    return PromiseResult(
        promise="11 Load 负载",
        test="tests/reliability/p11_load.py: uvicorn api.app:app in its own process, "
        "open-loop httpx submitters and 3 concurrent readers",
        load=f"{rate:.0f} submissions/s for {seconds:.0f} s on {where}, with readers",
        faults="none (load only)",
        result=figures,
        passed=passed,
        notes=notes,
    )
