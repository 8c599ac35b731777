"""Shared helpers for the benchmarks: temp homes, free ports, child processes, RSS,
percentiles. Everything a benchmark starts is registered here and stopped at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def rnd(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


@dataclass
class Workspace:
    """A temp folder holding the databases, PREFECT_HOME and logs of one bench run."""

    root: Path
    keep: bool = False
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def create(cls, keep: bool = False) -> Workspace:
        return cls(Path(tempfile.mkdtemp(prefix="tiaojie-bench-")), keep=keep)

    def path(self, *parts: str) -> Path:
        p = self.root.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def dir(self, *parts: str) -> Path:
        p = self.root.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def base_env(self, **extra: str) -> dict[str, str]:
        """The environment of a child: a private PREFECT_HOME, no inherited API URL."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TIAOJIE_"))}
        env["PREFECT_HOME"] = str(self.dir("prefect-home"))
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        env["DO_NOT_TRACK"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        env.update(extra)
        return env

    def start(
        self, args: list[str], *, env: dict[str, str], log_name: str, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        log = self.path("logs", f"{log_name}.log").open("wb")
        proc = subprocess.Popen(
            args,
            env=env,
            cwd=str(cwd or REPO),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def log_tail(self, log_name: str, lines: int = 30) -> str:
        p = self.root / "logs" / f"{log_name}.log"
        if not p.exists():
            return ""
        return "\n".join(p.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
        stop_tree(proc, timeout=timeout)
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for proc in list(reversed(self.procs)):
            self.stop(proc)
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


def stop_tree(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM the process and let it stop its own children; then SIGTERM and SIGKILL
    whatever of its tree (recorded before, by pid) is still alive."""
    try:
        parent = psutil.Process(proc.pid)
        children = parent.children(recursive=True)
    except psutil.NoSuchProcess:
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        parent.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    _gone, alive = psutil.wait_procs(children, timeout=1)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGTERM)
    _gone, alive = psutil.wait_procs(alive, timeout=5)
    for p in [*alive, parent]:
        with contextlib.suppress(psutil.NoSuchProcess):
            if p.is_running():
                p.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def tree_rss_mb(pids: Sequence[int]) -> dict[str, float]:
    """RSS of each process tree rooted at ``pids``, by command, and the total (MB)."""
    out: dict[str, float] = {}
    total = 0.0
    seen: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            members = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in members:
            if p.pid in seen:
                continue
            seen.add(p.pid)
            try:
                rss = p.memory_info().rss / 2**20
                name = describe(p)
            except psutil.NoSuchProcess:
                continue
            out[name] = round(out.get(name, 0.0) + rss, 1)
            total += rss
    out["total"] = round(total, 1)
    return out


def describe(p: psutil.Process) -> str:
    """A short label for a process: the python module or script it runs."""
    try:
        cmd = p.cmdline()
    except psutil.Error:
        return p.name()
    words = [c for c in cmd[1:] if not c.startswith("-")] if cmd else []
    if "-m" in cmd:
        i = cmd.index("-m")
        return cmd[i + 1] if i + 1 < len(cmd) else p.name()
    for w in words:
        base = Path(w).name
        if base in {"prefect", "tiaojie", "uvicorn"}:
            rest = [x for x in words[words.index(w) + 1 :][:2] if "/" not in x]
            return " ".join([base, *rest])
    return Path(cmd[0]).name if cmd else p.name()


class PeakRss:
    """Samples the summed RSS of process trees in the background; keeps the peak."""

    def __init__(self, pids: Sequence[int], interval: float = 0.5) -> None:
        import threading

        self.pids = list(pids)
        self.interval = interval
        self.peak: dict[str, float] = {"total": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        now = tree_rss_mb(self.pids)
        if now.get("total", 0.0) > self.peak.get("total", 0.0):
            self.peak = now

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()


def wait_http(url: str, *, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> float:
    """Poll ``url`` until it answers below 500; return the seconds waited."""
    import httpx

    start = time.perf_counter()
    deadline = start + timeout
    while time.perf_counter() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return time.perf_counter() - start
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def run_json(module_args: list[str], env: dict[str, str], *, timeout: float, what: str) -> Any:
    """Run ``python -m <module_args>`` with ``env`` in the repository and return the
    JSON of its last line of output (RuntimeError with the end of stderr otherwise)."""
    import json

    proc = subprocess.run(
        [PYTHON, "-m", *module_args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def section_error(exc: BaseException) -> dict[str, Any]:
    return {"error": f"{type(exc).__name__}: {exc}"[:500]}


def poll_assigned(engine: Any, sent: dict[int, float], done: dict[int, float]) -> int:
    """Record (case id -> wall time) the cases of ``sent`` that routing has stamped
    (``assigned_at``, or ``referred_at`` for the paired agency); returns how many are
    still waiting. ``engine``: a SQLAlchemy engine on the case database."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    waiting = [i for i in sent if i not in done]
    with engine.connect() as conn:
        for start in range(0, len(waiting), 500):
            chunk = waiting[start : start + 500]
            rows = conn.execute(
                text(
                    "SELECT id, COALESCE(assigned_at, referred_at) FROM cases "
                    f"WHERE id IN ({','.join(map(str, chunk))}) "
                    "AND (assigned_at IS NOT NULL OR referred_at IS NOT NULL)"
                )
            ).all()
            for case_id, stamp in rows:
                when = stamp if isinstance(stamp, datetime) else datetime.fromisoformat(str(stamp))
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                done[int(case_id)] = when.timestamp()
    return len(sent) - len(done)
