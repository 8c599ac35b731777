"""Scale-out, for real: a Prefect server on PostgreSQL, the deployments on a ``process``
work pool, TWO ``prefect worker start`` processes, the outbox relay in ``deployment``
mode, the HTTP app under two uvicorn workers, and the case database on PostgreSQL.

Cases are submitted over HTTP; midway one worker (with every process it started) is
killed with SIGKILL, like a machine that dies. Every case must still reach its assignee
exactly once (one ``assigned`` event, one assignment notification), and both workers
must have done work. The number of cases is ``TIAOJIE_SCALE_OUT_CASES`` (default 200).
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from api.security import create_token
from models.case import Case
from models.db import build_engine, write_session
from models.event import CaseEvent
from models.lifecycle import verify_chain
from models.migrate import upgrade
from models.notification import Notification
from models.staff import Staff
from tests.factories import build_city, case_data
from tests.postgres.conftest import drop_database, new_database
from tiaojie_cli.supervise import ChildSpec, Supervisor, http_ok

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CASES = int(os.environ.get("TIAOJIE_SCALE_OUT_CASES", "200"))
POOL = "tiaojie-scale-test"
PLACES = ["BA1", "BA2", "BB1", "BB2"]
DONE_TIMEOUT_S = float(os.environ.get("TIAOJIE_SCALE_OUT_TIMEOUT_S", "900"))

REGISTER = f"""
import asyncio
from prefect.deployments.runner import EntrypointType
from deployments.definitions import DEPLOYMENT_NAME, TAGS, definitions, install_automations

async def main() -> None:
    for item in definitions():
        deployment = await item.flow.ato_deployment(
            name=DEPLOYMENT_NAME,
            schedules=list(item.schedules) or None,
            description=item.description,
            tags=TAGS,
            entrypoint_type=EntrypointType.MODULE_PATH,
            work_pool_name={POOL!r},
        )
        await deployment.apply()
    await install_automations()

asyncio.run(main())
"""

RELAY = "from deployments.serve import main; main(executor='deployment', serve_deployments=False)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def asyncpg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql+asyncpg://", 1)


@pytest.fixture
def stack(
    pg_admin: Engine, pg_server_url: str, tmp_path: Path
) -> Iterator[tuple[Supervisor, str, Engine, Path]]:
    case_url = new_database(pg_admin, pg_server_url, prefix="cases")
    prefect_url = new_database(pg_admin, pg_server_url, prefix="prefect")
    engine = build_engine(case_url)
    upgrade(engine)
    with write_session(engine) as session:
        build_city(session)
        for member in session.exec(select(Staff)).all():
            member.capacity = 10_000  # routing by load, never "everyone is full"
            session.add(member)

    api_port, prefect_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{prefect_port}/api"
    logs = tmp_path / "logs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(tmp_path / "prefect"),
            "PREFECT_API_URL": api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_API_DATABASE_CONNECTION_URL": asyncpg_url(prefect_url),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "TIAOJIE_DATABASE_URL": case_url,
            "TIAOJIE_EXECUTOR": "deployment",
            "TIAOJIE_WORK_POOL": POOL,
            "TIAOJIE_RECONCILE_INTERVAL_S": "15",
            "TIAOJIE_RECONCILE_STUCK_AFTER_S": "30",
            "TIAOJIE_ESCALATION_INTERVAL_S": "3600",
            "TIAOJIE_HOME": str(tmp_path / "home"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    sup = Supervisor(stop_timeouts=(10.0, 5.0, 3.0))

    def spec(name: str, argv: list[str], **extra: str) -> ChildSpec:
        return ChildSpec(
            name=name,
            argv=argv,
            env={**env, **extra},
            log_path=logs / f"{name}.log",
            cwd=ROOT,
            max_restarts=0,
        )

    prefect = str(Path(sys.executable).parent / "prefect")
    try:
        sup.start(
            spec(
                "prefect-server",
                [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
            )
        )
        wait_for(http_ok(f"{api_url}/health"), 240, "Prefect server on PostgreSQL", sup)
        run(
            [prefect, "work-pool", "create", POOL, "--type", "process", "--overwrite"],
            env,
        )
        if importlib.util.find_spec("deployments.deploy") is not None:
            run([sys.executable, "-m", "deployments.deploy", "--pool", POOL], env)
        else:
            run([sys.executable, "-c", REGISTER], env)
        for name in ("w1", "w2"):
            sup.start(
                spec(
                    name,
                    [
                        prefect,
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
                )
            )
        sup.start(spec("relay", [sys.executable, "-c", RELAY]))
        sup.start(
            spec(
                "app",
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "api.app:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(api_port),
                    "--workers",
                    "2",
                    "--no-access-log",
                ],
            )
        )
        wait_for(http_ok(f"http://127.0.0.1:{api_port}/healthz"), 120, "HTTP app", sup)
        yield sup, f"http://127.0.0.1:{api_port}", engine, logs
    finally:
        sup.stop_all()
        engine.dispose()
        drop_database(pg_admin, case_url)
        drop_database(pg_admin, prefect_url)


def run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{argv[:4]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def wait_for(check: object, timeout: float, what: str, sup: Supervisor) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in sup.children.values():
            if not child.alive():
                raise AssertionError(
                    f"{child.spec.name} died while waiting for {what}:\n"
                    + child.spec.log_path.read_text(errors="replace")[-4000:]
                )
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not ready after {timeout} s")


def assigned_count(engine: Engine) -> int:
    with Session(engine) as s:
        return int(
            s.exec(
                select(func.count(func.distinct(CaseEvent.case_id))).where(
                    CaseEvent.verb == "assigned"
                )
            ).one()
        )


def kill_family(pid: int) -> None:
    try:
        members = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return
    for proc in members:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.Error:
            continue


def test_two_workers_two_hundred_cases_one_worker_killed(
    stack: tuple[Supervisor, str, Engine, Path],
) -> None:
    sup, base, engine, logs = stack
    with Session(engine) as s:
        admin = s.exec(select(Staff).where(Staff.username == "admin")).one()
    token = create_token(subject=str(admin.id), role="admin", unit="C")

    def submit(i: int) -> int:
        body = case_data(
            place_code=PLACES[i % len(PLACES)],
            description=f"第{i}号测试投诉：工厂拖欠工资，工人多次讨要未果（扩容测试）。",
        ).model_dump(mode="json")
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            answer = client.post("/api/v1/cases", json=body, headers={"Idempotency-Key": f"s{i}"})
        assert answer.status_code == 201, answer.text
        data = answer.json()
        return int(data.get("case", data)["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(submit, range(CASES)))
    assert len(set(ids)) == CASES

    # Midway: kill worker w1 and everything it started, as if its machine died.
    deadline = time.monotonic() + DONE_TIMEOUT_S
    while assigned_count(engine) < CASES // 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    killed = sup.children["w1"]
    assert killed.pid is not None and killed.alive(), "w1 had already stopped"
    kill_family(killed.pid)
    at_kill = assigned_count(engine)
    assert at_kill < CASES, "too late to kill midway: everything was already assigned"

    while assigned_count(engine) < CASES and time.monotonic() < deadline:
        time.sleep(0.5)

    with Session(engine) as s:
        per_case = dict(
            s.exec(
                select(CaseEvent.case_id, func.count())
                .where(CaseEvent.verb == "assigned")
                .group_by(col(CaseEvent.case_id))
            ).all()
        )
        missing = sorted(set(ids) - set(per_case))
        assert missing == [], f"{len(missing)} cases never assigned (killed at {at_kill})"
        assert {n for n in per_case.values()} == {1}, "a case was assigned twice"
        cases = s.exec(select(Case).where(col(Case.id).in_(ids))).all()
        assert all(c.assignee_id is not None for c in cases)

    # Each assignee is told once per case (the notify step is re-driven too).
    deadline_notify = time.monotonic() + 240
    while time.monotonic() < deadline_notify:
        with Session(engine) as s:
            rows = s.exec(
                select(Notification.case_id, func.count())
                .where(col(Notification.case_id).in_(ids))
                .where(Notification.kind == "assigned")
                .group_by(col(Notification.case_id))
            ).all()
        if len(rows) == CASES:
            break
        time.sleep(0.5)
    notified = dict(rows)
    assert sorted(set(ids) - set(notified)) == []
    assert set(notified.values()) == {1}

    with Session(engine) as s:
        for case_id in ids[:: max(1, CASES // 20)]:
            assert verify_chain(s, case_id=case_id) == []

    # Both workers ran flow runs.
    pattern = re.compile(r"submitting flow run '([0-9a-f-]{36})'")
    runs = {
        name: set(pattern.findall((logs / f"{name}.log").read_text(errors="replace")))
        for name in ("w1", "w2")
    }
    assert runs["w1"], "worker w1 ran nothing before it was killed"
    assert runs["w2"], "worker w2 ran nothing"
