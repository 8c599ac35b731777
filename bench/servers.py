"""The local Prefect server the benchmarks share (one per bench run, SQLite, temp
PREFECT_HOME, a free port), started early in the background so that its slow first start
overlaps with the data generation."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

from bench.common import BIN, Workspace, free_port, wait_http


@dataclass
class PrefectServer:
    proc: subprocess.Popen[bytes]
    api_url: str
    started_at: float
    ready_s: float | None = None

    def wait(self, ws: Workspace, timeout: float = 120) -> str:
        if self.ready_s is None:
            try:
                wait_http(self.api_url + "/health", timeout=timeout, proc=self.proc)
            except Exception as exc:
                raise RuntimeError(
                    f"Prefect server did not start: {exc}\n{ws.log_tail('prefect-server')}"
                ) from exc
            self.ready_s = time.perf_counter() - self.started_at
        return self.api_url

    def env(self) -> dict[str, str]:
        return {"PREFECT_API_URL": self.api_url}


_server: PrefectServer | None = None


def prefect_server(ws: Workspace) -> PrefectServer:
    """Start (once) ``prefect server start`` on a free loopback port."""
    global _server
    if _server is not None and _server.proc.poll() is None:
        return _server
    port = free_port()
    env = ws.base_env(
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    proc = ws.start(
        [
            str(BIN / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ui",
        ],
        env=env,
        log_name="prefect-server",
    )
    _server = PrefectServer(
        proc=proc, api_url=f"http://127.0.0.1:{port}/api", started_at=time.perf_counter()
    )
    return _server
