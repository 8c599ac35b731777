"""Kill the worker with SIGKILL in the middle of a step (inside its transaction, before
the commit); the reconciler re-drives the case, it continues, and the notification
receiver gets each notification once.

The intake run goes on to assignment in the same run, so the kill lands in the
assignment task of the intake run; the re-driven step is an assignment run of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from flows.reconcile import reconcile
from models.case import Case
from models.clock import VirtualClock
from models.db import read_session, write_session
from models.enums import OutboxState
from models.event import CaseEvent, Outbox
from models.lifecycle import Actor
from models.mediating import record_consent
from models.outbox import CHAIN_GRACE_S
from models.settings import reset_settings
from models.triage import triage_case
from tasks.steps import PAUSE_ENV
from tests.factories import City, make_case
from tests.flows.conftest import Receiver
from tests.flows.helpers import accept_and_name, drive, runs_of

pytestmark = pytest.mark.prefect

REPO = Path(__file__).resolve().parents[2]


class Counter(ThreadingHTTPServer):
    keys: list[str]


class Handler(BaseHTTPRequestHandler):
    server: Counter

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        json.loads(self.rfile.read(length))
        self.server.keys.append(self.headers["Idempotency-Key"])
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def local_receiver() -> Iterator[Counter]:
    server = Counter(("127.0.0.1", 0), Handler)
    server.keys = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _status(engine: Engine, case_id: int) -> str:
    with read_session(engine) as s:
        case = s.get(Case, case_id)
        assert case is not None
        return case.status.value


def test_worker_killed_mid_step_recovers_without_doubling(
    case_db: Engine,
    city: City,
    local_receiver: Counter,
    aloop: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_server: str,
) -> None:
    url = f"http://127.0.0.1:{local_receiver.server_address[1]}/notify"
    monkeypatch.setenv("TIAOJIE_NOTIFIER_URL", url)
    reset_settings()
    with write_session(case_db) as s:
        case = make_case(s)
        case_id, number = case.id, case.number
    assert case_id is not None

    marker = tmp_path / "paused"
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_API_URL": prefect_server,
            PAUSE_ENV: "assignment:120",
            PAUSE_ENV + "_MARKER": str(marker),
            "TIAOJIE_RELAY_POLL_S": "0.2",
        }
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "tiaojie_cli.main", "worker", "--no-serve"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert worker.poll() is None, "the worker exited early"
            assert time.monotonic() < deadline, "the worker never reached the assignment step"
            time.sleep(0.2)
        # Intake committed; assignment is inside its transaction, not yet committed.
        assert _status(case_db, case_id) == "triaged"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL
    assert _status(case_db, case_id) == "triaged"
    assert local_receiver.keys == []

    # The reconciler finds the stuck case and queues its step again; the relay runs it.
    counts = aloop.run(reconcile(stuck_after_s=0))  # type: ignore[attr-defined]
    assert counts["stuck_cases"] == 1
    drive(aloop, case_db)
    assert _status(case_db, case_id) == "assigned"

    # A second pass (and a repeated delivery) does nothing twice.
    aloop.run(reconcile(stuck_after_s=0))  # type: ignore[attr-defined]
    drive(aloop, case_db)
    with read_session(case_db) as s:
        assigned = s.exec(
            select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.verb == "assigned")
        ).all()
    assert len(assigned) == 1
    key = f"{case_id}:{assigned[0].seq}:assigned"
    assert local_receiver.keys == [key]

    # Prefect shows the interrupted intake run and the re-driven assignment under the
    # case number.
    runs = aloop.run(runs_of(number))  # type: ignore[attr-defined]
    assert [r.idempotency_key for r in runs if r.name == f"{number} · intake"] == [
        f"{case_id}:intake:1"
    ]
    assignment_runs = [r for r in runs if r.name == f"{number} · assignment"]
    assert [r.idempotency_key for r in assignment_runs] == [f"{case_id}:assignment:2:1"]
    assert assignment_runs[0].state_type is not None
    assert assignment_runs[0].state_type.value == "COMPLETED"


def test_a_crashed_step_run_is_redriven_without_a_second_notification(
    case_db: Engine, city: City, receiver: Receiver, aloop: Any
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    with write_session(case_db) as s:
        case = make_case(s)
        case_id, number = case.id, case.number
    drive(aloop, case_db)
    assert _status(case_db, case_id) == "assigned"
    assert receiver.keys == [f"{case_id}:3:assigned"]
    # The parties consent: mediation starts, and its notice is a notify run of its own.
    actor = accept_and_name(case_db, city, case_id, "mediatorA")
    with write_session(case_db) as s:
        c = s.get(Case, case_id)
        assert c is not None
        record_consent(s, case_id=case_id, party_ids=None, actor=actor, expected_version=c.version)
    drive(aloop, case_db)
    assert _status(case_db, case_id) == "in_mediation"
    with read_session(case_db) as s:
        started = s.exec(
            select(CaseEvent).where(
                CaseEvent.case_id == case_id, CaseEvent.verb == "mediation_started"
            )
        ).one()
    sent = [f"{case_id}:3:assigned", f"{case_id}:{started.seq}:mediation_started"]
    assert receiver.keys == sent

    async def crash_notify_run() -> None:
        async with get_client() as client:
            (run,) = [r for r in await runs_of(number) if r.name == f"{number} · notify"]
            await client.set_flow_run_state(run.id, Crashed(message="test"), force=True)

    aloop.run(crash_notify_run())
    counts = aloop.run(reconcile(stuck_after_s=3600))
    assert counts["crashed_runs"] == 1
    drive(aloop, case_db)
    runs = [r for r in aloop.run(runs_of(number)) if r.name == f"{number} · notify"]
    # Re-driven, the step is found done (its notification is recorded as sent): the
    # relay delivers the row without a second run, says why, and nothing is resent.
    assert [r.state_type.value for r in runs if r.state_type] == ["CRASHED"]
    with read_session(case_db) as s:
        row = s.exec(
            select(Outbox).where(Outbox.case_id == case_id, Outbox.verb == "mediation_started")
        ).one()
    assert row.state == OutboxState.DELIVERED and row.payload.get("redrive") == 1
    assert row.last_error == "skipped: notification already sent"
    assert receiver.keys == sent
    # A second pass leaves the old crashed run alone (it was already re-driven).
    assert aloop.run(reconcile(stuck_after_s=3600))["crashed_runs"] == 0


def test_a_chained_step_whose_run_died_is_started_after_the_grace(
    case_db: Engine, city: City, receiver: Receiver, aloop: Any, vclock: VirtualClock
) -> None:
    """Triage committed, then the intake run died before assigning: the ``triaged`` row
    is held while its run could still do the step, then started as a run of its own."""
    with write_session(case_db) as s:
        case = make_case(s)
        case_id, number = case.id, case.number
    assert case_id is not None
    with write_session(case_db) as s:  # what the dead intake run committed
        triage_case(s, case_id=case_id, actor=Actor.system())
    drive(aloop, case_db)
    assert _status(case_db, case_id) == "triaged"  # intake skipped, assignment held
    with read_session(case_db) as s:
        rows = {o.verb: o for o in s.exec(select(Outbox).where(Outbox.case_id == case_id))}
    assert rows["submitted"].last_error == "skipped: case already triaged (status triaged)"
    assert rows["triaged"].state == OutboxState.PENDING and rows["triaged"].payload["held"]
    assert receiver.keys == []

    vclock.advance(timedelta(seconds=CHAIN_GRACE_S + 1))
    drive(aloop, case_db)
    assert _status(case_db, case_id) == "assigned"
    assert receiver.keys == [f"{case_id}:3:assigned"]
    runs = aloop.run(runs_of(number))
    assert sorted((r.name, r.idempotency_key) for r in runs) == [
        (f"{number} · assignment", f"{case_id}:assignment:2")
    ]
