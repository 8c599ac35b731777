"""SQLite's plan for a statement, for the tests that check which index a query reads."""

from __future__ import annotations

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
