"""`tiaojie keys rotate`: every protected field re-encrypted under a new key while the
system runs; a rotation killed with SIGKILL and run again leaves every party readable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from models import keys, pii
from models.db import build_engine, write_session
from models.migrate import upgrade
from models.rotation import count_not_current, encrypted_columns, rotate_field_key
from models.settings import reset_settings
from tests.factories import build_city, case_data

ROOT = Path(__file__).resolve().parents[2]
PARTIES = 400


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    home = tmp_path / "home"
    monkeypatch.setenv("TIAOJIE_HOME", str(home))
    monkeypatch.delenv("TIAOJIE_SECRET_KEY", raising=False)
    monkeypatch.delenv("TIAOJIE_DATABASE_URL", raising=False)
    monkeypatch.setattr(keys, "RELOAD_EVERY_S", 0.05)
    reset_settings()
    keys.forget_cached_keys()
    keys.init_keys()
    engine = build_engine(f"sqlite:///{home / 'tiaojie.db'}")
    upgrade(engine)
    with write_session(engine) as session:
        build_city(session)
    yield engine
    engine.dispose()
    keys.forget_cached_keys()


def _fill(engine: Engine, cases: int) -> None:
    from models.cases import create_case
    from models.lifecycle import Actor

    with write_session(engine) as session:
        for _ in range(cases):
            create_case(session, data=case_data(), actor=Actor.system())


def _clear_values(engine: Engine) -> list[str]:
    """Every encrypted value of the database, decrypted (in a stable order)."""
    keys.forget_cached_keys()
    values: list[str] = []
    with engine.connect() as conn:
        for table, column in encrypted_columns():
            stmt = select(column).where(column.is_not(None)).order_by(table.c.id)
            values += [pii.decrypt(v) for v in conn.execute(stmt).scalars()]
    assert pii.UNDECRYPTABLE not in values
    return values


def test_rotation_reencrypts_everything_and_keeps_old_keys_until_retired(
    installed: Engine,
) -> None:
    _fill(installed, 20)
    before = _clear_values(installed)
    first = keys.keyring().current
    report = rotate_field_key(installed, batch=7)
    assert report.key_id != first and report.remaining == 0 and report.undecryptable == 0
    assert report.reencrypted == len(before)
    assert first in report.kept
    assert _clear_values(installed) == before
    assert count_not_current(installed, report.key_id) == 0
    retired = rotate_field_key(installed, retire=True)
    assert retired.kept == [] and set(keys.read_keyring_text()) == {retired.key_id}
    assert _clear_values(installed) == before


def test_a_rotation_killed_midway_and_run_again_leaves_every_party_readable(
    installed: Engine,
) -> None:
    _fill(installed, PARTIES // 2)
    before = _clear_values(installed)
    old = keys.keyring().current
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "tiaojie_cli.main", "keys", "rotate", "--batch", "2"]
    proc = subprocess.Popen(
        [*argv, "--pause", "0.02"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            keys.forget_cached_keys()
            current = keys.keyring().current
            if current != old and 0 < count_not_current(installed, current) < len(before):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the rotation never got going")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    new = keys.keyring().current
    assert 0 < count_not_current(installed, new) < len(before)  # killed half-way
    assert _clear_values(installed) == before  # every value still readable

    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    keys.forget_cached_keys()
    assert keys.keyring().current == new  # carried on; no third key
    assert count_not_current(installed, new) == 0
    assert _clear_values(installed) == before
