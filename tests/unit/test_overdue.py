"""The one overdue rule: the predicate and the SQL clause agree on a case in every status,
with every deadline just before, at and just after the moment asked about."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from models import overdue
from models.case import Case
from models.enums import CaseStatus, Category, FollowUpKind
from models.follow_up import FollowUp
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
