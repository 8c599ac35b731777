"""Each case's deciding moment for each of the three rates (三率), kept as cases change.

:mod:`models.metrics` defines the rates: a case is judged once per rate, at its
deciding moment, for the unit that held it then. This module owns that rule (which
rows decide, which one comes first, what counts as good) and keeps its result in
:class:`RateDecision`, one row per case and rate, so that the dashboard, the metrics
API and the monthly report add up a period's rows (an index range on ``at``) instead
of ranking every contact, return visit and breach of the case history on each request.

The grain is the case, not the day, on purpose: a unit's figure counts the *distinct*
cases decided for it in any ``[since, until)`` (not only whole days), and distinct
counts do not add up across days. A month holds a few thousand rows per district.

**Kept in the same transaction as the change.** Whatever writes a row the rule reads
(an event of the one writer :mod:`models.lifecycle`, which is also how a merge
arrives; a contact, a return visit, a referral outcome, a breach of the sweep) marks
its case when the session flushes; before that transaction commits, the marked cases'
rows are worked out again from the source rows and replaced (:func:`settle`). A
recount replaces, it never adds, so a process that dies either commits the change and
its rows together or neither, and nothing can drift or be counted twice. The case rows
are locked first, so that two transactions touching one case on PostgreSQL settle it
one after the other, each seeing the other's rows. Rows written outside the ORM (a
bulk import, the benchmark city) need :func:`rebuild`
(``tiaojie aggregates rebuild``); :func:`differences` compares the table with a full
recount (``tiaojie aggregates check``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cache
from itertools import chain
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Index,
    and_,
    bindparam,
    case,
    delete,
    event,
    exists,
    func,
    insert,
    literal,
    or_,
    union_all,
)
from sqlalchemy.orm import aliased
from sqlmodel import Field, Session, SQLModel, col, select

from models import clock
from models.breaches import LimitBreach
from models.case import Case
from models.contact import CaseContact
from models.enums import (
    BreachKind,
    CaseStatus,
    Rate,
    ReferralOutcome,
    ResolvedAnswer,
    SatisfiedAnswer,
    VisitChannel,
)
from models.event import CaseEvent
from models.follow_up import FollowUp
from models.referral import Referral
from models.types import UTCDateTime, enum_type

RESOLVED = (ResolvedAnswer.RESOLVED, ResolvedAnswer.BASICALLY)
SATISFIED = (SatisfiedAnswer.SATISFIED, SatisfiedAnswer.BASICALLY)
MARKS = "tiaojie.decisions.marked"
"""``session.info`` key: ids of the cases whose rows must be worked out again."""
WATCHED = (CaseEvent, CaseContact, FollowUp, LimitBreach, Referral)
"""The rows the rule reads; of the case itself only whether it was merged, which
arrives as an event of :data:`STATUS_VERBS`."""
STATUS_VERBS = frozenset({"merged"})


class RateDecision(SQLModel, table=True):
    """The deciding row of one case for one rate: when, for which unit, good or not."""

    __tablename__ = "rate_decision"
    # Covering: a period's figures are read from the index alone.
    __table_args__ = (Index("ix_rate_decision_at", "at", "unit_path", "rate", "good", "case_id"),)

    case_id: int = Field(foreign_key="cases.id", primary_key=True)
    rate: Rate = Field(primary_key=True, sa_type=enum_type(Rate))
    at: datetime = Field(sa_type=UTCDateTime)
    good: bool
    unit_path: str = Field(max_length=255)


# --- the rule: which rows decide -------------------------------------------------------

Scope = Callable[[Any], ColumnElement[bool]]
"""Narrows a source table to some cases, given its ``case_id`` column."""


def _breaches(kind: BreachKind, scope: Scope) -> Any:
    """Breaches of ``kind`` as decisions: a missed limit counts as not done in time, at
    the moment it passed, against the unit that held the case."""
    return select(
        col(LimitBreach.case_id),
        col(LimitBreach.due_at),
        literal(0),
        col(LimitBreach.unit_path),
    ).where(col(LimitBreach.kind) == kind, scope(col(LimitBreach.case_id)))


def _response_sources(scope: Scope) -> list[Any]:
    contact: Any = select(
        col(CaseContact.case_id).label("case_id"),
        col(CaseContact.at).label("at"),
        case((col(CaseContact.in_time).is_(True), 1), else_=0).label("good"),
        col(CaseContact.unit_path).label("unit_path"),
    ).where(scope(col(CaseContact.case_id)))
    return [contact, _breaches(BreachKind.RESPONSE, scope)]


def _referral_unresolved() -> ColumnElement[bool]:
    """The visited case was referred to a unit that has not recorded a resolved outcome
    (none yet, or 未解决) before the visit: the referral's outcome decides first."""
    return exists().where(
        col(Referral.case_id) == col(FollowUp.case_id),
        col(Referral.to_unit_id).is_not(None),
        col(Referral.referred_at) <= col(FollowUp.done_at),
        or_(
            col(Referral.outcome).is_(None),
            col(Referral.outcome) == ReferralOutcome.NOT_RESOLVED,
        ),
    )


def _visit_sources(answer: Any, good: tuple[Any, ...], resolution: bool, scope: Scope) -> list[Any]:
    said_good = answer.in_(good)
    if resolution:
        said_good = and_(said_good, ~_referral_unresolved())
    own = aliased(FollowUp)
    answered_themselves = exists().where(
        col(own.case_id) == col(FollowUp.case_id),
        col(own.channel) == VisitChannel.RESIDENT_LINK,
        col(own.done_at).is_not(None),
        getattr(own, answer.key).is_not(None),
    )
    visit: Any = select(
        col(FollowUp.case_id).label("case_id"),
        col(FollowUp.done_at).label("at"),
        case((said_good, 1), else_=0).label("good"),
        col(FollowUp.judged_unit_path).label("unit_path"),
    ).where(
        col(FollowUp.independent).is_(True),
        col(FollowUp.done_at).is_not(None),
        answer.is_not(None),
        or_(col(FollowUp.channel) == VisitChannel.RESIDENT_LINK, ~answered_themselves),
        scope(col(FollowUp.case_id)),
    )
    if not resolution:
        return [visit]
    return [visit, _breaches(BreachKind.RESOLUTION, scope)]


def _sources(rate: Rate, scope: Scope) -> list[Any]:
    if rate == Rate.RESPONSE:
        return _response_sources(scope)
    if rate == Rate.RESOLUTION:
        return _visit_sources(col(FollowUp.resolved), RESOLVED, True, scope)
    return _visit_sources(col(FollowUp.satisfied), SATISFIED, False, scope)


def _first(rate: Rate, scope: Scope) -> Any:
    """Each case's first deciding row for ``rate`` (``case_id, rate, at, good,
    unit_path``): the earliest moment wins, a good one first on a tie (a contact exactly
    at the limit is in time). A case whose first row names no unit, or that was merged
    into another, decides nothing."""
    rows = union_all(*_sources(rate, scope)).subquery()
    ranked = select(  # type: ignore[call-overload]
        rows.c.case_id,
        rows.c.at,
        rows.c.good,
        rows.c.unit_path,
        func.row_number()
        .over(partition_by=rows.c.case_id, order_by=(rows.c.at, rows.c.good.desc()))
        .label("rn"),
    ).subquery()
    return (
        select(  # type: ignore[call-overload]
            ranked.c.case_id,
            literal(rate.value).label("rate"),
            ranked.c.at,
            (ranked.c.good == 1).label("good"),
            ranked.c.unit_path,
        )
        .join(Case, col(Case.id) == ranked.c.case_id)
        .where(
            ranked.c.rn == 1, ranked.c.unit_path.is_not(None), col(Case.status) != CaseStatus.MERGED
        )
    )


def decided(scope: Scope) -> Any:
    """The full recount of the cases in ``scope``, every rate: the rows
    :class:`RateDecision` should hold for them."""
    return union_all(*(_first(rate, scope) for rate in Rate))


COLUMNS = ("case_id", "rate", "at", "good", "unit_path")


def _replace(session: Session, scope: Scope) -> None:
    session.exec(delete(RateDecision).where(scope(col(RateDecision.case_id))))
    session.exec(insert(RateDecision).from_select(COLUMNS, decided(scope)))


# --- kept as cases change ---------------------------------------------------------------


def _among(case_id: Any) -> ColumnElement[bool]:
    return case_id.in_(bindparam("case_ids", expanding=True))  # type: ignore[no-any-return]


@cache
def _refresh_statements() -> tuple[Any, Any, Any]:
    """Built once: this runs in every transaction that touches a rate's rows, and
    building the statement costs more than running it on a few cases."""
    lock = select(col(Case.id)).where(_among(col(Case.id))).with_for_update()
    drop = delete(RateDecision).where(_among(col(RateDecision.case_id)))
    fill = insert(RateDecision).from_select(COLUMNS, decided(_among))
    return lock, drop, fill


def refresh(session: Session, case_ids: set[int]) -> None:
    """Work out the rows of ``case_ids`` again from their source rows and replace them."""
    lock, drop, fill = _refresh_statements()
    for chunk in _chunks(sorted(case_ids), 500):
        params = {"case_ids": chunk}
        # Lock the cases (PostgreSQL; SQLite has one writer anyway) so that two
        # transactions touching one case do not settle it from each other's old rows.
        connection = session.connection()
        connection.execute(lock, params).all()
        connection.execute(drop, params)
        connection.execute(fill, params)


def settle(session: Session) -> None:
    """Refresh the cases marked in this session so far (before each commit, and before
    the metrics read inside a transaction that changed cases)."""
    session.flush()
    while marked := session.info.pop(MARKS, None):
        refresh(session, marked)
        session.flush()


@event.listens_for(Session, "after_flush")
def _mark(session: Session, _context: Any) -> None:
    touched = {
        obj.case_id
        for obj in chain(session.new, session.dirty, session.deleted)
        if isinstance(obj, WATCHED)
        and obj.case_id is not None
        and (not isinstance(obj, CaseEvent) or obj.verb in STATUS_VERBS)
    }
    if touched:
        session.info.setdefault(MARKS, set()).update(touched)


@event.listens_for(Session, "before_commit")
def _settle_before_commit(session: Session) -> None:
    if session.info.get(MARKS) or session.new or session.dirty or session.deleted:
        settle(session)


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: Any) -> None:
    # Committed: settled already. Rolled back: the marked changes are gone with it.
    if transaction.parent is None:
        session.info.pop(MARKS, None)


# --- rebuild and check ----------------------------------------------------------------


def _chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def id_ranges(session: Session, batch: int = 20_000) -> list[tuple[int, int]]:
    """The case ids in ``[low, high)`` ranges of ``batch``, for a rebuild in steps."""
    low, high = session.exec(select(func.min(col(Case.id)), func.max(col(Case.id)))).one()
    if low is None or high is None:
        return []
    return [(start, min(start + batch, high + 1)) for start in range(low, high + 1, batch)]


def rebuild_range(session: Session, low: int, high: int) -> None:
    """Work out again the rows of the cases with ids in ``[low, high)`` (the caller
    commits); safe on a database in use: it replaces what it recounts."""

    def scope(case_id: Any) -> ColumnElement[bool]:
        return and_(case_id >= low, case_id < high)

    _replace(session, scope)


def rebuild(session: Session, *, batch: int = 20_000) -> int:
    """Work out every case's rows again, in one transaction (the caller commits): for a
    database filled outside the ORM, or after a migration. Returns the rows kept."""
    ranges = id_ranges(session, batch)
    for low, high in ranges:
        rebuild_range(session, low, high)
    return count(session)


def count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(RateDecision)).one())


def fill_if_empty(session: Session) -> int:
    """After a migration: a database with cases and no kept rows (made before this
    table, or restored from such a backup) gets them. Returns the rows kept."""
    if session.exec(select(RateDecision.case_id).limit(1)).first() is not None:
        return 0
    if session.exec(select(Case.id).limit(1)).first() is None:
        return 0
    return rebuild(session)


def differences(session: Session) -> list[tuple[str, tuple[Any, ...]]]:
    """Rows the table holds that a full recount does not (``"extra"``) and rows the
    recount has that the table lacks (``"missing"``): empty when the two agree."""

    def everything(_case_id: Any) -> ColumnElement[bool]:
        return literal(True)

    def key(row: Any) -> tuple[Any, ...]:
        return (int(row[0]), Rate(row[1]), clock.ensure_utc(row[2]), bool(row[3]), str(row[4]))

    recount = decided(everything).subquery()
    expected = {key(r) for r in session.exec(select(*recount.c)).all()}
    kept = {
        key((d.case_id, d.rate.value, d.at, d.good, d.unit_path))
        for d in session.exec(select(RateDecision)).all()
    }
    return [("extra", k) for k in sorted(kept - expected)] + [
        ("missing", k) for k in sorted(expected - kept)
    ]
