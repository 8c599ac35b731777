"""Back up a running installation, stop, restore into a fresh TIAOJIE_HOME: every case is
there, the audit passes, the keys were not copied (and with them put back, parties read
again); a running system, a damaged backup or a database with cases is never overwritten."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from models import clock, keys, pii
from models.db import get_engine, reset_engines
from models.demo import FIRST_BATCH
from models.party import Party
from models.settings import reset_settings
from tiaojie_cli.main import app

runner = CliRunner()


def _use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("TIAOJIE_HOME", str(home))
    reset_settings()
    reset_engines()
    keys.forget_cached_keys()


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    for name in ("TIAOJIE_FIELD_KEY", "TIAOJIE_LOOKUP_KEY", "TIAOJIE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path / "old", tmp_path / "new"
    reset_engines()
    keys.forget_cached_keys()


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # as read, not as wrapped at 80 columns


def test_backup_stop_restore_into_a_fresh_home(
    homes: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    vclock: clock.VirtualClock,
) -> None:
    old, new = homes
    _use_home(monkeypatch, old)
    _ok("init", "--demo")
    reader = sqlite3.connect(old / "tiaojie.db")  # the system is running: a reader is open
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM cases").fetchone()
    out = _ok("backup", str(tmp_path / "bk"))
    reader.close()
    assert f"{FIRST_BATCH} cases" in out and "NOT in this backup" in out
    assert sorted(p.name for p in (tmp_path / "bk").iterdir()) == ["manifest.json", "tiaojie.db"]
    assert (tmp_path / "bk").stat().st_mode & 0o077 == 0

    _use_home(monkeypatch, new)
    restored = _ok("restore", str(tmp_path / "bk"))
    assert f"restored 已恢复: {FIRST_BATCH} cases" in restored and "intact" in restored
    assert "intact" in _ok("audit", "verify")
    again = runner.invoke(app, ["restore", str(tmp_path / "bk")])
    assert again.exit_code == 1 and "--overwrite" in again.output

    # The keys stayed behind; put back where the reminder says, the parties read again.
    assert not (new / "keys").exists()
    shutil.copytree(old / "keys", new / "keys")
    keys.forget_cached_keys()
    with Session(get_engine()) as session:
        party = session.exec(select(Party).where(Party.phone_enc.is_not(None))).first()  # type: ignore[union-attr]
        assert party is not None and party.phone_enc is not None
        assert pii.mask_phone(pii.decrypt(party.phone_enc)) == party.phone_masked


def test_restore_refuses_a_running_system_and_a_damaged_backup(
    homes: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    vclock: clock.VirtualClock,
) -> None:
    old, new = homes
    _use_home(monkeypatch, old)
    _ok("init")
    _ok("backup", str(tmp_path / "bk"))
    _use_home(monkeypatch, new)
    (new / "run").mkdir(parents=True)
    up = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (new / "run" / "up.pid").write_text(str(up.pid))
        busy = runner.invoke(app, ["restore", str(tmp_path / "bk")])
        assert busy.exit_code == 1 and "running" in busy.output
    finally:
        up.kill()
        up.wait()
    data = (tmp_path / "bk" / "tiaojie.db").read_bytes()
    (tmp_path / "bk" / "tiaojie.db").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    damaged = runner.invoke(app, ["restore", str(tmp_path / "bk")])
    assert damaged.exit_code == 1 and "SHA-256" in damaged.output
    untouched = sqlite3.connect(new / "tiaojie.db")  # nothing was put in place
    assert untouched.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    untouched.close()
