"""Promise 2: no gap between a saved case and its workflow, whatever is killed.

Real processes on one machine: the HTTP app (uvicorn), the worker (``deployments.serve``
with the outbox relay and in-process step execution) and a Prefect test server; a
notification receiver on 127.0.0.1 counts what arrives, by ``Idempotency-Key``.
Submissions go to the API (a client retries with the same ``Idempotency-Key`` when its
connection breaks) while, at seeded moments, the API and the worker are killed with
SIGKILL and started again: the API right after commits (before the relay saw them),
the worker mid-delivery, and the worker mid-step (held inside a step's transaction by
the ``TIAOJIE_TEST_PAUSE_BEFORE_COMMIT`` hook, then killed).

Then one reconcile pass (the ``reconcile`` flow, stuck-after 0 s) and the worker drains.
Measured: cases without their next step (not assigned, or their assignee never
notified) 0, duplicated step effects (two ``triaged`` or ``assigned`` events for one
step) 0, duplicate notifications processed at the receiver 0, and the recovery time
from the reconcile pass until every case has its next step.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session, col, select

from models.case import Case
from models.enums import OutboxState
from models.event import CaseEvent, Outbox
from models.notification import Notification
from models.outbox import LEASE_S
from tests.reliability.common import (
    ROOT,
    App,
    PromiseResult,
    Scale,
    sqlite_database,
    use_database,
)
from tests.reliability.p11_load import free_port

WORKER = "from deployments.serve import main; main(serve_deployments=False)"


class Receiver:
    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(length)
                with receiver.lock:
                    receiver.keys[self.headers.get("Idempotency-Key", "")] += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Child:
    """A process started again after each kill."""

    def __init__(self, args: list[str], env: dict[str, str], ready: str | None) -> None:
        self.args, self.env, self.ready = args, env, ready
        self.proc: subprocess.Popen[bytes] | None = None
        # Closed in stop(); the child writes to it for its whole life.
        self.log = tempfile.NamedTemporaryFile(prefix="tiaojie-rel-child-", delete=False)  # noqa: SIM115
        self.kills = 0

    def start(self, extra: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env={**self.env, **(extra or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def wait_until(check: Any, timeout: float, step: float = 0.2) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(step)
    return False


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def next_step_missing(engine: Any) -> list[int]:
    """Cases not yet assigned, or assigned without their assignee notified."""
    with Session(engine) as s:
        cases = s.exec(select(Case)).all()
        sent = {
            n.case_id
            for n in s.exec(
                select(Notification).where(
                    Notification.kind == "assigned", col(Notification.sent_at).is_not(None)
                )
            ).all()
        }
    return [c.id or 0 for c in cases if c.status.value != "assigned" or c.id not in sent]


def pending_outbox(engine: Any) -> int:
    with Session(engine) as s:
        return len(s.exec(select(Outbox.id).where(Outbox.state == OutboxState.PENDING)).all())


def run_here(scale: Scale) -> PromiseResult:
    submissions, api_kills, worker_kills = scale.pick((10, 1, 1), (1000, 3, 5))
    rng = random.Random(scale.seed)
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    receiver = Receiver()
    figures: dict[str, Any] = {}
    with prefect_test_harness(server_startup_timeout=180), sqlite_database() as database:
        api_url = PREFECT_API_URL.value()
        env = {
            **os.environ,
            "PREFECT_API_URL": api_url,
            "TIAOJIE_DATABASE_URL": database.url,
            "TIAOJIE_NOTIFIER_URL": receiver.url,
            "TIAOJIE_RELAY_POLL_S": "0.2",
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        api = Child(
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
            ],
            env,
            None,
        )
        worker = Child([sys.executable, "-c", WORKER], env, None)
        marker = Path(tempfile.mkdtemp(prefix="tiaojie-rel-pause-")) / "paused"
        helper = App(app=None, client=httpx.Client(), database=database)
        headers = helper.auth("street_mediator")  # files in both communities
        helper.client.close()
        try:
            api.start()
            worker.start()
            assert wait_until(lambda: healthy(base), 120)
            api_kill_at = set(rng.sample(range(2, submissions - 1), api_kills))
            worker_kill_at = set(rng.sample(range(2, submissions - 1), worker_kills))
            accepted = 0
            for i in range(submissions):
                body = {
                    "category": "neighbour",
                    "description": f"楼上噪声扰民，第{i}件",
                    "place_code": ("BA1", "BB2")[i % 2],
                }
                for _attempt in range(60):
                    try:
                        r = httpx.post(
                            f"{base}/api/v1/cases",
                            json=body,
                            timeout=30,
                            headers={**headers, "Idempotency-Key": f"kill-{i}"},
                        )
                        if r.status_code == 201:
                            accepted += 1
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.5)  # the API is restarting
                if i in api_kill_at:
                    api.kill()  # right after a commit, before the relay may have seen it
                    api.start()
                    wait_until(lambda: healthy(base), 120)
                if i in worker_kill_at:
                    if i == max(worker_kill_at):
                        # Mid-step: hold the next assignment inside its transaction, kill.
                        worker.kill()
                        worker.start(
                            {
                                "TIAOJIE_TEST_PAUSE_BEFORE_COMMIT": "intake:60",
                                "TIAOJIE_TEST_PAUSE_BEFORE_COMMIT_MARKER": str(marker),
                            }
                        )
                        wait_until(marker.exists, 120)
                        worker.kill()
                        worker.start()
                    else:
                        time.sleep(rng.uniform(0.0, 1.5))  # mid-delivery
                        worker.kill()
                        worker.start()
            # Let the restarted worker deliver what the killed ones had claimed (their
            # lease runs out first), then one reconcile pass.
            # The embedded worker carries about two cases a second (the Prefect server on
            # SQLite bounds it, see README Performance): a backlog needs time to drain
            # before the one reconcile pass, or the count would measure speed, not loss.
            drain_s = 0.75 * submissions
            wait_until(lambda: not pending_outbox(database.engine), LEASE_S + 120 + drain_s, 0.2)
            wait_until(lambda: not next_step_missing(database.engine), 20, 0.2)
            missing_before = len(next_step_missing(database.engine))
            started = time.monotonic()
            from flows.reconcile import reconcile

            with use_database(database.url):
                counts = asyncio.run(reconcile(stuck_after_s=0))
            wait_until(lambda: not next_step_missing(database.engine), 300 + drain_s, 0.5)
            recovery = time.monotonic() - started
            missing = next_step_missing(database.engine)
        finally:
            api.stop()
            worker.stop()
            receiver.close()
        with Session(database.engine) as s:
            events = s.exec(select(CaseEvent.case_id, CaseEvent.verb, CaseEvent.data)).all()
            cases = len(s.exec(select(Case.id)).all())
        steps_twice = Counter((c, v) for c, v, _ in events if v in ("triaged", "assigned"))
        figures = {
            "submissions": submissions,
            "accepted": accepted,
            "cases": cases,
            "api_kills": api.kills,
            "worker_kills": worker.kills - 1 if marker.exists() else worker.kills,
            "worker_kills_mid_step": int(marker.exists()),
            "missing_next_step_before_reconcile": missing_before,
            "reconcile_redriven": counts.get("stuck_cases", 0)
            + counts.get("crashed_runs", 0)
            + counts.get("failed_deliveries", 0),
            "cases_without_next_step": len(missing),
            "duplicate_step_effects": sum(c - 1 for c in steps_twice.values() if c > 1),
            "notifications_received": sum(receiver.keys.values()),
            "duplicate_notifications": sum(c - 1 for c in receiver.keys.values() if c > 1),
            "recovery_s": round(recovery, 1),
        }
    passed = (
        figures["cases"] == submissions
        and figures["cases_without_next_step"] == 0
        and figures["duplicate_step_effects"] == 0
        and figures["duplicate_notifications"] == 0
    )
    return PromiseResult(
        promise="2 No gap between a saved case and its workflow 案件与流程无缝衔接",
        test="tests/reliability/p02_kills.py: uvicorn + worker (deployments.serve, relay, "
        "in-process steps) + Prefect test server, real SIGKILLs, one reconcile pass",
        load=f"{submissions:,} submissions through the API",
        faults=f"SIGKILL of the API after commits ({api_kills}x) and of the worker "
        f"mid-delivery and mid-step ({worker_kills}x), each restarted",
        result=figures,
        passed=passed,
        notes=[]
        if not scale.long or submissions >= 1000
        else [
            f"{submissions} submissions instead of 1,000 to fit the run's time on this "
            "2-core machine shared with other work"
        ],
    )


def run(scale: Scale) -> PromiseResult:
    """In a process of its own (its own Prefect test server and clients)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.p02_kills", scale.name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not last.startswith("{"):
        tail = (done.stderr or done.stdout)[-3000:]
        raise RuntimeError(f"kill run failed (exit {done.returncode}):\n{tail}")
    return PromiseResult(**json.loads(last))


if __name__ == "__main__":
    result = run_here(Scale(sys.argv[1] if len(sys.argv) > 1 else "short"))
    print(json.dumps(dataclasses.asdict(result), ensure_ascii=False))
