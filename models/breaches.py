"""Limit breaches (超时/超期记录): a durable row each time a case's limit passes.

An escalation moves a case up and gives it a new limit; the breach that caused it must
not vanish with it, or the level where the limit passed looks clean ("overdue by level"
would be 0 everywhere after a sweep) and the unit that let it pass escapes its rates.
So the escalation sweep writes, before it moves anything, one row per limit that has
passed:

* ``response``: the response limit passed before anybody contacted the complainant;
* ``resolution``: the resolution limit passed while the unit handled the case, or the
  mediation limit while in mediation.

Both use the one overdue rule (:mod:`models.overdue`): the same statuses, the same
limits, the same comparison (``deadline <= now``).

Each row names the unit that held the case, its level and the escalation level, and
the limit that passed. A row is written once per (case, kind, limit) and never changed
or deleted by anything that happens to the case later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Index, UniqueConstraint, and_, exists, func, type_coerce
from sqlmodel import Field, Session, SQLModel, col, select

from models import clock
from models.case import Case
from models.enums import BreachKind, CaseStatus, UnitLevel
from models.overdue import HANDLING, past_clause
from models.rows import rows_of
from models.types import UTCDateTime, enum_type
from models.unit import Unit

S = CaseStatus


class LimitBreach(SQLModel, table=True):
    __tablename__ = "limit_breach"
    __table_args__ = (
        UniqueConstraint("case_id", "kind", "due_at"),
        Index("ix_limit_breach_at", "recorded_at"),
        # The limits passed in a period (the dashboard's overdue by level).
        Index("ix_limit_breach_due_at", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    kind: BreachKind = Field(sa_type=enum_type(BreachKind))
    due_at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    unit_path: str | None = Field(default=None, max_length=255)
    unit_level: UnitLevel | None = Field(default=None, sa_type=enum_type(UnitLevel))
    escalation_level: int = 0


def _limits(now: datetime) -> list[tuple[BreachKind, Any, list[ColumnElement[bool]]]]:
    """Per kind: the limit column and when it has passed (:mod:`models.overdue`). The
    resolution limit is asked in two parts so that each reads an index on the limit
    (the mediation limit only for the few cases in mediation)."""
    response_due: Any = col(Case.response_due_at)
    resolution_due: Any = col(Case.resolution_due_at)
    mediation_due: Any = type_coerce(
        func.coalesce(col(Case.mediation_due_at), col(Case.resolution_due_at)), UTCDateTime
    )
    # is_open leads the limit indexes; a case in mediation is open (its status index).
    handling = and_(col(Case.is_open).is_(True), col(Case.status).in_(sorted(HANDLING)))
    return [
        (
            BreachKind.RESPONSE,
            response_due,
            [handling, col(Case.first_response_at).is_(None), past_clause(response_due, now)],
        ),
        (BreachKind.RESOLUTION, resolution_due, [handling, past_clause(resolution_due, now)]),
        (
            BreachKind.RESOLUTION,
            mediation_due,
            [col(Case.status) == S.IN_MEDIATION, past_clause(mediation_due, now)],
        ),
    ]


def record_breaches(
    session: Session, *, now: datetime, case_ids: list[int] | None = None, limit: int = 10_000
) -> int:
    """Write a breach row for every limit that has passed by ``now`` and has none yet
    (only the cases named, when ``case_ids`` is given). Returns how many were written."""
    now = clock.ensure_utc(now)
    written = 0
    for kind, due, conditions in _limits(now):
        recorded = exists().where(
            col(LimitBreach.case_id) == col(Case.id),
            col(LimitBreach.kind) == kind,
            col(LimitBreach.due_at) == due,
        )
        stmt = (
            select(  # type: ignore[call-overload]
                col(Case.id),
                due,
                col(Case.unit_id),
                col(Case.unit_path),
                col(Unit.level),
                col(Case.escalation_level),
            )
            .outerjoin(Unit, col(Unit.id) == col(Case.unit_id))
            .where(*conditions, ~recorded)
            .limit(limit)
        )
        if case_ids is not None:
            stmt = stmt.where(col(Case.id).in_(case_ids))
        for case_id, due_at, unit_id, unit_path, level, escalation_level in session.exec(stmt):
            session.add(
                LimitBreach(
                    case_id=case_id,
                    kind=kind,
                    due_at=clock.ensure_utc(due_at),
                    recorded_at=now,
                    unit_id=unit_id,
                    unit_path=unit_path,
                    unit_level=UnitLevel(level) if level else None,
                    escalation_level=escalation_level or 0,
                )
            )
            written += 1
    session.flush()
    return written


def breaches_of(session: Session, *, case_id: int) -> list[LimitBreach]:
    return rows_of(session, LimitBreach, LimitBreach.case_id == case_id, LimitBreach.due_at)
