"""Backup and restore on PostgreSQL: pg_dump of a live database, pg_restore into an empty
one, every case and event there and every chain intact; a restore refuses while other
sessions are connected."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from models import clock
from models.backup import backup as make_backup
from models.backup import check, counts, other_connections, restore
from models.db import build_engine, write_session
from models.demo import FIRST_BATCH, load_demo_city
from models.migrate import upgrade
from tests.postgres.conftest import drop_database, new_database

pytestmark = pytest.mark.postgres


def test_pg_dump_and_restore_keep_every_case_and_chain(
    engine: Engine,
    pg_admin: Engine,
    pg_server_url: str,
    tmp_path: Path,
    vclock: clock.VirtualClock,
) -> None:
    with write_session(engine) as session:
        load_demo_city(session)
    manifest = make_backup(engine, tmp_path / "bk")
    assert manifest["kind"] == "postgresql" and manifest["cases"] == FIRST_BATCH
    target_url = new_database(pg_admin, pg_server_url, prefix="restore")
    target = build_engine(target_url)
    try:
        restore(target, tmp_path / "bk")
        upgrade(target)
        result = check(target)
        assert result.ok and result.counts == counts(engine)
        assert result.counts.cases == FIRST_BATCH
        other = build_engine(target_url)
        with other.connect():
            assert other_connections(target) >= 1
        other.dispose()
    finally:
        target.dispose()
        drop_database(pg_admin, target_url)
