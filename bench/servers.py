"""``tiaojie up`` as the benchmarks run it: one stack per bench run (its own home with a
generated city, a Prefect server on SQLite with a temp PREFECT_HOME, the worker and the
HTTP app on free loopback ports). It starts in the background early, so that the slow
first start of the Prefect server overlaps with the escalation data generation; its idle
memory is sampled once it is ready, before any load."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import home as home_mod
from bench.common import BIN, PeakRss, Workspace, free_port, tree_rss_mb


@dataclass
class UpStack:
    ws: Workspace
    home: home_mod.Home
    proc: subprocess.Popen[bytes]
    port: int
    prefect_port: int
    started_at: float
    settle_s: float
    ready_s: float | None = None
    idle_rss: dict[str, float] = field(default_factory=dict)

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def prefect_api(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def prefect_env(self) -> dict[str, str]:
        """What a client of this stack's Prefect server needs: its URL and the auth string
        `tiaojie up` generated."""
        auth = Path(self.home.env["TIAOJIE_HOME"]) / "keys" / "prefect-auth"
        return {
            "PREFECT_API_URL": self.prefect_api,
            "PREFECT_API_AUTH_STRING": auth.read_text(encoding="utf-8").strip(),
        }

    def wait_ready(self, timeout: float = 240) -> None:
        """Until ``/healthz`` answers 200 (server, worker and app up); then sample the
        idle memory over ``settle_s`` seconds."""
        if self.ready_s is not None:
            return
        deadline = time.perf_counter() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"tiaojie up exited with {self.proc.returncode}\n{self.ws.log_tail('tiaojie-up')}"
                )
            try:
                if httpx.get(self.app_url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() > deadline:
                raise TimeoutError(
                    f"tiaojie up not ready in {timeout:.0f} s\n{self.ws.log_tail('tiaojie-up')}"
                )
            time.sleep(0.25)
        self.ready_s = time.perf_counter() - self.started_at
        with PeakRss([self.proc.pid], interval=0.25) as peak:
            time.sleep(self.settle_s)
        self.idle_rss = peak.peak

    def rss(self) -> dict[str, float]:
        return tree_rss_mb([self.proc.pid])

    def summary(self) -> dict[str, Any]:
        return {"ready_s": None if self.ready_s is None else round(self.ready_s, 1)}


_stack: UpStack | None = None


def start_stack(
    ws: Workspace, *, settle_s: float, settings: dict[str, str] | None = None
) -> UpStack:
    """Start (once) ``tiaojie up`` on a prepared home; does not wait for it. ``settings``:
    ``TIAOJIE_`` settings to run it with (name without the prefix → value)."""
    global _stack
    if _stack is not None and _stack.proc.poll() is None:
        return _stack
    home = home_mod.prepare(ws, "up")
    port, prefect_port = free_port(), free_port()
    env = {**home.env, "PREFECT_LOGGING_LEVEL": "WARNING", "COLUMNS": "120"}
    env.update({f"TIAOJIE_{k.upper()}": v for k, v in (settings or {}).items()})
    proc = ws.start(
        [str(BIN / "tiaojie"), "up", "--port", str(port), "--prefect-port", str(prefect_port)],
        env=env,
        log_name="tiaojie-up",
    )
    _stack = UpStack(
        ws=ws,
        home=home,
        proc=proc,
        port=port,
        prefect_port=prefect_port,
        started_at=time.perf_counter(),
        settle_s=settle_s,
    )
    return _stack


def current_stack() -> UpStack | None:
    return _stack


def forget_stack() -> None:
    global _stack
    _stack = None
