"""Scale-out: the same burst of cases through one and then two Prefect workers.

The distributed stack of the README's Scale-out section, on one machine: a throwaway
PostgreSQL (``scripts/pg-throwaway``) holding the case database and the Prefect
server's database, the Prefect server on it, every deployment on a ``process`` work
pool (``python -m deployments.deploy --pool``), the outbox relay in ``deployment`` mode
(``tiaojie worker --no-serve``), the HTTP app under ``uvicorn --workers 2``, and N
``prefect worker start --type process`` workers.

For N = 1, then N = 2 (new worker processes, new case numbers; the phase-one runs are
all finished before the phase-two workers start), a closed burst of cases is POSTed as
fast as the API takes them, and the case database is polled until every case is
assigned (or referred). Throughput is cases / (last assignment - first POST); latency
is each case's assignment stamp minus the wall time its POST was sent.

From the Prefect API: how many flow runs each phase created and how many of them were
``batch`` runs (one intake run for several cases). From the worker logs: how many runs
each worker submitted, and how many more its warm flow-run processes took
(``deployments/steprun.py`` prints ``tiaojie: N more step runs in this process``).

Without ``initdb`` on PATH the section records ``skipped`` and the others still run.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from sqlalchemy import Engine, create_engine, make_url, text

from bench import home as home_mod
from bench.common import (
    BIN,
    PYTHON,
    REPO,
    Workspace,
    free_port,
    percentile,
    poll_assigned,
    ratio,
    rnd,
    wait_http,
)
from bench.config import Sizes

SCRIPT = REPO / "scripts" / "pg-throwaway"
POOL = "tiaojie-bench-scale"
ACTIVE_STATES = ["PENDING", "RUNNING", "CANCELLING"]
# The runs the relay creates for cases (the scheduled sweeps and reconciler runs aside).
STEP_TAGS = [
    f"step:{step}"
    for step in ("intake", "intake-batch", "assignment", "notify", "mediation", "follow_up")
]
WARMUP_CASES = 10
SUBMITTED = re.compile(r"submitting flow run '([0-9a-f-]{36})'")
WARM = re.compile(r"tiaojie: (\d+) more step runs in this process")


def asyncpg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql+asyncpg://", 1)


@dataclass
class Postgres:
    """A throwaway cluster started by ``scripts/pg-throwaway``; ``stop`` removes it."""

    url: str
    folder: str

    @classmethod
    def start(cls) -> Postgres:
        done = subprocess.run(
            [str(SCRIPT), "start"], capture_output=True, text=True, timeout=180, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg-throwaway start failed: {done.stderr[-1500:]}")
        return cls.from_exports(done.stdout)

    @classmethod
    def from_exports(cls, stdout: str) -> Postgres:
        """The cluster named by ``pg-throwaway start``'s ``export`` lines."""
        values: dict[str, str] = {}
        for line in stdout.splitlines():
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                values[key] = shlex.split(value)[0]
        return cls(url=values["TIAOJIE_TEST_PG_URL"], folder=values["TIAOJIE_TEST_PG_DIR"])

    def stop(self) -> str | None:
        """Stop and remove the cluster; returns what went wrong, if it is still there."""
        done = subprocess.run(
            [str(SCRIPT), "stop", self.folder],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        pid_file = Path(self.folder) / "data" / "postmaster.pid"
        if not pid_file.exists():
            return None
        # The script could not stop it: end the postmaster we started, by its pid.
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
            postmaster.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
            postmaster.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)
        return f"pg-throwaway stop left the server running: {done.stderr[-500:]}"

    def new_database(self, name: str) -> str:
        admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        url = make_url(self.url).set(database=name)
        return url.render_as_string(hide_password=False)


@dataclass
class Stack:
    ws: Workspace
    env: dict[str, str]
    prefect_api: str
    app_url: str
    token: str
    engine: Engine
    started_s: float
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _build_city(db_url: str) -> tuple[Engine, str]:
    """Migrate the case database, generate the city, mint a community worker's token."""
    import os

    from sqlmodel import Session, select

    from bench.citygen import build_city
    from models.db import build_engine
    from models.migrate import upgrade
    from models.settings import reset_settings
    from models.staff import Staff
    from models.unit import Unit

    os.environ["TIAOJIE_SECRET_KEY"] = home_mod.SECRET  # tokens are signed with it
    reset_settings()
    engine = build_engine(db_url)
    upgrade(engine)
    with Session(engine) as session:
        build_city(session, districts=2, streets=2, communities=3)
        session.commit()
        worker = session.exec(select(Staff).where(Staff.username == "d1s1c1_worker")).one()
        unit = session.get(Unit, worker.unit_id)
        assert unit is not None
        token = home_mod.staff_token(worker, unit)
    return engine, token


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(
        argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")


def start_stack(
    ws: Workspace, pg: Postgres, console: Console, mine: list[subprocess.Popen[bytes]]
) -> Stack:
    """Start the stack; every process started is appended to ``mine`` at once."""
    t0 = time.perf_counter()
    case_url = pg.new_database("cases")
    prefect_url = pg.new_database("prefect")
    engine, token = _build_city(case_url)
    prefect_port, app_port = free_port(), free_port()
    prefect_api = f"http://127.0.0.1:{prefect_port}/api"
    env = ws.base_env(
        PREFECT_API_URL=prefect_api,
        PREFECT_UI_ENABLED="false",
        PREFECT_API_DATABASE_CONNECTION_URL=asyncpg_url(prefect_url),
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_PREFETCH_SECONDS="5",
        PREFECT_LOGGING_LEVEL="INFO",
        TIAOJIE_HOME=str(ws.dir("scale-out-home")),
        TIAOJIE_DATABASE_URL=case_url,
        TIAOJIE_SECRET_KEY=home_mod.SECRET,
        TIAOJIE_EXECUTOR="deployment",
        TIAOJIE_WORK_POOL=POOL,
        # The sweep has its own section; here it would only add runs to the pool.
        TIAOJIE_ESCALATION_INTERVAL_S="3600",
    )
    console.print("scale-out: Prefect server on PostgreSQL…")
    server = ws.start(
        [
            str(BIN / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(prefect_port),
        ],
        env=env,
        log_name="scale-prefect-server",
    )
    mine.append(server)
    wait_http(f"{prefect_api}/health", timeout=240, proc=server)
    console.print("scale-out: deployments on the process work pool…")
    _run([PYTHON, "-m", "deployments.deploy", "--pool", POOL], env, "deployments.deploy")
    mine.append(
        ws.start([str(BIN / "tiaojie"), "worker", "--no-serve"], env=env, log_name="scale-relay")
    )
    app = ws.start(
        [
            PYTHON,
            "-m",
            "uvicorn",
            "api.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(app_port),
            "--workers",
            "2",
            "--no-access-log",
        ],
        env=env,
        log_name="scale-app",
    )
    mine.append(app)
    app_url = f"http://127.0.0.1:{app_port}"
    wait_http(f"{app_url}/healthz", timeout=120, proc=app)
    return Stack(
        ws=ws,
        env=env,
        prefect_api=prefect_api,
        app_url=app_url,
        token=token,
        engine=engine,
        started_s=time.perf_counter() - t0,
    )


def _count_runs(api: str, flow_runs: dict[str, Any]) -> int:
    r = httpx.post(f"{api}/flow_runs/count", json={"flow_runs": flow_runs}, timeout=30)
    r.raise_for_status()
    return int(r.json())


def run_counts(api: str) -> dict[str, int]:
    """Flow runs so far: all, the relay's step runs, its batch runs, failed ones, and
    how many are active (running, pending, or scheduled and already due)."""
    due = {
        "state": {"type": {"any_": ["SCHEDULED"]}},
        "next_scheduled_start_time": {"before_": datetime.now(UTC).isoformat()},
    }
    return {
        "all": _count_runs(api, {}),
        "step": _count_runs(api, {"tags": {"any_": STEP_TAGS}}),
        "batch": _count_runs(api, {"tags": {"all_": ["batch"]}}),
        "active": _count_runs(api, {"state": {"type": {"any_": ACTIVE_STATES}}})
        + _count_runs(api, due),
        "failed": _count_runs(api, {"state": {"type": {"any_": ["FAILED", "CRASHED"]}}}),
    }


async def _burst(stack: Stack, offset: int, cases: int, sent: dict[int, float]) -> int:
    """POST ``cases`` cases, 16 in flight; records each case id's send time."""
    failed = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(cases):
        queue.put_nowait(offset + i)
    headers = {"Authorization": f"Bearer {stack.token}"}
    async with httpx.AsyncClient(base_url=stack.app_url, headers=headers, timeout=60) as client:

        async def poster() -> None:
            nonlocal failed
            while not queue.empty():
                i = queue.get_nowait()
                when = time.time()
                try:
                    r = await client.post("/api/v1/cases", json=home_mod.case_body(i))
                except httpx.HTTPError:
                    failed += 1
                    continue
                if r.status_code != 201:
                    failed += 1
                    continue
                sent[int(r.json()["case"]["id"])] = when

        await asyncio.gather(*(poster() for _ in range(16)))
    return failed


def _poll(engine: Engine, sent: dict[int, float], done: dict[int, float]) -> int:
    return poll_assigned(engine, sent, done)


def _worker_runs(ws: Workspace, log_name: str, skip_chars: int) -> dict[str, int]:
    """Runs the worker submitted, and runs its flow-run processes took while warm, in
    its log after ``skip_chars`` (the warm-up's part)."""
    p = ws.root / "logs" / f"{log_name}.log"
    body = p.read_text(errors="replace")[skip_chars:] if p.exists() else ""
    submitted = len(set(SUBMITTED.findall(body)))
    warm = sum(int(n) for n in WARM.findall(body))
    return {"submitted": submitted, "warm_taken": warm, "runs": submitted + warm}


def _wait_no_children(procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            if not any(psutil.Process(p.pid).children() for p in procs):
                return
        except psutil.Error:
            return
        time.sleep(0.5)


def _tree_cpu_s(procs: list[subprocess.Popen[bytes]]) -> float:
    """CPU seconds of these processes, their finished (reaped) children included, and
    of their live descendants."""
    total = 0.0
    for proc in procs:
        try:
            root = psutil.Process(proc.pid)
            t = root.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
            for child in root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    c = child.cpu_times()
                    total += c.user + c.system
        except psutil.Error:
            continue
    return total


def _busy_s() -> tuple[float, float]:
    """Machine-wide (busy, total) CPU seconds so far."""
    t = psutil.cpu_times()
    total = sum(t)
    return total - t.idle - getattr(t, "iowait", 0.0), total


def _log_size(ws: Workspace, log_name: str) -> int:
    p = ws.root / "logs" / f"{log_name}.log"
    return len(p.read_text(errors="replace")) if p.exists() else 0


def _wait_quiet(stack: Stack, timeout: float) -> int:
    """Until no flow run is scheduled, pending or running; returns how many still are."""
    deadline = time.perf_counter() + timeout
    while True:
        active = run_counts(stack.prefect_api)["active"]
        if active == 0 or time.perf_counter() > deadline:
            return active
        time.sleep(1)


def phase(
    stack: Stack, workers: int, cases: int, offset: int, timeout_s: float, console: Console
) -> dict[str, Any]:
    ws = stack.ws
    names = [f"scale-w{k}-of-{workers}" for k in range(1, workers + 1)]
    for name in names:
        stack.workers.append(
            ws.start(
                [
                    str(BIN / "prefect"),
                    "worker",
                    "start",
                    "--pool",
                    POOL,
                    "--type",
                    "process",
                    "--name",
                    name,
                    "--limit",
                    "3",
                ],
                env=stack.env,
                log_name=name,
            )
        )
    time.sleep(3)  # the workers register and start polling
    # A few cases first, not measured: the workers' first polls, the relay's and the
    # servers' first queries. Then every run they made is over before the burst.
    warm_sent: dict[int, float] = {}
    asyncio.run(_burst(stack, offset + 90_000, WARMUP_CASES, warm_sent))
    warm_done: dict[int, float] = {}
    warm_deadline = time.perf_counter() + 60
    while _poll(stack.engine, warm_sent, warm_done) and time.perf_counter() < warm_deadline:
        time.sleep(0.25)
    _wait_quiet(stack, 30)
    before = run_counts(stack.prefect_api)
    log_marks = {name: _log_size(ws, name) for name in names}
    cpu0, busy0 = _tree_cpu_s(stack.workers), _busy_s()
    load_start = [round(x, 2) for x in psutil.getloadavg()]
    sent: dict[int, float] = {}
    done: dict[int, float] = {}
    t_start = time.time()
    failed = asyncio.run(_burst(stack, offset, cases, sent))
    post_s = time.time() - t_start
    deadline = time.perf_counter() + timeout_s
    while _poll(stack.engine, sent, done) and time.perf_counter() < deadline:
        time.sleep(0.25)
    load_end = [round(x, 2) for x in psutil.getloadavg()]
    leftover = _wait_quiet(stack, 60)
    after = run_counts(stack.prefect_api)
    _wait_no_children(stack.workers, 15)  # their flow-run processes print their counts
    worker_cpu_s, busy1 = _tree_cpu_s(stack.workers) - cpu0, _busy_s()
    busy_fraction = (busy1[0] - busy0[0]) / max(1e-9, busy1[1] - busy0[1])
    for proc in stack.workers:
        ws.stop(proc)
    stack.workers.clear()
    lat = [done[i] - sent[i] for i in done]
    first = min(sent.values()) if sent else t_start
    span = (max(done.values()) - first) if done else None
    out: dict[str, Any] = {
        "workers": workers,
        "cases": cases,
        "submitted": len(sent),
        "post_failed": failed,
        "post_s": rnd(post_s, 2),
        "assigned": len(done),
        "not_assigned": len(sent) - len(done),
        "span_s": rnd(span, 2),
        "cases_per_s": rnd(len(done) / span, 2) if span else None,
        "p50_s": rnd(percentile(lat, 50), 2),
        "p95_s": rnd(percentile(lat, 95), 2),
        "max_s": rnd(max(lat), 2) if lat else None,
        "flow_runs": after["all"] - before["all"],
        "step_runs": after["step"] - before["step"],
        "batch_runs": after["batch"] - before["batch"],
        "failed_or_crashed_runs": after["failed"] - before["failed"],
        "runs_still_active_at_stop": leftover,
        "by_worker": {name: _worker_runs(ws, name, log_marks[name]) for name in names},
        "warmup_cases": WARMUP_CASES,
        # The flow-run processes' CPU (what a worker machine spends a case), and how
        # busy the whole machine was (other processes included) during the phase.
        "worker_cpu_ms_per_case": rnd(1000 * worker_cpu_s / len(done), 1) if done else None,
        "machine_cpu_busy_pct": rnd(100 * busy_fraction, 1),
        "load_average_at_start": load_start,
        "load_average_at_end": load_end,
    }
    console.print(
        f"{workers} worker(s): {len(done)}/{len(sent)} assigned in {out['span_s']} s, "
        f"{out['cases_per_s']} cases/s, p50 {out['p50_s']} s, p95 {out['p95_s']} s; "
        f"{out['flow_runs']} flow runs ({out['step_runs']} step runs, "
        f"{out['batch_runs']} batch); "
        f"by worker {out['by_worker']}; workers' CPU {out['worker_cpu_ms_per_case']} ms "
        f"a case, machine CPU {out['machine_cpu_busy_pct']} % busy; "
        f"load {load_start} → {load_end}"
    )
    return out


def run(ws: Workspace, sizes: Sizes, console: Console) -> dict[str, Any]:
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        return {"skipped": "no PostgreSQL (initdb not on PATH)"}
    pg = Postgres.start()
    stack: Stack | None = None
    mine: list[subprocess.Popen[bytes]] = []
    try:
        stack = start_stack(ws, pg, console, mine)
        console.print(f"scale-out: stack ready in {stack.started_s:.0f} s")
        phases = []
        for k, workers in enumerate((1, 2)):
            phases.append(
                phase(
                    stack,
                    workers,
                    sizes.scale_out_cases,
                    offset=1_000_000 + 100_000 * k,
                    timeout_s=sizes.scale_out_timeout_s,
                    console=console,
                )
            )
    finally:
        if stack is not None:
            for proc in stack.workers:
                ws.stop(proc)
            stack.engine.dispose()
        # Everything else this section started, newest first, before the database.
        for proc in reversed(mine):
            ws.stop(proc)
        problem = pg.stop()
        if problem:
            console.print(f"[yellow]{problem}")
    one, two = phases
    return {
        "workers_1_cases_per_s": one["cases_per_s"],
        "workers_2_cases_per_s": two["cases_per_s"],
        "ratio": ratio(two["cases_per_s"], one["cases_per_s"]),
        "p50_s": two["p50_s"],
        "p95_s": two["p95_s"],
        "workers_1_p50_s": one["p50_s"],
        "workers_1_p95_s": one["p95_s"],
        "worker_cpu_ms_per_case": one["worker_cpu_ms_per_case"],
        "machine_cpu_busy_pct": [one["machine_cpu_busy_pct"], two["machine_cpu_busy_pct"]],
        "load_average": [one["load_average_at_start"], two["load_average_at_start"]],
        "cases": sizes.scale_out_cases,
        "flow_runs": one["flow_runs"] + two["flow_runs"],
        "step_runs": one["step_runs"] + two["step_runs"],
        "batch_runs": one["batch_runs"] + two["batch_runs"],
        "stack_ready_s": rnd(stack.started_s if stack else None, 1),
        "setup": (
            "PostgreSQL (case and Prefect databases), Prefect server, process work pool, "
            "relay (tiaojie worker --no-serve), uvicorn --workers 2, "
            "prefect worker --limit 3 each; one machine"
        ),
        "phases": phases,
    }
