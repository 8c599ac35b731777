"""SQLite's plan for a statement, for the tests that check which index a query reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlmodel import Session


def query_plan(session: Session, query: object) -> str:
    """``EXPLAIN QUERY PLAN`` of ``query`` on the session's SQLite, its steps joined."""
    bind = session.get_bind()
    compiled = query.compile(bind, compile_kwargs={"render_postcompile": True})  # type: ignore[attr-defined]
    processors = compiled._bind_processors  # UTCDateTime stores naive UTC on SQLite
    params = tuple(
        processors[name](compiled.params[name]) if name in processors else compiled.params[name]
        for name in compiled.positiontup
    )
    rows = session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params)
    return " | ".join(str(r[-1]) for r in rows.all())


# ANALYZE of a city of 1,000,000 cases kept over ten years (bench/pages.py), 12,528 open
# (its sqlite_stat1 rows for cases):
# without per-value statistics SQLite takes is_open = 1 for half of the cases.
MILLION_CASES_STATS = {
    "ix_case_place_open": "1000000 12500 6250",
    "ix_case_open_path": "1000000 500000 6250 2500 79",
    "ix_cases_unit_path": "1000000 12500",
    "ix_cases_unit_id": "1000000 12500",
    "ix_cases_respondent_key": "1000000 1000000",
    "ix_cases_referred_from_path": "1000000 1000000",
    "ix_cases_number": "1000000 1",
    "ix_cases_created_at": "1000000 1",
    "ix_cases_confidential": "1000000 1000000",
    "ix_cases_cluster_key": "1000000 1000000",
    "ix_cases_closed_at": "1000000 1",
    "ix_cases_category": "1000000 125000",
    "ix_case_status_created": "1000000 200000 1",
    "ix_case_status_category_created": "1000000 200000 25000 1",
    "ix_case_open_response": "1000000 500000 1 1 1",
    "ix_case_open_reminder": "1000000 500000 500000 200000",
    "ix_case_open_due": "1000000 500000 1 1",
    "ix_case_open_created": "1000000 500000 1",
    "ix_case_creator_open": "1000000 12500 6250",
    "ix_case_assignee_open": "1000000 12500 6250",
    # Partial: the open cases with a limit running.
    "ix_case_deadline": "12528 1",
    "ix_case_path_deadline": "12528 157 1 1",
}


def pretend_a_million_cases(session: Session) -> None:
    """Give the planner the statistics of the million-case city for ``cases``."""
    conn = session.connection()
    conn.exec_driver_sql("ANALYZE")
    conn.exec_driver_sql("DELETE FROM sqlite_stat1")
    for index, stat in MILLION_CASES_STATS.items():
        conn.exec_driver_sql(
            "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('cases', ?, ?)", (index, stat)
        )
    conn.exec_driver_sql("ANALYZE sqlite_schema")  # the planner reads the figures again


def plans_while(session: Session, run: Callable[[], object]) -> list[tuple[str, str]]:
    """(statement, plan) of every SELECT that ``run()`` sends through the session's
    SQLite: the plans of a whole page or report, as it builds its statements."""
    engine = session.get_bind()
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    conn = session.connection()
    return [
        (
            statement,
            " | ".join(
                str(r[-1])
                for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            ),
        )
        for statement, params in sent
    ]
