"""The migrations build exactly the tables of the models; case events are append-only
in the database itself; ``tiaojie audit verify`` finds an edited event at its seq; and
``tiaojie --help`` lists every subcommand."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session
from typer.testing import CliRunner

from models.audit import verify_all
from models.case_text import FTS_TABLE_PREFIX
from models.db import build_engine, reset_engines
from models.migrate import upgrade
from models.settings import reset_settings
from models.tables import metadata
from tests.factories import build_city, make_case
from tiaojie_cli.main import app


@pytest.fixture
def migrated(tmp_path: Path) -> Iterator[Engine]:
    engine = build_engine(f"sqlite:///{tmp_path / 'schema.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def test_migrations_produce_exactly_the_model_tables(migrated: Engine) -> None:
    with migrated.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    # The full-text index's tables are FTS5's own, not the metadata's (models.case_text).
    assert [d for d in differences if not _fts_table(d)] == []
    tables = set(inspect(migrated).get_table_names()) - {"alembic_version"}
    assert {t for t in tables if not t.startswith(FTS_TABLE_PREFIX)} == set(metadata.tables)
    assert f"{FTS_TABLE_PREFIX}" in tables
    with migrated.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0007"


def _fts_table(difference: object) -> bool:
    return (
        isinstance(difference, tuple)
        and difference[0] == "remove_table"
        and str(difference[1].name).startswith(FTS_TABLE_PREFIX)
    )


def test_upgrade_is_idempotent(migrated: Engine) -> None:
    upgrade(migrated)
    upgrade(migrated)
    with migrated.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM sqlite_master WHERE type='trigger'"))
        assert count.scalar() == 5  # case events append-only (2), search index (3)


def _one_case(engine: Engine) -> int:
    with Session(engine) as session:
        build_city(session)
        case = make_case(session)
        session.commit()
        assert case.id is not None
        return case.id


def test_case_events_cannot_be_updated_or_deleted(migrated: Engine, vclock: object) -> None:
    case_id = _one_case(migrated)
    for statement in (
        "UPDATE case_event SET actor = 'staff:1' WHERE case_id = :id",
        "DELETE FROM case_event WHERE case_id = :id",
    ):
        with (
            pytest.raises((IntegrityError, OperationalError), match="append-only"),
            migrated.begin() as conn,
        ):
            conn.execute(text(statement), {"id": case_id})
    with migrated.connect() as conn:
        rows = conn.execute(
            text("SELECT actor FROM case_event WHERE case_id = :id"), {"id": case_id}
        )
        assert [r[0] for r in rows] == ["system"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TIAOJIE_HOME", str(tmp_path))
    reset_settings()
    reset_engines()
    yield tmp_path
    reset_engines()


def test_audit_verify_finds_a_tampered_event_at_its_seq(home: Path, vclock: object) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    engine = build_engine(f"sqlite:///{home / 'tiaojie.db'}")
    try:
        with Session(engine) as session:
            build_city(session)
            cases = [make_case(session) for _ in range(3)]
            session.commit()
            numbers = [c.number for c in cases]
            target = cases[1].id
        clean = runner.invoke(app, ["audit", "verify"])
        assert clean.exit_code == 0, clean.output
        assert "OK" in clean.output

        # Someone with file access rewrites history: drop the guard, edit one event.
        con = sqlite3.connect(home / "tiaojie.db")
        con.execute("DROP TRIGGER case_event_no_update")
        con.execute(
            "UPDATE case_event SET actor = 'staff:99' WHERE case_id = ? AND seq = 1", (target,)
        )
        con.commit()
        con.close()

        with Session(engine) as session:
            problems = verify_all(session)
        assert [(p.case_id, p.seq, p.reason) for p in problems] == [(target, 1, "content edited")]
        found = runner.invoke(app, ["audit", "verify"])
        assert found.exit_code == 1
        assert f"case {numbers[1]} seq 1" in found.output
        assert "content edited" in found.output and "事件内容被修改" in found.output
        assert numbers[0] not in found.output and numbers[2] not in found.output
    finally:
        engine.dispose()


def test_help_lists_the_subcommands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "up", "audit"):
        assert command in result.output
    audit = CliRunner().invoke(app, ["audit", "--help"])
    assert audit.exit_code == 0 and "verify" in audit.output
