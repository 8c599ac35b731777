"""Reads kept on the session (models.session_cache): routing's directory of units,
handlers, pairings and time limits is read once for a batch, and a change made after it
was kept is seen by the next reader — in the same session, or after the transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import delete, event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models import session_cache
from models.enums import Category, Priority, StaffRole, UnitLevel
from models.policy import TimeLimitPolicy
from models.routing import Directory
from models.staff import Staff
from models.unit import Unit
from tests.factories import City, add_staff, build_city


@pytest.fixture
def city(session: Session) -> City:
    return build_city(session)


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    assert isinstance(bind, Engine)
    return bind


def _labour_limit(directory: Directory) -> int:
    policy = directory.policy(
        category=Category.LABOUR, priority=Priority.NORMAL, level=UnitLevel.COMMUNITY
    )
    return policy.resolution_value


def test_a_batch_reads_the_directory_once(session: Session) -> None:
    city = build_city(session)
    first = Directory.load_branch(session, city.units["BA1"])
    with counted(_engine(session)) as seen:
        again = Directory.load_branch(session, city.units["BA1"])
        unit = again.handling_unit_for(city.units["BA1"], Category.NEIGHBOUR)
    assert again is first
    assert unit.code == "CPA"  # the grid worker of the compound
    assert seen == []  # the same branch: nothing read again
    # Another branch is read on top (its own units, staff, pairings), not the rest.
    with counted(_engine(session)) as seen:
        other = Directory.load_branch(session, city.units["BB1"])
    assert other.handling_unit_for(city.units["BB1"], Category.NEIGHBOUR).code == "CPB"
    assert seen and not any("time_limit_policy" in s for s in seen)


def test_new_staff_after_the_directory_was_kept_is_seen(session: Session, city: City) -> None:
    place = city.units["BA1"]
    before = Directory.load_branch(session, place).able(city.units["CPA"], Category.LABOUR)
    add_staff(session, city, "labour_grid", StaffRole.GRID_WORKER, "CPA", [Category.LABOUR])
    after = Directory.load_branch(session, place).able(city.units["CPA"], Category.LABOUR)
    assert len(after) == len(before) + 1
    assert "labour_grid" in {s.username for s in after}


def test_a_policy_change_after_the_directory_was_kept_is_seen(session: Session, city: City) -> None:
    place = city.units["BA1"]
    limit = _labour_limit(Directory.load_branch(session, place))
    # A new, more specific limit, not flushed yet: the next reader still sees it.
    session.add(TimeLimitPolicy(name="labour", category=Category.LABOUR, resolution_value=30))
    kept = Directory.load_branch(session, place)
    assert _labour_limit(kept) == 30
    assert Directory.load_branch(session, place) is kept
    # Removed by a statement (not through the objects): gone for the next reader too.
    session.exec(delete(TimeLimitPolicy).where(col(TimeLimitPolicy.name) == "labour"))
    assert _labour_limit(Directory.load_branch(session, place)) == limit


def test_new_staff_not_flushed_yet_is_seen(session: Session, city: City) -> None:
    Directory.load_branch(session, city.units["BA1"])
    cpa = city.units["CPA"]
    session.add(
        Staff(
            username="pending",
            display_name="pending",
            role=StaffRole.GRID_WORKER,
            unit_id=cpa.id,
            skills=[Category.LABOUR],
        )
    )
    assert "pending" in {s.username for s in _labour_handlers(session, city)}


def test_a_change_by_another_session_is_seen_in_the_next_transaction(engine: Engine) -> None:
    with Session(engine) as setup:
        city = build_city(setup)
        setup.commit()
        place_id = city.units["BA1"].id
    with Session(engine) as reader, Session(engine) as writer:
        place = reader.get(Unit, place_id)
        assert place is not None
        kept = Directory.load_branch(reader, place)
        assert Directory.load_branch(reader, place) is kept
        reader.commit()  # the transaction ends: what was kept is forgotten
        for staff in writer.exec(select(Staff).where(Staff.username == "gridA")).all():
            staff.active = False
            writer.add(staff)
        writer.commit()
        place = reader.get(Unit, place_id)
        assert place is not None
        fresh = Directory.load_branch(reader, place)
        assert fresh is not kept
        compound = reader.exec(select(Unit).where(Unit.code == "CPA")).one()
        assert fresh.able(compound, Category.NEIGHBOUR) == []


def test_a_rolled_back_change_is_not_kept(session: Session, city: City) -> None:
    place = city.units["BA1"]
    Directory.load_branch(session, place)
    savepoint = session.begin_nested()
    add_staff(session, city, "temp", StaffRole.GRID_WORKER, "CPA", [Category.LABOUR])
    assert "temp" in {s.username for s in _labour_handlers(session, city)}
    savepoint.rollback()
    assert "temp" not in {s.username for s in _labour_handlers(session, city)}


def _labour_handlers(session: Session, city: City) -> list[Staff]:
    return Directory.load_branch(session, city.units["BA1"]).able(
        city.units["CPA"], Category.LABOUR
    )


def test_a_sole_writer_keeps_reads_across_commits_but_not_across_its_writes(
    session: Session, city: City
) -> None:
    session_cache.keep_across_commits(session)
    place = city.units["BA1"]
    kept = Directory.load_branch(session, place)
    session.commit()
    assert Directory.load_branch(session, place) is kept
    add_staff(session, city, "late", StaffRole.GRID_WORKER, "CPA", [Category.LABOUR])
    session.commit()
    assert "late" in {s.username for s in _labour_handlers(session, city)}
