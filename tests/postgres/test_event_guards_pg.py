"""On PostgreSQL, the 0002 migration's triggers refuse UPDATE, DELETE and TRUNCATE of
case events; appending (the state machine's only write) still works."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from models import lifecycle
from models.audit import verify_all
from tests.factories import build_city, make_case

pytestmark = pytest.mark.postgres


def test_case_events_are_append_only_on_postgres(engine: Engine, vclock: object) -> None:
    with Session(engine) as session:
        city = build_city(session)
        case = make_case(session)
        case.unit_id = city.unit("CMA").id
        case.resolution_due_at = vclock.now()  # type: ignore[attr-defined]
        lifecycle.apply(session, case=case, verb="triaged", actor=lifecycle.Actor.system())
        session.commit()
        case_id = case.id
    for statement in (
        "UPDATE case_event SET actor = 'staff:1' WHERE case_id = :id",
        "DELETE FROM case_event WHERE case_id = :id",
        "TRUNCATE case_event CASCADE",
    ):
        with pytest.raises(IntegrityError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement), {"id": case_id})
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM case_event WHERE case_id = :id"), {"id": case_id}
        )
        assert count.scalar() == 2
    with Session(engine) as session:
        assert verify_all(session) == []
