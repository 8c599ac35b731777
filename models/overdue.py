"""When a case is overdue (超期): the one rule, as a predicate and as an SQL clause.

Every screen and figure that says "overdue" (the supervisors' dashboard and its counts,
the inbox, ``GET /api/v1/cases?overdue=``, the metrics, the escalation sweep) asks this
module. The deadline that counts depends on where the case is in its life:

=========================================  =============================================
status                                     deadline that counts
=========================================  =============================================
``triaged``, ``assigned``, ``escalated``   before first contact (``first_response_at``
                                           empty): the response limit
                                           (``response_due_at``), or the resolution
                                           limit if that is earlier; after first
                                           contact: the resolution limit
                                           (``resolution_due_at``)
``in_mediation``                           the mediation limit (``mediation_due_at``,
                                           about one month, extendable), else the
                                           resolution limit
``follow_up``                              the earliest return visit not yet done
                                           (``FollowUp.due_at``)
``submitted``, ``reopened``                none: triage has not set this level's limits
                                           yet (the reconciler re-drives it)
``referred`` to a unit in the system       waiting for the unit to sign for it or send
                                           it back: one working day
                                           (``referral_due_at``); signed for: the unit's
                                           resolution limit (``resolution_due_at``)
``agreement``, ``mediation_failed``,       none: the case has been dealt with at its
``referred`` elsewhere, or with the        level; the next step (scheduling the return
receiving unit's outcome recorded          visits) is the system's
``closed``, ``merged``, ``withdrawn``      none: the case is finished
=========================================  =============================================

**Overdue** means ``deadline <= now``: a time limit has run out once its moment is
reached (a case due at 18:00 is on time at 17:59:59 and overdue at 18:00:00, which is
also when the escalation sweep moves it). :func:`is_past` and :func:`past_clause` are
that comparison, written once; the escalation sweep uses them on the resolution limit
(a missed response limit shows the case as overdue, but only the resolution limit moves
it up a level: see ``models.escalation``).

Each case keeps the deadline that counts in ``cases.deadline_at``, written here at every
flush that changes what it is made of (*the kept deadline*, below); the SQL clause reads
it, so that a screen asks an index for the overdue cases instead of working the table
out for every open case.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from itertools import chain
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    and_,
    case,
    event,
    func,
    or_,
    type_coerce,
)
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from models import clock
from models.case import Case
from models.enums import CaseStatus, ReferralState
from models.follow_up import FollowUp
from models.types import UTCDateTime

S = CaseStatus
HANDLING = frozenset({S.TRIAGED, S.ASSIGNED, S.ESCALATED})
"""Statuses in which the handling unit's response and resolution limits count."""


NOW: BindParameter[datetime] = sa.bindparam("overdue_now", type_=UTCDateTime)
"""``now`` left to the execution: a statement built once around ``overdue_clause(NOW)``
(and kept: building one cost a millisecond or more) is run with ``params=at(now)``."""

Moment = datetime | BindParameter[datetime]
"""A moment, or :data:`NOW`."""


def at(now: datetime) -> dict[str, datetime]:
    """The parameters that give :data:`NOW` its value."""
    return {NOW.key: clock.ensure_utc(now)}


def is_past(deadline: datetime | None, now: datetime) -> bool:
    """The one comparison: a deadline is missed once ``now`` reaches it."""
    return deadline is not None and clock.ensure_utc(deadline) <= clock.ensure_utc(now)


def past_clause(deadline: Any, now: Moment) -> ColumnElement[bool]:
    """:func:`is_past` in SQL (NULL for a missing deadline: false inside ``WHERE``)."""
    moment = now if isinstance(now, BindParameter) else clock.ensure_utc(now)
    return deadline <= moment  # type: ignore[no-any-return]


# --- the predicate -------------------------------------------------------------------------


def deadline_of(case: Case, *, next_visit: datetime | None = None) -> datetime | None:
    """The deadline that counts for ``case`` now (table above). ``next_visit`` is the due
    time of its earliest return visit not yet done (see :func:`next_visits`); it is
    only read for a case in follow-up."""
    status = case.status
    if status in HANDLING:
        due = [case.resolution_due_at]
        if case.first_response_at is None:
            due.append(case.response_due_at)
        present = [clock.ensure_utc(d) for d in due if d is not None]
        return min(present) if present else None
    if status == S.IN_MEDIATION:
        return case.mediation_due_at or case.resolution_due_at
    if status == S.FOLLOW_UP:
        return next_visit
    if status == S.REFERRED and case.referral_state == ReferralState.PENDING:
        return case.referral_due_at
    if status == S.REFERRED and case.referral_state == ReferralState.SIGNED:
        return case.resolution_due_at
    return None


def is_overdue(case: Case, *, now: datetime, next_visit: datetime | None = None) -> bool:
    """Whether ``case`` is past the deadline that counts for it (module docstring)."""
    return is_past(deadline_of(case, next_visit=next_visit), now)


def next_visits(session: Session, case_ids: Iterable[int | None]) -> dict[int, datetime]:
    """For each case, the due time of its earliest return visit not yet done."""
    wanted = sorted({i for i in case_ids if i is not None})
    if not wanted:
        return {}
    rows = session.exec(
        select(col(FollowUp.case_id), func.min(col(FollowUp.due_at)))
        .where(col(FollowUp.case_id).in_(wanted), col(FollowUp.done_at).is_(None))
        .group_by(col(FollowUp.case_id))
    ).all()
    return {int(cid): clock.ensure_utc(due) for cid, due in rows if due is not None}


# --- the SQL clause ------------------------------------------------------------------------


def _next_visit_column() -> Any:
    return (
        sa.select(func.min(col(FollowUp.due_at)))
        .where(col(FollowUp.case_id) == col(Case.id), col(FollowUp.done_at).is_(None))
        .correlate(Case)
        .scalar_subquery()
    )


@cache
def deadline_column() -> Any:
    """:func:`deadline_of` as an SQL expression over ``Case`` (NULL: no deadline).

    Built once: it has no parameter, and SQL expressions are immutable and may be shared
    by any number of statements (building it cost about a millisecond a time)."""
    response, resolution = col(Case.response_due_at), col(Case.resolution_due_at)
    status = col(Case.status)
    response_first = and_(
        col(Case.first_response_at).is_(None),
        response.is_not(None),
        or_(resolution.is_(None), response < resolution),
    )
    handling = status.in_(sorted(HANDLING))
    return type_coerce(
        case(
            (and_(handling, response_first), response),
            (handling, resolution),
            (
                status == S.IN_MEDIATION,
                func.coalesce(col(Case.mediation_due_at), resolution),
            ),
            (status == S.FOLLOW_UP, _next_visit_column()),
            (
                and_(status == S.REFERRED, col(Case.referral_state) == ReferralState.PENDING),
                col(Case.referral_due_at),
            ),
            (
                and_(status == S.REFERRED, col(Case.referral_state) == ReferralState.SIGNED),
                resolution,
            ),
            else_=None,
        ),
        UTCDateTime,
    )


def overdue_clause(now: Moment) -> ColumnElement[bool]:
    """:func:`is_overdue` as an SQL condition on ``Case``; never NULL, so that
    ``~overdue_clause(now)`` selects exactly the cases on time. ``now`` may be
    :data:`NOW`, for a statement built once and run at any moment.

    Read from the deadline each case keeps (``cases.deadline_at``, below), so that the
    overdue cases are a range of the small ``ix_case_deadline`` index (the open cases
    with a limit running) instead of the table above worked out for every open case."""
    deadline = col(Case.deadline_at)
    return and_(deadline.is_not(None), past_clause(deadline, now))


def deadline_for_reach() -> ColumnElement[Any]:
    """The kept deadline as an expression no index answers, for a statement already held
    to a reader's reach (an inbox): ordering and filtering by it, the planner walks the
    reach's own indexes and sorts the few cases found, instead of walking every overdue
    case of the city in deadline order and dropping those out of reach (a community
    worker's overdue list at a million cases: 13.7 ms against 0.4, the same 50 rows).
    A district's overdue list, whose reach is most of the city, keeps the plain column."""
    return func.coalesce(col(Case.deadline_at), col(Case.deadline_at))


def overdue_within_reach(now: Moment) -> ColumnElement[bool]:
    """:func:`overdue_clause` by :func:`deadline_for_reach` (NULL for no deadline: false
    inside ``WHERE``)."""
    return past_clause(deadline_for_reach(), now)


# --- the kept deadline ---------------------------------------------------------------------
# Each case keeps :func:`deadline_of` in ``cases.deadline_at``. It is written here and only
# here: after every flush, for the cases whose limits, status, first contact or referral
# changed and the cases whose return visits were added, done or moved, from
# :func:`deadline_column` (the rule in SQL), in the flush's transaction. Worked out for
# every open case on each read, the dashboard's three overdue statements took 44 ms of
# SQL at a million cases (19 + 16 + 9, ``scripts/page_cpu.py --statements``).

_INPUTS = (
    "status",
    "first_response_at",
    "response_due_at",
    "resolution_due_at",
    "mediation_due_at",
    "referral_state",
    "referral_due_at",
)
"""The ``Case`` fields :func:`deadline_of` reads (with the return visits)."""

_TOUCHED = "overdue.touched"


def refresh_deadlines(connection: Connection, case_ids: Iterable[int] | None = None) -> int:
    """Write each case's deadline that counts into ``deadline_at``: for ``case_ids``, or
    for every case whose kept deadline is not the rule's (a database written outside
    the ORM, a migration). Returns the number of cases written."""
    statement = sa.update(Case).values(deadline_at=deadline_column())
    if case_ids is None:
        statement = statement.where(stale_clause())
    else:
        wanted = sorted(set(case_ids))
        if not wanted:
            return 0
        statement = statement.where(col(Case.id).in_(wanted))
    return connection.execute(statement).rowcount


def stale_clause() -> ColumnElement[bool]:
    """The cases whose kept deadline is not the one the rule gives now."""
    return col(Case.deadline_at).is_distinct_from(deadline_column())


def _inputs_changed(obj: Case) -> bool:
    state = sa.inspect(obj)
    return state.pending or any(state.attrs[name].history.has_changes() for name in _INPUTS)


@event.listens_for(OrmSession, "after_flush")
def _note_touched(session: OrmSession, _context: Any) -> None:
    touched: set[int] = set()
    for obj in chain(session.new, session.dirty):
        if isinstance(obj, Case) and obj.id is not None and _inputs_changed(obj):
            touched.add(obj.id)
    for obj in chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, FollowUp) and obj.case_id is not None:
            touched.add(obj.case_id)
    if touched:
        session.info.setdefault(_TOUCHED, set()).update(touched)


@event.listens_for(OrmSession, "after_flush_postexec")
def _keep_deadlines(session: OrmSession, _context: Any) -> None:
    touched = session.info.pop(_TOUCHED, None)
    if not touched:
        return
    refresh_deadlines(session.connection(), touched)
    for case_id in touched:  # the loaded cases read their new deadline when asked
        obj = session.identity_map.get(identity_key(Case, case_id))
        if obj is not None:
            session.expire(obj, ["deadline_at"])
