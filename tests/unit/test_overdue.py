"""The one overdue rule: the predicate and the SQL clause agree on a case in every status,
with every deadline just before, at and just after the moment asked about."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import event, text
from sqlmodel import Session, col, select

from models import overdue
from models.case import Case
from models.db import build_engine
from models.enums import CaseStatus, Category, FollowUpKind
from models.follow_up import FollowUp
from models.migrate import alembic_config
from tests.conftest import T0

NOW = T0 + timedelta(days=3)
TICK = timedelta(seconds=1)
OFFSETS = (-TICK, timedelta(0), TICK)  # deadline just before, exactly at, just after now


def _case(session: Session, n: int, status: CaseStatus, **times: datetime | None) -> Case:
    row = Case(
        number=f"T{n:05d}",
        category=Category.NEIGHBOUR,
        description="相邻权纠纷",
        status=status,
        is_open=status.is_open,
        created_at=T0,
        updated_at=T0,
        **times,
    )
    session.add(row)
    return row


def _variants() -> list[tuple[CaseStatus, dict[str, datetime | None], timedelta | None]]:
    """Every status x which deadlines are set x where they fall around NOW x first
    contact made or not x a return visit open or not."""
    out: list[tuple[CaseStatus, dict[str, datetime | None], timedelta | None]] = []
    moments: list[timedelta | None] = [None, *OFFSETS]
    for status in CaseStatus:
        for resp, resol, med, visit in itertools.product(moments, moments, moments, moments):
            for contacted in (False, True):
                times = {
                    "response_due_at": None if resp is None else NOW + resp,
                    "resolution_due_at": None if resol is None else NOW + resol,
                    "mediation_due_at": None if med is None else NOW + med,
                    "first_response_at": T0 if contacted else None,
                }
                out.append((status, times, visit))
    return out


def test_predicate_and_clause_agree_in_every_status_at_the_boundary(session: Session) -> None:
    made = [
        (_case(session, n, status, **times), visit)
        for n, (status, times, visit) in enumerate(_variants())
    ]
    session.flush()
    cases: dict[int, tuple[Case, datetime | None]] = {}
    for row, visit in made:
        assert row.id is not None
        due = None
        if visit is not None:
            due = NOW + visit
            session.add(FollowUp(case_id=row.id, kind=FollowUpKind.AFTER_CLOSURE, due_at=due))
            # A visit already done never counts, however early it was due.
            session.add(
                FollowUp(
                    case_id=row.id,
                    kind=FollowUpKind.AFTER_CLOSURE,
                    due_at=T0,
                    done_at=T0,
                )
            )
        cases[row.id] = (row, due)
    session.flush()

    in_sql = set(session.exec(select(Case.id).where(overdue.overdue_clause(NOW))).all())
    on_time = set(session.exec(select(Case.id).where(~overdue.overdue_clause(NOW))).all())
    assert in_sql | on_time == set(cases), "the clause is never NULL"
    visits = overdue.next_visits(session, cases)
    in_python = {
        cid
        for cid, (row, _) in cases.items()
        if overdue.is_overdue(row, now=NOW, next_visit=visits.get(cid))
    }
    assert in_python == in_sql
    # The deadline expression itself agrees with the predicate's deadline.
    rows = session.exec(select(col(Case.id), overdue.deadline_column())).all()
    for cid, due in rows:
        row, _ = cases[cid]
        assert due == overdue.deadline_of(row, next_visit=visits.get(cid)), row.status


@pytest.mark.parametrize(
    ("status", "times", "visit", "late"),
    [
        # A second before the deadline is on time; at the deadline it is overdue.
        (CaseStatus.ASSIGNED, {"resolution_due_at": NOW + TICK}, None, False),
        (CaseStatus.ASSIGNED, {"resolution_due_at": NOW}, None, True),
        # Before first contact the response limit counts; after it, the resolution limit.
        (
            CaseStatus.TRIAGED,
            {"response_due_at": NOW - TICK, "resolution_due_at": NOW + TICK},
            None,
            True,
        ),
        (
            CaseStatus.TRIAGED,
            {
                "response_due_at": NOW - TICK,
                "resolution_due_at": NOW + TICK,
                "first_response_at": T0,
            },
            None,
            False,
        ),
        # In mediation the mediation limit counts, not the (earlier) resolution limit.
        (
            CaseStatus.IN_MEDIATION,
            {"resolution_due_at": NOW - TICK, "mediation_due_at": NOW + TICK},
            None,
            False,
        ),
        (CaseStatus.IN_MEDIATION, {"mediation_due_at": NOW - TICK}, None, True),
        # In follow-up the return visit counts, not the long-passed resolution limit.
        (CaseStatus.FOLLOW_UP, {"resolution_due_at": NOW - timedelta(days=30)}, None, False),
        (CaseStatus.FOLLOW_UP, {"resolution_due_at": NOW + TICK}, -TICK, True),
        # Settled at its level, waiting for triage, or finished: never overdue.
        (CaseStatus.AGREEMENT, {"resolution_due_at": NOW - TICK}, None, False),
        (CaseStatus.REOPENED, {"resolution_due_at": NOW - TICK}, None, False),
        (CaseStatus.CLOSED, {"resolution_due_at": NOW - TICK}, -TICK, False),
    ],
)
def test_the_rule_case_by_case(
    session: Session,
    status: CaseStatus,
    times: dict[str, datetime],
    visit: timedelta | None,
    late: bool,
) -> None:
    row = _case(session, 1, status, **times)
    session.flush()
    assert row.id is not None
    if visit is not None:
        session.add(FollowUp(case_id=row.id, kind=FollowUpKind.AFTER_CLOSURE, due_at=NOW + visit))
        session.flush()
    next_visit = overdue.next_visits(session, [row.id]).get(row.id)
    assert overdue.is_overdue(row, now=NOW, next_visit=next_visit) is late
    found = session.exec(select(Case.id).where(overdue.overdue_clause(NOW))).all()
    assert (row.id in found) is late


# --- the kept deadline ---------------------------------------------------------------------


def _kept(session: Session, row: Case) -> datetime | None:
    assert row.id is not None
    return session.exec(select(col(Case.deadline_at)).where(col(Case.id) == row.id)).one()


def _late(session: Session, row: Case) -> bool:
    found = session.exec(select(Case.id).where(overdue.overdue_clause(NOW))).all()
    return row.id in found


def test_the_kept_deadline_follows_each_change_that_moves_it(session: Session) -> None:
    """What a supervisor sees: the case is overdue while its limit is missed and stops
    being overdue as soon as the thing owed is done, whichever record changed."""
    row = _case(
        session,
        1,
        CaseStatus.ASSIGNED,
        response_due_at=NOW - TICK,
        resolution_due_at=NOW + timedelta(days=5),
    )
    session.flush()
    assert _kept(session, row) == NOW - TICK and _late(session, row)
    # First contact made: the resolution limit counts.
    row.first_response_at = NOW - 2 * TICK
    session.flush()
    assert _kept(session, row) == NOW + timedelta(days=5) and not _late(session, row)
    assert row.deadline_at == NOW + timedelta(days=5), "a loaded case reads the new one"
    # Settled: the return visit counts, a record of its own.
    row.status = CaseStatus.FOLLOW_UP
    session.flush()
    assert _kept(session, row) is None
    assert row.id is not None
    visit = FollowUp(case_id=row.id, kind=FollowUpKind.AFTER_CLOSURE, due_at=NOW - TICK)
    session.add(visit)
    session.flush()
    assert _kept(session, row) == NOW - TICK and _late(session, row)
    visit.done_at = NOW
    session.flush()
    assert _kept(session, row) is None and not _late(session, row)
    # Closed: no limit runs.
    row.status, row.is_open = CaseStatus.CLOSED, False
    session.flush()
    assert _kept(session, row) is None


def test_a_change_to_another_field_leaves_the_deadline_alone(session: Session) -> None:
    """Only what the deadline is made of rewrites it: no statement for a note."""
    row = _case(session, 1, CaseStatus.ASSIGNED, resolution_due_at=NOW)
    session.flush()
    updates: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "deadline_at=" in statement.replace(" ", ""):
            updates.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        row.outcome_note = "已电话联系"
        session.flush()
        assert updates == []
        row.resolution_due_at = NOW + TICK
        session.flush()
        assert len(updates) == 1
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_the_migration_fills_the_deadline_of_the_cases_already_there(tmp_path: Path) -> None:
    """A database from before the kept deadline shows the same overdue cases after it."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0006")
    due = "2026-12-03 00:59:59.000000"
    engine = build_engine(url)
    try:
        with engine.begin() as conn:  # cases as written before the column existed
            for n, status, is_open in (
                (1, "assigned", 1),
                (2, "follow_up", 1),
                (3, "closed", 0),
            ):
                conn.execute(
                    text(
                        "INSERT INTO cases (id, number, category, priority, channel,"
                        " description, people_affected, status, is_open, version, last_hash,"
                        " category_locked, priority_locked, held_for_assessment, helper_ids,"
                        " escalation_level, is_group, confidential, resolution_due_at,"
                        " created_at, updated_at) VALUES (:n, :number, 'neighbour', 'normal',"
                        " 'walk_in', '相邻权纠纷', 1, :status, :is_open, 1, '', 0, 0, 0, '[]',"
                        " 0, 0, 0, :due, :t0, :t0)"
                    ),
                    {
                        "n": n,
                        "number": f"T{n:05d}",
                        "status": status,
                        "is_open": is_open,
                        "due": due,
                        "t0": "2026-11-30 01:00:00.000000",
                    },
                )
            conn.execute(
                text(
                    "INSERT INTO follow_up (case_id, kind, due_at, unit_at_fault, independent)"
                    " VALUES (2, 'after_closure', :due, 0, 0)"
                ),
                {"due": due},
            )
        command.upgrade(config, "head")
        with engine.connect() as conn:
            kept = dict(conn.execute(text("SELECT number, deadline_at FROM cases")).all())
        assert kept == {"T00001": due, "T00002": due, "T00003": None}
    finally:
        engine.dispose()
