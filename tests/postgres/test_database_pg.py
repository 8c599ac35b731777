"""The case database on PostgreSQL: the migration builds exactly the tables, and the
guarantees the embedded SQLite mode gives (one number per case, optimistic versions,
hash-chained events) hold under concurrent writers on PostgreSQL too."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, inspect
from sqlmodel import Session, select

from models import lifecycle
from models.case import Case
from models.case_text import PG_WORDS_INDEX
from models.db import write_session
from models.errors import ConflictError
from models.event import CaseEvent, Outbox
from models.lifecycle import Actor, verify_chain
from models.migrate import upgrade
from models.tables import metadata
from tests.factories import build_city, make_case

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def test_migration_builds_exactly_the_tables(engine: Engine) -> None:
    assert engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diffs if not _words_index(d)] == []
    upgrade(engine)  # a second run changes nothing and does not fail
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diffs if not _words_index(d)] == []
    assert PG_WORDS_INDEX in {i["name"] for i in inspect(engine).get_indexes("case_search")}


def _words_index(difference: object) -> bool:
    """The search words' GIN index is made by migration 0003, not declared in the metadata
    (models.case_text)."""
    return (
        isinstance(difference, tuple)
        and difference[0] == "remove_index"
        and difference[1].name == PG_WORDS_INDEX
    )


def test_datetimes_come_back_aware_utc(engine: Engine, vclock: object) -> None:
    with write_session(engine) as s:
        build_city(s)
        case = make_case(s, at=T0)
    with Session(engine) as s:
        stored = s.get(Case, case.id)
        assert stored is not None
        assert stored.created_at == T0
        assert stored.created_at.tzinfo is not None


def test_concurrent_intake_gives_unique_numbers(engine: Engine, vclock: object) -> None:
    with write_session(engine) as s:
        build_city(s)
        make_case(s)  # the year's counter row exists from here on
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            for _ in range(5):
                with write_session(engine) as s:
                    make_case(s)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Session(engine) as s:
        numbers = s.exec(select(Case.number)).all()
        assert len(numbers) == 41
        assert len(set(numbers)) == 41
        assert s.exec(select(func.count()).select_from(Outbox)).one() == 41


def test_first_cases_of_the_year_at_once_get_unique_numbers(engine: Engine, vclock: object) -> None:
    with write_session(engine) as s:
        build_city(s)  # no case yet: no counter row for the year
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            barrier.wait()
            with write_session(engine) as s:
                make_case(s)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Session(engine) as s:
        numbers = sorted(s.exec(select(Case.number)).all())
    assert [n[-6:] for n in numbers] == [f"{i:06d}" for i in range(1, 7)]


def test_stale_writer_gets_a_conflict_and_changes_nothing(engine: Engine, vclock: object) -> None:
    with write_session(engine) as s:
        build_city(s)
        case = make_case(s)
    case_id = case.id
    assert case_id is not None

    # Two writers read the same version; the first moves the case, the second must get
    # the domain's ConflictError and change nothing.
    with pytest.raises(ConflictError), write_session(engine) as s:
        stale = s.get(Case, case_id)
        assert stale is not None
        version_read = stale.version
        with write_session(engine) as other:
            fresh = other.get(Case, case_id)
            assert fresh is not None
            lifecycle.apply(
                other,
                case=fresh,
                verb="duplicate_linked",
                actor=Actor.system(),
                data={"other_case_id": case_id},
            )
        # The UPDATE is checked against the version read: PostgreSQL finds no such row.
        lifecycle.apply(
            s,
            case=stale,
            verb="duplicate_linked",
            actor=Actor.system(),
            expected_version=version_read,
            data={"other_case_id": case_id},
        )
    with Session(engine) as s:
        final = s.get(Case, case_id)
        assert final is not None
        assert final.version == 2
        assert s.exec(select(func.count()).select_from(CaseEvent)).one() == 2
        assert verify_chain(s, case_id=case_id) == []


def test_the_app_engine_asks_postgresql_without_jit(engine: Engine) -> None:
    """A page's query must not wait for PostgreSQL to JIT-compile it: at a million cases
    the inbox's query ran in 26 ms after 116 ms of compiling (see models.db)."""
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar() == "off"
