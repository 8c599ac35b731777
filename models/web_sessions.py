"""Server-side records of the web pages' sessions, so that a session can end for real.

The session cookie (``api.web.auth``) is signed and carries a random session id; this
table holds a keyed hash of that id (a copy of the table lets nobody forge or reuse a
cookie), the staff member, when it started and expires, and when it was revoked and
why. A cookie opens pages only while its record is alive, so:

- signing out revokes that one session (the cookie no longer works, even if copied);
- :func:`revoke_sessions` ends every session of a staff member, and every bearer token
  issued to them before (``Staff.token_generation``): called when an account is
  deactivated and when its password is set or changed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import Field, Session, SQLModel, col, select

from models import keys
from models.staff import Staff
from models.types import UTCDateTime
from models.unit import Unit


class WebSession(SQLModel, table=True):
    __tablename__ = "web_session"

    id: int | None = Field(default=None, primary_key=True)
    sid_hash: str = Field(max_length=64, unique=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_why: str | None = Field(default=None, max_length=32)


def _wall_now() -> datetime:
    # Wall-clock time, as for token expiry: never the virtual clock of tests and the
    # policy simulator.
    return datetime.now(UTC)


def _hash(sid: str) -> str:
    return hmac.new(keys.key("session"), sid.encode("utf-8"), hashlib.sha256).hexdigest()


def start_session(session: Session, *, staff_id: int, ttl: timedelta) -> str:
    """Record a new session; answers its random id (for the signed cookie only)."""
    sid = secrets.token_urlsafe(24)
    now = _wall_now()
    session.add(
        WebSession(sid_hash=_hash(sid), staff_id=staff_id, created_at=now, expires_at=now + ttl)
    )
    session.flush()
    return sid


def _alive(row: WebSession | None, staff_id: int) -> bool:
    return (
        row is not None
        and row.staff_id == staff_id
        and row.revoked_at is None
        and row.expires_at > _wall_now()
    )


def signed_in_staff(
    session: Session, *, sid: str, staff_id: int
) -> tuple[Staff, Unit | None] | None:
    """The staff member of a live session of theirs, if still active, and their unit: the
    sign-in check of every page, in one statement (it was three: the staff member, the
    session, the unit)."""
    row = session.exec(
        select(Staff, Unit, WebSession)
        .join(WebSession, col(WebSession.staff_id) == col(Staff.id))
        .outerjoin(Unit, col(Unit.id) == col(Staff.unit_id))
        .where(col(WebSession.sid_hash) == _hash(sid), col(Staff.id) == staff_id)
    ).first()
    if row is None:
        return None
    staff, unit, record = row
    if not staff.active or not _alive(record, staff_id):
        return None  # disabled; signed out, revoked, or expired
    return staff, unit


def previous_sign_in(session: Session, *, staff_id: int) -> datetime | None:
    """When the staff member signed in before the sign-in of this visit (the newest of
    their sessions is this visit's): what their inbox says changed since. None on a
    first visit."""
    found = session.exec(
        select(WebSession.created_at)
        .where(col(WebSession.staff_id) == staff_id)
        .order_by(col(WebSession.created_at).desc())
        .offset(1)
        .limit(1)
    ).first()
    return found


def revoke_session(session: Session, *, sid: str, why: str = "logout") -> bool:
    """End one session (signing out). True if it was alive."""
    result = session.connection().execute(
        update(WebSession)
        .where(col(WebSession.sid_hash) == _hash(sid), col(WebSession.revoked_at).is_(None))
        .values(revoked_at=_wall_now(), revoked_why=why)
    )
    return bool(result.rowcount)


def revoke_sessions(session: Session, staff_id: int, *, why: str = "revoked") -> int:
    """End every live session of a staff member (deactivation, password set or changed),
    and the bearer tokens issued to them so far. Answers how many sessions were ended."""
    # Through the ORM session, so that a Staff row already loaded (the one whose password
    # is being set) sees the new number too.
    session.exec(
        update(Staff)
        .where(col(Staff.id) == staff_id)
        .values(token_generation=col(Staff.token_generation) + 1)
    )
    result = session.connection().execute(
        update(WebSession)
        .where(col(WebSession.staff_id) == staff_id, col(WebSession.revoked_at).is_(None))
        .values(revoked_at=_wall_now(), revoked_why=why[:32])
    )
    return int(result.rowcount)


__all__ = [
    "WebSession",
    "revoke_session",
    "revoke_sessions",
    "signed_in_staff",
    "start_session",
]
