"""Every ``tiaojie`` command in the README's shell blocks runs as written, in order,
against the demo city served by the real app (``up`` and ``worker`` run forever and are
covered by tests/e2e)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from api.app import create_app
from models import clock
from models.db import reset_engines
from models.settings import Settings, reset_settings
from tiaojie_cli.main import app as cli

ROOT = Path(__file__).parents[2]
LONG_RUNNING = ("tiaojie up", "tiaojie worker")
runner = CliRunner()


def readme_commands() -> list[str]:
    """Lines of the README's ```bash blocks that run ``tiaojie`` or prepare its files."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [
        line
        for line in lines
        if ("tiaojie " in line or line.startswith("cp "))
        and not line.startswith(LONG_RUNNING)
        and not line.startswith("make ")
    ]


def _serve(url: str) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Settings(database_url=url))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def demo_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vclock: clock.VirtualClock
) -> Iterator[Path]:
    """The demo city as of the suite's fixed day, so its case numbers are the README's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIAOJIE_HOME", str(tmp_path / "var"))
    reset_settings()
    reset_engines()
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    result = runner.invoke(cli, ["init", "--demo"])
    assert result.exit_code == 0, result.output
    url = f"sqlite:///{tmp_path / 'var' / 'tiaojie.db'}"
    for api_url in _serve(url):
        monkeypatch.setenv("TIAOJIE_API_URL", api_url)
        yield tmp_path
    reset_engines()


def _run(line: str, env: dict[str, str]) -> str:
    args = shlex.split(line, comments=True)
    result = runner.invoke(cli, args[1:], env=env)
    assert result.exit_code == 0, f"{line}\n{result.output}"
    return result.output


def test_every_readme_command_runs_as_written(demo_site: Path) -> None:
    commands = readme_commands()
    assert len(commands) >= 12, commands
    env: dict[str, str] = {}
    for line in commands:
        if line.startswith("cp -r "):
            source, target = shlex.split(line, comments=True)[2:4]
            shutil.copytree(demo_site / source, demo_site / target)
        elif line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            inner = re.fullmatch(r"\$\((tiaojie [^|)]*)\|\s*tail -1\)", value)
            if inner:
                env[name] = _run(inner.group(1), env).strip().splitlines()[-1]
            else:
                env[name] = os.path.expandvars(value)
        else:
            _run(line, env)
