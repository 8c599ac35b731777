"""Reads that do not change within a unit of work, kept on the session.

Routing reads the same units, handlers, pairings and time limits for every case of a
batch (intake, assignment, the escalation sweep), and triage the same active model; a
request or a flow run asks for them once per case. :func:`cached` keeps such a read on
the session (``session.info``) under a key, with the tables it was read from, and
forgets it as soon as it may be stale:

* when the session writes any of those tables: a flush with a new, changed or deleted
  row of one, or an ``insert``/``update``/``delete`` statement on one;
* when a rollback (a savepoint's too) undoes what was read;
* when the session's transaction ends (commit or rollback): another connection may
  change the tables between two transactions, and the next one reads them afresh.

A session that is the only writer of its database (the policy simulator's throwaway
copy) may keep the reads across its commits (:func:`keep_across_commits`): nobody else
changes its tables, and its own writes still clear what they touch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, SessionTransaction
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, SQLModel

T = TypeVar("T")

_ENTRIES = "tiaojie.session_cache"
_ACROSS_COMMITS = "tiaojie.session_cache.across_commits"

Tables = tuple[type[SQLModel], ...]


def _names(tables: Iterable[type[SQLModel]]) -> frozenset[str]:
    return frozenset(t.__table__.name for t in tables)  # type: ignore[attr-defined]


def cached(session: Session, key: str, tables: Tables, load: Callable[[], T]) -> T:
    """The value kept under ``key`` for this session, else ``load()`` kept for next time.
    ``tables``: what ``load`` reads; a write to any of them forgets the value. Pending
    changes to those tables not flushed yet count as writes (the read would see them
    through autoflush)."""
    entries: dict[str, tuple[frozenset[str], Any]] = session.info.setdefault(_ENTRIES, {})
    names = _names(tables)
    entry = entries.get(key)
    if entry is not None and not _pending(session, names):
        return entry[1]  # type: ignore[no-any-return]
    value = load()
    entries[key] = (names, value)
    return value


def keep_across_commits(session: Session) -> None:
    """Keep the cached reads after commits: only for a session that is the sole writer
    of its database."""
    session.info[_ACROSS_COMMITS] = True


def forget(session: OrmSession, tables: frozenset[str] | None = None) -> None:
    """Forget the values read from any of ``tables`` (all when None)."""
    entries: dict[str, tuple[frozenset[str], Any]] | None = session.info.get(_ENTRIES)
    if not entries:
        return
    if tables is None:
        entries.clear()
        return
    for key in [k for k, (names, _v) in entries.items() if names & tables]:
        del entries[key]


def _pending(session: Session, names: frozenset[str]) -> bool:
    changed = (*session.new, *session.deleted, *session.dirty)
    return any(getattr(obj, "__tablename__", None) in names for obj in changed)


def _written(session: OrmSession) -> frozenset[str]:
    changed = (*session.new, *session.deleted, *session.dirty)
    return frozenset(str(getattr(obj, "__tablename__", "")) for obj in changed)


@event.listens_for(OrmSession, "before_flush")
def _before_flush(session: OrmSession, _context: Any, _instances: Any) -> None:
    if session.info.get(_ENTRIES):
        forget(session, _written(session))


@event.listens_for(OrmSession, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if not state.session.info.get(_ENTRIES):
        return
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        forget(state.session, frozenset({str(getattr(table, "name", ""))}))


@event.listens_for(OrmSession, "after_soft_rollback")
def _after_rollback(session: OrmSession, _previous: SessionTransaction) -> None:
    forget(session)


@event.listens_for(OrmSession, "after_transaction_end")
def _after_transaction(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None and not session.info.get(_ACROSS_COMMITS):
        forget(session)
