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
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import BindParameter, ColumnElement, and_, case, func, or_, type_coerce
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

    Written as "one of these deadlines has passed" rather than as a comparison of
    :func:`deadline_column` (the same rule: the earlier of two limits has passed when
    either has), so that the database can read open cases from an index
    (``ix_case_open_due``) instead of computing every case's deadline. Each comparison
    is guarded with ``IS NOT NULL``: a missing limit makes its branch false, never NULL."""
    status, resolution = col(Case.status), col(Case.resolution_due_at)
    mediation = col(Case.mediation_due_at)
    state = col(Case.referral_state)

    def past(deadline: Any) -> ColumnElement[bool]:
        return and_(deadline.is_not(None), past_clause(deadline, now))

    visit_missed = sa.exists().where(
        col(FollowUp.case_id) == col(Case.id),
        col(FollowUp.done_at).is_(None),
        past_clause(col(FollowUp.due_at), now),
    )
    return and_(
        col(Case.is_open).is_(True),  # every status with a deadline is open
        or_(
            and_(
                status.in_(sorted(HANDLING)),
                or_(
                    past(resolution),
                    and_(col(Case.first_response_at).is_(None), past(col(Case.response_due_at))),
                ),
            ),
            and_(
                status == S.IN_MEDIATION,
                or_(past(mediation), and_(mediation.is_(None), past(resolution))),
            ),
            and_(status == S.FOLLOW_UP, visit_missed),
            and_(
                status == S.REFERRED,
                state.is_not(None),
                or_(
                    and_(state == ReferralState.PENDING, past(col(Case.referral_due_at))),
                    and_(state == ReferralState.SIGNED, past(resolution)),
                ),
            ),
        ),
    )
