"""Signing in (登录): the one service behind ``POST /api/v1/auth/token`` and ``/web/login``.

Both front ends call :func:`sign_in` and only translate its :class:`SignIn` answer (a
token or a session cookie; 401; 429 with ``Retry-After``). The rules, in order:

1. **Rate limit.** At most ``settings.signin_per_minute`` (10) failed password checks in
   any sliding minute per user name (trimmed, case-folded) and per client address,
   counted from the audit table, so every process and ASGI worker sees the same count.
   An attempt over the limit is refused before any password is checked (the 11th wrong
   password within a minute is refused on both paths). Successful sign-ins do not
   count: a community workstation's staff sign in behind one address at the start of
   the day, and a success is no guess. An attempt still being checked counts as a
   failure: the limit is read and the attempt recorded (``checking``) in one write
   transaction, one sign-in at a time, before the password is checked, so guesses
   sent together are held to the limit like guesses sent one after another.
2. **Back-off.** After ``BACKOFF_AFTER`` (10) failed checks in a row for a user name
   (no success since, within ``MEMORY``), the next check must wait, from the last
   failure, 2 minutes, then 4, 8, and at most ``BACKOFF_MAX_S`` (15 minutes) after
   each further failure: a guesser gets ten tries in the first minute and about four
   an hour after that. A success clears it; refused attempts do not lengthen it.
3. **The same answer in the same time.** An unknown user name, an account without a
   password and an inactive account are refused like a wrong password, after one
   Argon2 verification against a dummy hash made with the same parameters: the time
   taken does not tell which user names exist.
4. **Audit.** Every attempt, refused ones included, is one :class:`SignInAttempt` row:
   when, which front end, the staff id when the name is known, a keyed hash of the
   name as typed (so that probes of one name can be counted without keeping what was
   typed: people type passwords into the name field), the client address and the
   outcome. Never a password, a hash of one, or a token.

(How an account gets its password in the first place, the one-time sign-in link, is
:mod:`models.sign_in`.)

The attempt is recorded in its own short write transaction before the password check
and its outcome set in another after it, so the Argon2 work never holds the database's
write lock and a refusal is kept even though the caller answers with an error.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal

from sqlalchemy import Engine, Index, func, text, update
from sqlmodel import Field, Session, SQLModel, col, select

from models import clock, keys
from models.db import write_session
from models.passwords import hash_password, verify_password
from models.settings import get_settings
from models.staff import Staff, staff_by_username
from models.types import UTCDateTime

Channel = Literal["api", "web"]
Outcome = Literal[
    "ok", "wrong_password", "unknown_user", "inactive", "rate_limited", "backoff", "checking"
]
# "checking": recorded before the password is checked, and counted as a failure until then.
FAILED: tuple[Outcome, ...] = ("wrong_password", "unknown_user", "inactive", "checking")
# PostgreSQL: the transaction-scoped lock that lets one sign-in at a time read the limit
# and record its attempt (SQLite's BEGIN IMMEDIATE does that already).
_PG_LOCK = "SELECT pg_advisory_xact_lock(hashtext('tiaojie sign-in'))"

WINDOW = timedelta(minutes=1)
BACKOFF_AFTER = 10
BACKOFF_BASE_S = 60
BACKOFF_MAX_S = 15 * 60
MEMORY = timedelta(days=1)  # failures older than this no longer count towards back-off


class SignInAttempt(SQLModel, table=True):
    """The audit record of one sign-in attempt (no password, no token)."""

    __tablename__ = "sign_in_attempt"
    __table_args__ = (
        Index("ix_sign_in_name_at", "name_key", "at"),
        Index("ix_sign_in_address_at", "address", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    channel: str = Field(max_length=8)
    name_key: str = Field(max_length=64)
    staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    address: str = Field(max_length=64)
    outcome: str = Field(max_length=16)


@dataclass(frozen=True)
class SignIn:
    """What the front end answers: ``staff`` when signed in, else refused; a refusal by
    the limit or the back-off carries the seconds to wait."""

    outcome: Outcome
    staff: Staff | None = None
    retry_after_s: int | None = None

    @property
    def ok(self) -> bool:
        return self.staff is not None


def name_key(username: str) -> str:
    """The keyed hash under which attempts for a user name are counted and audited."""
    name = username.strip().casefold().encode("utf-8")
    return hmac.new(keys.key("lookup"), b"sign-in:" + name, hashlib.sha256).hexdigest()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _seconds(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() + 0.999))


def _window_wait(
    session: Session, column: object, value: str, now: datetime, limit: int
) -> int | None:
    """Seconds until one more check fits the limit of failed checks for this name or
    address, or None."""
    stamps = session.exec(
        select(SignInAttempt.at)
        .where(
            col(column) == value,
            col(SignInAttempt.at) > now - WINDOW,
            col(SignInAttempt.outcome).in_(FAILED),
        )
        .order_by(col(SignInAttempt.at).desc())
        .limit(limit)
    ).all()
    if limit <= 0 or len(stamps) < limit:
        return None
    return _seconds(clock.ensure_utc(stamps[-1]) + WINDOW - now)


def _backoff_wait(session: Session, key: str, now: datetime) -> int | None:
    """Seconds still to wait after a run of failures for this name, or None."""
    base = (
        select(func.max(col(SignInAttempt.at)))
        .where(col(SignInAttempt.name_key) == key)
        .where(col(SignInAttempt.at) > now - MEMORY)
    )
    last_ok = session.exec(base.where(col(SignInAttempt.outcome) == "ok")).one()
    failures = select(func.count(), func.max(col(SignInAttempt.at))).where(
        col(SignInAttempt.name_key) == key,
        col(SignInAttempt.at) > (clock.ensure_utc(last_ok) if last_ok else now - MEMORY),
        col(SignInAttempt.outcome).in_(FAILED),
    )
    count, last_failure = session.exec(failures).one()
    if count < BACKOFF_AFTER or last_failure is None:
        return None
    wait = min(BACKOFF_BASE_S * 2 ** (count - BACKOFF_AFTER + 1), BACKOFF_MAX_S)
    until = clock.ensure_utc(last_failure) + timedelta(seconds=wait)
    return _seconds(until - now) if until > now else None


def _check(staff: Staff | None, password: str) -> Outcome:
    """Verify the password with one Argon2 verification whatever the account."""
    stored = staff.password_hash if staff is not None else None
    matched = verify_password(password or "-", stored or _dummy_hash())
    if staff is None or not stored:
        return "unknown_user"
    if not matched:
        return "wrong_password"
    return "ok" if staff.active else "inactive"


def sign_in(
    engine: Engine | None,
    *,
    username: str,
    password: str,
    address: str,
    channel: Channel,
    per_minute: int | None = None,
) -> SignIn:
    """Check a user name and password under the rules of the module docstring, record
    the attempt, and say how to answer (``engine``: None for the default database;
    ``per_minute``: the app's ``signin_per_minute`` when it has settings of its own)."""
    _dummy_hash()  # made once per process, before any timing can depend on it
    limit = get_settings().signin_per_minute if per_minute is None else per_minute
    now = clock.now()
    key, address = name_key(username), (address or "?")[:64]
    with write_session(engine) as session:
        if session.get_bind().dialect.name != "sqlite":
            session.connection().execute(text(_PG_LOCK))
        staff = staff_by_username(session, username.strip())
        refused = _refusal(session, key, address, now, limit)
        attempt = SignInAttempt(
            at=now,
            channel=channel,
            name_key=key,
            staff_id=staff.id if staff is not None else None,
            address=address,
            outcome=refused.outcome if refused is not None else "checking",
        )
        session.add(attempt)
        session.flush()
    if refused is not None:
        return refused
    outcome = _check(staff, password)
    with write_session(engine) as session:
        session.exec(
            update(SignInAttempt).where(col(SignInAttempt.id) == attempt.id).values(outcome=outcome)
        )
    return SignIn(outcome, staff=staff if outcome == "ok" else None)


def _refusal(session: Session, key: str, address: str, now: datetime, limit: int) -> SignIn | None:
    """The refusal of an attempt over the limit or within the back-off, else None."""
    waits = [
        _window_wait(session, SignInAttempt.name_key, key, now, limit),
        _window_wait(session, SignInAttempt.address, address, now, limit),
    ]
    if any(w is not None for w in waits):
        return SignIn("rate_limited", retry_after_s=max(w or 0 for w in waits))
    if (wait := _backoff_wait(session, key, now)) is not None:
        return SignIn("backoff", retry_after_s=wait)
    return None


# --- reading the audit ---------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptRow:
    """One audited attempt as an administrator reads it: the account when the name was
    known (the name typed is never kept), the front end, the address and the outcome."""

    at: datetime
    channel: str
    username: str | None
    address: str
    outcome: str


def recent_attempts(
    session: Session, *, since: datetime, failed_only: bool = False, limit: int = 200
) -> list[AttemptRow]:
    """Sign-in attempts since ``since``, newest first (refusals by the limit or the
    back-off count as failed)."""
    query = (
        select(SignInAttempt, col(Staff.username))
        .outerjoin(Staff, col(Staff.id) == col(SignInAttempt.staff_id))
        .where(col(SignInAttempt.at) >= clock.ensure_utc(since))
    )
    if failed_only:
        query = query.where(col(SignInAttempt.outcome) != "ok")
    rows = session.exec(
        query.order_by(col(SignInAttempt.at).desc(), col(SignInAttempt.id).desc()).limit(limit)
    ).all()
    return [
        AttemptRow(clock.ensure_utc(a.at), a.channel, name, a.address, a.outcome)
        for a, name in rows
    ]
