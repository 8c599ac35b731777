"""The monthly report flow: the .xlsx kept under TIAOJIE_HOME/reports and a link artifact
to the page that serves it; a malformed month is refused."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from prefect.client.orchestration import get_client

from flows.monthly_report import monthly_report
from models.db import write_session
from models.errors import ValidationError
from models.settings import reset_settings
from tests.factories import City, make_case
from tests.flows.conftest import LoopRunner

pytestmark = pytest.mark.prefect


def test_the_monthly_report_is_kept_and_linked(
    city: City, aloop: LoopRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIAOJIE_HOME", str(tmp_path / "home"))
    reset_settings()
    with write_session() as session:
        make_case(session)
    name = aloop.run(monthly_report(month="2026-11"))
    kept = tmp_path / "home" / "reports" / name
    assert name == "monthly-2026-11.xlsx" and kept.stat().st_mode & 0o077 == 0
    book = openpyxl.load_workbook(io.BytesIO(kept.read_bytes()), read_only=True)
    assert [ws.title[:2] for ws in book.worksheets] == [
        "月报",
        "社区",
        "街道",
        "结对",
        "逾期",
        "提级",
        "突出",
        "每月",
    ]
    book.close()

    async def links() -> list[Any]:
        async with get_client() as client:
            return await client.read_latest_artifacts(limit=50)

    found = [a for a in aloop.run(links()) if a.key == "tiaojie-monthly-report"]
    assert found and "/web/reports/monthly/2026-11.xlsx" in str(found[0].data)
    with pytest.raises(ValidationError, match="YYYY-MM"):
        aloop.run(monthly_report(month="November"))
