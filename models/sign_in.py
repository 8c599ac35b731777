"""One-time sign-in links (首次登录链接): how a new or reset account gets its password.

An administrator never chooses or sees a staff member's password, and no account starts
with a shared default. Creating an account or resetting a password issues a random
token; the person opens ``/web/welcome/<token>``, sets their own password and is signed
in. Only the SHA-256 of the token is stored; a link works once, until it expires, and
issuing a new one retires the old.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlmodel import Field, Session, SQLModel, col, select, update

from models import clock, web_sessions
from models.errors import ValidationError
from models.passwords import hash_password
from models.settings import get_settings
from models.staff import Staff
from models.types import UTCDateTime

MIN_PASSWORD = 10


class SignInLink(SQLModel, table=True):
    __tablename__ = "sign_in_link"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_link(session: Session, staff_id: int) -> str:
    """A fresh token for ``staff_id`` (earlier unused links stop working)."""
    now = clock.now()
    session.exec(
        update(SignInLink)
        .where(col(SignInLink.staff_id) == staff_id, col(SignInLink.used_at).is_(None))
        .values(used_at=now)
    )
    token = secrets.token_urlsafe(24)
    days = get_settings().sign_in_link_days
    session.add(
        SignInLink(
            staff_id=staff_id,
            token_hash=_digest(token),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    session.flush()
    return token


def link_url(token: str) -> str:
    return f"{get_settings().web_base_url}/web/welcome/{token}"


def staff_for(session: Session, token: str) -> Staff | None:
    """The active staff member a usable link belongs to, else None."""
    link = session.exec(select(SignInLink).where(SignInLink.token_hash == _digest(token))).first()
    if link is None or link.used_at is not None or clock.ensure_utc(link.expires_at) <= clock.now():
        return None
    staff = session.get(Staff, link.staff_id)
    return staff if staff is not None and staff.active else None


def check_new_password(password: str, repeat: str) -> None:
    if password != repeat:
        raise ValidationError("the two passwords differ", "两次输入的密码不一致")
    if len(password) < MIN_PASSWORD:
        raise ValidationError(
            f"a password needs at least {MIN_PASSWORD} characters",
            f"密码至少需要 {MIN_PASSWORD} 个字符",
        )


def redeem(session: Session, token: str, *, password: str, repeat: str) -> Staff:
    """Set the password of the link's staff member and retire the link."""
    staff = staff_for(session, token)
    if staff is None:
        raise ValidationError(
            "this sign-in link has been used, has expired or was replaced; ask your "
            "administrator for a new one",
            "此登录链接已使用、已过期或已被替换，请向系统管理员索取新的链接",
        )
    check_new_password(password, repeat)
    staff.password_hash = hash_password(password)
    assert staff.id is not None
    # A new password ends every session signed in with the old one.
    web_sessions.revoke_sessions(session, staff.id, why="password")
    session.exec(
        update(SignInLink)
        .where(SignInLink.token_hash == _digest(token))  # type: ignore[arg-type]
        .values(used_at=clock.now())
    )
    session.add(staff)
    session.flush()
    return staff
