"""Process supervision for ``tiaojie up``: start children, watch them, restart the ones
that die (a bounded number of times), and stop every one of them cleanly.

Each child runs in its own process group (``start_new_session``) with its output in a
log file of its own. Stopping a child sends SIGINT to its group, then SIGTERM, then
SIGKILL, each after a timeout. Some children start processes in sessions of their own
(a Prefect runner starts every flow run with ``start_new_session=True``), so before
signalling a group the supervisor also records every descendant of the child
(``psutil``) and makes sure each of them is gone at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psutil

HealthCheck = Callable[[], bool]


def http_ok(url: str, *, timeout: float = 2.0, accept: Iterable[int] = (200,)) -> HealthCheck:
    """A health check that passes when ``url`` answers one of the ``accept`` codes."""
    codes = frozenset(accept)

    def check() -> bool:
        try:
            response = httpx.get(url, timeout=timeout)
        except httpx.HTTPError:
            return False
        return response.status_code in codes

    return check


@dataclass
class ChildSpec:
    """What to run: a name for the screen and the logs, the command and its environment."""

    name: str
    argv: Sequence[str]
    env: dict[str, str]
    log_path: Path
    health: HealthCheck | None = None
    cwd: Path | None = None
    max_restarts: int = 5
    label: str = ""


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    gave_up: bool = False
    known_descendants: set[int] = field(default_factory=set)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass(frozen=True)
class Death:
    name: str
    pid: int
    returncode: int
    restarted: bool
    restarts: int
    log_path: Path


def _descendants(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return set()


def living(pids: Iterable[int]) -> set[int]:
    """The pids that still run (zombies waiting for a parent to reap them count as gone)."""
    alive: set[int] = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.Error:
            continue
    return alive


def _wait_gone(pids: Iterable[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    remaining = living(pids)
    while remaining and time.monotonic() < deadline:
        time.sleep(0.1)
        remaining = living(remaining)
    return remaining


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _signal_pids(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class Supervisor:
    """Starts, watches, restarts and stops a set of child processes."""

    def __init__(
        self,
        *,
        restart_backoff_s: float = 1.0,
        stop_timeouts: tuple[float, float, float] = (10.0, 5.0, 3.0),
    ) -> None:
        self.children: dict[str, Child] = {}
        self.restart_backoff_s = restart_backoff_s
        self.stop_timeouts = stop_timeouts
        self._lock = threading.RLock()
        self.stopping = False

    # -- start -------------------------------------------------------------------

    def start(self, spec: ChildSpec) -> Child:
        with self._lock:
            child = self.children.get(spec.name) or Child(spec=spec)
            self.children[spec.name] = child
            self._spawn(child)
            return child

    def _spawn(self, child: Child) -> None:
        spec = child.spec
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        if child.log is not None:
            child.log.close()
        child.log = spec.log_path.open("ab")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        child.log.write(f"\n=== {stamp} starting {spec.name}: {' '.join(spec.argv)}\n".encode())
        child.log.flush()
        child.process = subprocess.Popen(  # noqa: S603 (our own commands, no shell)
            list(spec.argv),
            env=spec.env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=child.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child.started_at = time.monotonic()
        child.known_descendants = set()

    # -- watch -------------------------------------------------------------------

    def healthy(self, name: str) -> bool:
        child = self.children[name]
        if not child.alive():
            return False
        return child.spec.health() if child.spec.health else True

    def check(self) -> list[Death]:
        """Reap dead children and restart them (bounded). Call it every second or so."""
        deaths: list[Death] = []
        with self._lock:
            if self.stopping:
                return deaths
            for child in self.children.values():
                if child.process is None:
                    continue
                if child.alive():
                    child.known_descendants |= _descendants(child.process.pid)
                    continue
                if child.gave_up:
                    continue
                code = child.process.returncode
                pid = child.process.pid
                # Whatever the dead child left behind goes with it.
                self._kill_leftovers(child)
                restart = child.restarts < child.spec.max_restarts
                if restart:
                    time.sleep(min(self.restart_backoff_s * (2**child.restarts), 30.0))
                    child.restarts += 1
                    self._spawn(child)
                else:
                    child.gave_up = True
                deaths.append(
                    Death(
                        name=child.spec.name,
                        pid=pid,
                        returncode=code,
                        restarted=restart,
                        restarts=child.restarts,
                        log_path=child.spec.log_path,
                    )
                )
        return deaths

    # -- stop --------------------------------------------------------------------

    def _kill_leftovers(self, child: Child) -> None:
        leftovers = living(child.known_descendants)
        if child.process is not None:
            _signal_group(child.process.pid, signal.SIGKILL)
        _signal_pids(leftovers, signal.SIGKILL)
        _wait_gone(leftovers, 3.0)
        child.known_descendants = set()

    def stop_child(self, child: Child) -> None:
        """SIGINT, then SIGTERM, then SIGKILL: to the child's group and its descendants."""
        if child.process is None:
            return
        pid = child.process.pid
        family = child.known_descendants | _descendants(pid)
        for sig, timeout in zip(
            (signal.SIGINT, signal.SIGTERM, signal.SIGKILL), self.stop_timeouts, strict=True
        ):
            if child.alive():
                family |= _descendants(pid)
            others = living(family)
            if not child.alive() and not others:
                break
            if child.alive():
                _signal_group(pid, sig)
            # Descendants in sessions of their own (flow-run processes) get it directly.
            _signal_pids(others, sig)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not child.alive() and not living(family):
                    break
                time.sleep(0.1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=1)
        if child.log is not None:
            child.log.close()
            child.log = None

    def stop_all(self, order: Sequence[str] | None = None) -> None:
        """Stop every child, by default in the reverse order they were started."""
        with self._lock:
            self.stopping = True
            names = list(order) if order is not None else list(reversed(self.children))
            for name in names:
                self.stop_child(self.children[name])


__all__ = ["Child", "ChildSpec", "Death", "HealthCheck", "Supervisor", "http_ok", "living"]
