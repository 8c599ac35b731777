"""``tiaojie up`` end to end: the real command as a subprocess, on free ports, in a temp
TIAOJIE_HOME. It must become healthy, take a case over HTTP and assign it through the
workflows, and on SIGINT stop every process it started (children and grandchildren)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from models.db import build_engine, write_session
from models.migrate import upgrade
from tests.factories import build_city, case_data

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 240
ASSIGN_TIMEOUT_S = 180

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def family(pid: int) -> set[int]:
    try:
        proc = psutil.Process(pid)
        return {pid} | {p.pid for p in proc.children(recursive=True)}
    except psutil.Error:
        return set()


def running(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.Error:
            continue
    return alive


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A migrated case database holding the small test city of tests/factories."""
    home = tmp_path / "home"
    home.mkdir()
    engine = build_engine(f"sqlite:///{home / 'tiaojie.db'}")
    upgrade(engine)
    with write_session(engine) as session:
        build_city(session)
    engine.dispose()
    return home


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["TIAOJIE_HOME"] = str(home)
    env.pop("TIAOJIE_DATABASE_URL", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def up(env: dict[str, str], home: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path, int]]:
    port = free_port()
    prefect_port = free_port()
    out = home / "up.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tiaojie_cli.main",
                "up",
                "--port",
                str(port),
                "--prefect-port",
                str(prefect_port),
            ],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc, port, out, prefect_port
    finally:
        if proc.poll() is None:  # the test failed before stopping it: clean up anyway
            pids = family(proc.pid)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                for pid in running(pids):
                    os.kill(pid, signal.SIGKILL)


def check_prefect_asks_who_is_calling(prefect_port: int, home: Path, env: dict[str, str]) -> None:
    """Finding 5: no anonymous calls, no cross-origin callers; the CLI with the auth
    string (generated into TIAOJIE_HOME/keys) still works."""
    api = f"http://127.0.0.1:{prefect_port}/api"
    auth_file = home / "keys" / "prefect-auth"
    assert oct(auth_file.stat().st_mode & 0o777) == "0o600"
    auth = auth_file.read_text().strip()
    user, password = auth.split(":", 1)
    anonymous = httpx.post(f"{api}/deployments/filter", json={}, timeout=10)
    assert anonymous.status_code == 401
    evil = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    forged = httpx.post(f"{api}/flow_runs/", headers=evil, content=b"{}", timeout=10)
    assert forged.status_code == 401
    assert forged.headers.get("access-control-allow-origin") is None
    preflight = httpx.options(
        f"{api}/deployments/filter",
        headers={**evil, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code >= 400
    assert preflight.headers.get("access-control-allow-origin") in (None, "")
    signed = httpx.post(f"{api}/deployments/filter", json={}, auth=(user, password), timeout=10)
    assert signed.status_code == 200 and signed.json()
    cli_env = {**env, "PREFECT_API_URL": api, "PREFECT_API_AUTH_STRING": auth}
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "deployment", "ls"],
        env=cli_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "tiaojie" in listed.stdout
    refused = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "deployment", "ls"],
        env={**cli_env, "PREFECT_API_AUTH_STRING": "tiaojie:wrong"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0


def test_up_serves_assigns_and_stops_cleanly(
    up: tuple[subprocess.Popen[bytes], int, Path, int], env: dict[str, str]
) -> None:
    proc, port, out, prefect_port = up
    base = f"http://127.0.0.1:{port}"
    seen: set[int] = set()

    # 1. Healthy: /healthz answers 200 only once every component is ready.
    deadline = time.monotonic() + READY_TIMEOUT_S
    status = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, out.read_text(errors="replace")
        seen |= family(proc.pid)
        try:
            status = httpx.get(f"{base}/healthz", timeout=3).status_code
        except httpx.HTTPError:
            status = None
        if status == 200:
            break
        time.sleep(0.2)
    assert status == 200, out.read_text(errors="replace")
    # The ready screen is flushed before the flag is set; still, read until it is there.
    deadline = time.monotonic() + 30
    screen = out.read_text(errors="replace")
    while "ready" not in screen and time.monotonic() < deadline:
        time.sleep(0.2)
        screen = out.read_text(errors="replace")
    assert "ready" in screen and f"{base}/docs" in screen

    check_prefect_asks_who_is_calling(prefect_port, Path(env["TIAOJIE_HOME"]), env)
    home = Path(env["TIAOJIE_HOME"])
    for private in (home / "logs" / "app.log", home / "logs" / "worker.log", home / "tiaojie.db"):
        assert private.stat().st_mode & 0o077 == 0, private  # owner only

    # 2. A token from the CLI, a case over HTTP.
    token = (
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tiaojie_cli.main",
                "token",
                "create",
                "--role",
                "community_worker",
                "--unit",
                "CMA",
            ],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        .stdout.strip()
        .splitlines()[-1]
        .strip()
    )
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        body = case_data().model_dump(mode="json", exclude_defaults=False)
        created = client.post("/api/v1/cases", json=body)
        assert created.status_code == 201, created.text
        answer = created.json()
        case_id = answer.get("case", answer)["id"]

        # 3. The workflows triage and assign it.
        deadline = time.monotonic() + ASSIGN_TIMEOUT_S
        case: dict[str, object] = {}
        while time.monotonic() < deadline:
            seen |= family(proc.pid)
            answer = client.get(f"/api/v1/cases/{case_id}").json()
            case = answer.get("case", answer)
            if case.get("status") == "assigned":
                break
            time.sleep(0.2)
        assert case.get("status") == "assigned", case
        assert case.get("assignee_id") is not None

    # 4. SIGINT stops everything: up itself, the server, the worker, the app and any
    # flow-run process they started.
    seen |= family(proc.pid)
    assert len(seen) >= 4  # up + Prefect server + worker + app, at least
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=90) == 0, out.read_text(errors="replace")
    deadline = time.monotonic() + 10
    while running(seen) and time.monotonic() < deadline:
        time.sleep(0.2)
    leftovers = {pid: psutil.Process(pid).cmdline() for pid in running(seen)}
    assert leftovers == {}
    assert "stopped" in out.read_text(errors="replace")
    assert not (Path(env["TIAOJIE_HOME"]) / "run" / "ready").exists()
