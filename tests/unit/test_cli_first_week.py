"""First-week friction: `tiaojie --help` loads no heavy library, `case list` never cuts a
case number at 80 columns, and the worker's log is not flooded by HTTP request lines."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from deployments.serve import QUIET_LOGGERS, configure_logging
from tiaojie_cli.cases import case_table


def test_help_imports_no_database_http_or_prefect_library() -> None:
    probe = (
        "import sys; from tiaojie_cli.main import app; "
        "print(sorted(m for m in ('httpx', 'sqlalchemy', 'sqlmodel', 'pydantic', 'prefect', "
        "'psutil', 'fastapi') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_case_list_keeps_case_numbers_whole_at_80_columns() -> None:
    items = [
        {
            "number": f"JX-2026-{n:06d}",
            "category": "environment",
            "status": "mediation_failed",
            "unit_code": "D01-S01-C01-P01",
            "resolution_due_at": "2026-12-14T09:00:00+00:00",
            "description": "楼上卫生间漏水，多次协商未果，要求赔偿装修损失并维修管道" * 2,
        }
        for n in (1, 123456)
    ]
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(case_table(items, 2, width=console.width))
    text = console.export_text()
    console.file.close()
    assert "JX-2026-000001" in text and "JX-2026-123456" in text
    assert "D01-S01-C01-P01" in text and "2026-12-14" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_the_worker_log_leaves_out_each_http_request() -> None:
    before = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    try:
        configure_logging()
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)


def test_up_links_follow_the_port_and_the_public_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from models.settings import Settings, reset_settings
    from tiaojie_cli.up import Up

    up = Up(port=8123, prefect_port=4300, demo=False, demo_pace_s=6, max_restarts=1)
    env = up.child_env()
    assert up.public_url == "http://127.0.0.1:8123"
    monkeypatch.setattr(os, "environ", env)
    assert Settings().web_base_url == "http://127.0.0.1:8123"  # what the app and worker link
    monkeypatch.setenv("TIAOJIE_PUBLIC_URL", "https://tiaojie.jiangxin.example")
    reset_settings()
    up = Up(port=8123, prefect_port=4300, demo=False, demo_pace_s=6, max_restarts=1)
    assert up.public_url == "https://tiaojie.jiangxin.example"
    reset_settings()


def test_an_unreachable_api_is_told_with_what_was_tried_and_how_to_start_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from models.settings import reset_settings
    from tiaojie_cli.cases import api_url
    from tiaojie_cli.main import app
    from tiaojie_cli.up import Layout

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("TIAOJIE_HOME", str(tmp_path))
    monkeypatch.delenv("TIAOJIE_API_URL", raising=False)
    reset_settings()
    Layout.under(tmp_path).run.mkdir(parents=True)
    Layout.under(tmp_path).app_url_file.write_text(f"http://127.0.0.1:{port}")
    assert api_url(None) == f"http://127.0.0.1:{port}"  # the running `tiaojie up`'s port
    csv_file = tmp_path / "cases.csv"
    csv_file.write_text("category,description\nlabour,a\nlabour,b\n", encoding="utf-8")
    for args in (["case", "list"], ["case", "import", str(csv_file)]):
        out = CliRunner().invoke(app, [*args, "--token", "t"], terminal_width=200)
        said = out.output.replace("\n", "")  # as read, not as wrapped at 80 columns
        assert out.exit_code == 1, said
        assert f"http://127.0.0.1:{port}" in said and "Traceback" not in said
        assert "无法连接" in said and "cannot reach" in said
        assert "make up" in said and "tiaojie up" in said
        assert said.count("cannot reach") == 1  # the import says it once, not per row
    reset_settings()


def test_every_command_and_option_is_explained_chinese_first_english_beside() -> None:
    import re

    import typer

    from tiaojie_cli.main import app

    chinese, english = re.compile(r"^[\u4e00-\u9fff]"), re.compile(r"[A-Za-z]{3}")

    def unexplained(command: typer.core.TyperGroup, path: str) -> list[str]:
        found = [] if chinese.match(command.help or "") else [path]
        for param in command.params:
            text = getattr(param, "help", None) or ""
            if param.name != "help" and not (chinese.match(text) and english.search(text)):
                found.append(f"{path} {param.name}")
        for name, sub in getattr(command, "commands", {}).items():
            found += unexplained(sub, f"{path} {name}")
        return found

    assert unexplained(typer.main.get_command(app), "tiaojie") == []
