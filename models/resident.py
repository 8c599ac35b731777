"""The resident's way in: the tracking code plus the last four digits of the phone given
at intake open a short-lived server-side session on that one case.

Abuse resistance lives here, in one place:

* every wrong check counts against the code typed (real or made up, the same way), and
  after ``settings.resident_lock_tries`` the code is locked for
  ``settings.resident_lock_minutes``: while locked even the right digits are refused;
* the answer never says whether a code exists: a made-up code is hashed, looked up,
  counted and "decrypted" exactly like a real one, and gets the same refusal;
* a session belongs to one case and one party; the pages check both on every request.

Requests per client address are limited by the web front end (api.ratelimit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session, col, select

from models import clock, keys, pii, tracking
from models.case import Case
from models.enums import PartySide
from models.errors import PermissionDenied
from models.lifecycle import Actor
from models.party import Party
from models.resident_tables import ResidentLink, ResidentLock, ResidentSession
from models.settings import get_settings

# Decrypted in place of a phone when the code matches no case (same work, same time);
# built on first use, after the keys are in place.
_DECOY: str | None = None


class CheckRefused(PermissionDenied):
    """The code and digits do not open a case. Worded the same for a real and a made-up
    code; ``locked`` is also the same for both. The one 403 (``forbidden``) of every
    front end."""

    def __init__(self, *, locked: bool) -> None:
        if locked:
            super().__init__(
                "too many wrong tries: this code is locked for a while; try again later",
                "尝试次数过多，该查询码已暂时锁定，请稍后再试。",
            )
        else:
            super().__init__(
                "the tracking code or the last four digits of the phone are not right",
                "查询码或手机号后四位不正确，请核对后重试。",
            )
        self.locked = locked


@dataclass(frozen=True)
class Opened:
    token: str
    case_id: int
    party_id: int
    expires_at: datetime


def resident_actor(party_id: int) -> Actor:
    """The resident acting on their own case (the event's actor is ``resident:<party>``)."""
    return Actor.resident(party_id)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def csrf_for(token: str) -> str:
    """The form token of a resident session (derived, so nothing more is stored)."""
    digest = hmac.new(
        keys.key("session"), b"resident-csrf:" + token.encode("ascii", "replace"), "sha256"
    )
    return digest.hexdigest()[:32]


def _decoy() -> str:
    global _DECOY
    if _DECOY is None:
        _DECOY = pii.encrypt("00000000000")
    return _DECOY


def _lock_of(session: Session, code_hash: str, now: datetime) -> ResidentLock:
    lock = session.get(ResidentLock, code_hash)
    if lock is None:
        lock = ResidentLock(code_hash=code_hash, updated_at=now)
        session.add(lock)
    return lock


def _is_locked(lock: ResidentLock, now: datetime) -> bool:
    return lock.locked_until is not None and clock.ensure_utc(lock.locked_until) > now


def _matching_party(parties: list[Party], last4: str) -> Party | None:
    """The complainant whose phone ends in ``last4`` (every phone is decrypted and
    compared in constant time, also for a made-up code, so timing tells nothing)."""
    found: Party | None = None
    phones: list[tuple[Party | None, str]] = [(p, p.phone_enc) for p in parties if p.phone_enc] or [
        (None, _decoy())
    ]
    for party, token in phones:
        phone = pii.decrypt(token)
        if hmac.compare_digest(phone[-4:].encode(), last4.encode()) and party is not None:
            found = found or party
    return found


def check_phone(session: Session, *, code: str, last4: str) -> Opened:
    """Open a resident session for ``code`` when ``last4`` ends the phone of one of its
    complainants; else count a failure against the code and raise :class:`CheckRefused`."""
    settings = get_settings()
    now = clock.now()
    code_hash = tracking.hash_of(code.strip()[:64])
    lock = _lock_of(session, code_hash, now)
    if _is_locked(lock, now):
        raise CheckRefused(locked=True)
    digits = last4.strip()
    case = session.exec(select(Case).where(Case.tracking_hash == code_hash)).first()
    parties: list[Party] = []
    if case is not None and case.id is not None:
        parties = list(
            session.exec(
                select(Party)
                .where(Party.case_id == case.id, Party.side == PartySide.COMPLAINANT)
                .order_by(col(Party.id))
            )
        )
    ok = len(digits) == 4 and digits.isascii() and digits.isdigit()
    party = _matching_party(parties, digits if ok else "----")
    if case is None or case.id is None or party is None or party.id is None:
        lock.failures += 1
        lock.updated_at = now
        if lock.failures >= settings.resident_lock_tries:
            lock.failures = 0
            lock.locked_until = now + timedelta(minutes=settings.resident_lock_minutes)
        session.add(lock)
        session.flush()
        raise CheckRefused(locked=_is_locked(lock, now))
    lock.failures = 0
    lock.updated_at = now
    session.add(lock)
    return open_session(session, case_id=case.id, party_id=party.id)


def open_session(session: Session, *, case_id: int, party_id: int) -> Opened:
    now = clock.now()
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(minutes=get_settings().resident_session_minutes)
    session.add(
        ResidentSession(
            token_hash=_token_hash(token),
            case_id=case_id,
            party_id=party_id,
            expires_at=expires,
            created_at=now,
        )
    )
    session.flush()
    return Opened(token=token, case_id=case_id, party_id=party_id, expires_at=expires)


def session_for(session: Session, *, token: str | None, code: str) -> ResidentSession | None:
    """The live session of ``token`` when it belongs to the case of ``code``, else None
    (a session on one case never opens another)."""
    if not token or len(token) > 200:
        return None
    row = session.get(ResidentSession, _token_hash(token))
    if row is None or clock.ensure_utc(row.expires_at) <= clock.now():
        return None
    case = session.get(Case, row.case_id)
    if case is None or case.tracking_hash != tracking.hash_of(code.strip()[:64]):
        return None
    return row


def end_session(session: Session, *, token: str | None) -> None:
    if token and len(token) <= 200:
        row = session.get(ResidentSession, _token_hash(token))
        if row is not None:
            session.delete(row)
            session.flush()


def purge_expired(session: Session, *, now: datetime) -> dict[str, int]:
    """Delete what no longer opens anything (a scheduled step, tasks/sms.py): expired
    sessions; links expired ``settings.resident_purge_hours`` ago (used or not: the
    answer itself is an event on the case); and code locks that are not locking and
    were last touched that long ago (their count of wrong tries starts again)."""
    before = now - timedelta(hours=get_settings().resident_purge_hours)
    connection = session.connection()
    sessions = connection.execute(
        delete(ResidentSession).where(col(ResidentSession.expires_at) <= now)
    ).rowcount
    links = connection.execute(
        delete(ResidentLink).where(col(ResidentLink.expires_at) <= before)
    ).rowcount
    locks = connection.execute(
        delete(ResidentLock).where(
            col(ResidentLock.updated_at) <= before,
            or_(col(ResidentLock.locked_until).is_(None), col(ResidentLock.locked_until) <= now),
        )
    ).rowcount
    return {"sessions_purged": sessions, "links_purged": links, "locks_purged": locks}
