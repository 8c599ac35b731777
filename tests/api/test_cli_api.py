"""The ``tiaojie`` command against the real app served by uvicorn on a free local port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from models.case import Case
from models.settings import reset_settings
from tests.api.conftest import Api
from tiaojie_cli.main import app as cli

runner = CliRunner()


@pytest.fixture
def served(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    monkeypatch.setenv("TIAOJIE_DATABASE_URL", str(api.engine.url))
    monkeypatch.setenv("TIAOJIE_API_URL", f"http://127.0.0.1:{port}")
    reset_settings()
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def token_for(role: str, unit: str | None = None) -> str:
    args = ["token", "create", "--role", role] + (["--unit", unit] if unit else [])
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def test_token_submit_list_show(served: str, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIAOJIE_TOKEN", token_for("community_worker", "CMA"))
    result = runner.invoke(
        cli,
        [
            "case",
            "submit",
            "--category",
            "environment",
            "--description",
            "饭店油烟扰民",
            "--place",
            "BA1",
            "--complainant",
            "王小明",
            "--phone",
            "13800138000",
            "--respondent",
            "某饭店",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "已登记 recorded JX-" in result.output
    number = result.output.split("recorded ")[1].split()[0]
    listed = runner.invoke(cli, ["case", "list", "--json"])
    assert listed.exit_code == 0 and number in listed.output
    shown = runner.invoke(cli, ["case", "show", number])
    assert shown.exit_code == 0, shown.output
    assert number in shown.output and "13800138000" in shown.output  # who typed it sees it
    monkeypatch.setenv("TIAOJIE_TOKEN", token_for("supervisor", "D1"))
    shown = runner.invoke(cli, ["case", "show", number])
    assert shown.exit_code == 0, shown.output
    assert (
        number in shown.output
        and "138****8000" in shown.output
        and "13800138000" not in shown.output
    )
    monkeypatch.setenv("TIAOJIE_TOKEN", token_for("community_worker", "CMA"))

    # Errors are readable in both languages and exit non-zero.
    bad = runner.invoke(
        cli,
        [
            "case",
            "submit",
            "--category",
            "environment",
            "--description",
            "噪声",
            "--complainant",
            "张三",
            "--phone",
            "12",
        ],
    )
    assert bad.exit_code == 1
    assert "parties.0.phone" in bad.output and "手机" in bad.output
    missing = runner.invoke(cli, ["case", "show", "JX-1999-000001"])
    assert missing.exit_code == 1 and "不存在" in missing.output


def test_token_create_roles(served: str) -> None:
    assert token_for("admin").count(".") == 2
    assert token_for("open311").count(".") == 2
    result = runner.invoke(cli, ["token", "create", "--role", "mediator"])
    assert result.exit_code == 2
    result = runner.invoke(cli, ["token", "create", "--role", "wizard", "--unit", "CMA"])
    assert result.exit_code == 2


def test_import_reports_bad_rows_and_never_doubles(
    served: str, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIAOJIE_TOKEN", token_for("community_worker", "CMA"))
    csv_file = tmp_path / "cases.csv"
    csv_file.write_text(
        "category,description,place_code,people_affected,complainant_name,complainant_phone,complainant_id_number,respondent_name\n"
        "labour,电子厂拖欠工资,BA1,20,王小明,13800138000,11010519491231002X,恒达电子厂\n"
        "environment,工地夜间施工噪声,BA2,3,李四,,,某建筑工地\n"
        "labour,身份证校验位错误,BA1,1,张三,,110105194912310021,\n"
        "alien,未知类别,BA1,1,,,,\n"
        "neighbour,楼上漏水,CPA,1,,,,\n",
        encoding="utf-8",
    )
    first = runner.invoke(cli, ["case", "import", str(csv_file)])
    assert first.exit_code == 1
    assert "第 4 行 line 4" in first.output and "id_number" in first.output
    assert "第 5 行 line 5" in first.output and "category" in first.output
    assert "created 3" in first.output
    assert api.count(Case) == 3
    again = runner.invoke(cli, ["case", "import", str(csv_file)])
    assert "created 0" in again.output and "already imported 3" in again.output
    assert api.count(Case) == 3


def test_unreachable_api_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = runner.invoke(
        cli, ["case", "list", "--api", f"http://127.0.0.1:{port}", "--token", "x"]
    )
    assert result.exit_code == 1
    assert "无法连接" in result.output and "tiaojie up" in result.output.replace("\n", "")
