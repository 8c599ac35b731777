"""Sign-in for the web pages: a password form, a signed session cookie and CSRF tokens.

The session cookie (``tj_session``) is a JWT (HS256, pinned) signed with the session key
of :mod:`models.keys` (used for nothing else), carrying the staff id, a random
session id, the CSRF token of the session and an expiry (``settings.token_ttl_s``). It
is ``HttpOnly``, ``SameSite=Lax`` and ``Secure`` whenever the request came over https
(directly or through a proxy that says so in ``X-Forwarded-Proto``).

CSRF: every form carries a hidden ``csrf_token``. Signed in, it must equal the token in
the session cookie; on the sign-in form (no session yet) it must equal the random value
of the ``tj_csrf`` cookie (double submit). Both comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import timedelta
from typing import Any

import jwt
from fastapi import Request, Response
from sqlmodel import Session

from api.client import is_https
from api.security import decode_pinned, encode_pinned
from models import keys, web_sessions
from models.access import Principal, principal_of
from models.settings import get_settings

SESSION_COOKIE = "tj_session"
CSRF_COOKIE = "tj_csrf"
AUDIENCE = "tiaojie-web"
SESSION_CLAIMS = ("exp", "sub", "aud", "csrf", "sid")


def _key() -> bytes:
    return keys.key("session")


def issue_session(session: Session, staff_id: int) -> tuple[str, str]:
    """A new session, recorded server-side (:mod:`models.web_sessions`): the signed
    cookie value and its CSRF token."""
    settings = get_settings()
    now = int(time.time())
    csrf = secrets.token_urlsafe(32)
    sid = web_sessions.start_session(
        session, staff_id=staff_id, ttl=timedelta(seconds=settings.token_ttl_s)
    )
    claims: dict[str, Any] = {
        "sub": str(staff_id),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + settings.token_ttl_s,
        "sid": sid,
        "csrf": csrf,
    }
    return encode_pinned(claims, _key()), csrf


def read_session(token: str | None) -> dict[str, Any] | None:
    """The claims of a valid, unexpired session cookie, else None."""
    if not token:
        return None
    try:
        return decode_pinned(token, _key(), audience=AUDIENCE, require=[*SESSION_CLAIMS])
    except jwt.PyJWTError:
        return None


# Where a request keeps its session cookie's claims once read: the sign-in check and the
# page's CSRF token both need them, and each reading checked the signature and the claims
# again (the same decode twice on every signed-in page).
_CLAIMS = "tj_session_claims"


def request_claims(request: Request) -> dict[str, Any] | None:
    """The claims of this request's session cookie (:func:`read_session`), read once per
    request; the cookie a request carries does not change while it is answered."""
    token = request.cookies.get(SESSION_COOKIE)
    kept: tuple[str | None, dict[str, Any] | None] | None = getattr(request.state, _CLAIMS, None)
    if kept is not None and kept[0] == token:
        return kept[1]
    claims = read_session(token)
    setattr(request.state, _CLAIMS, (token, claims))
    return claims


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=get_settings().token_ttl_s,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        path="/",
    )


def end_session(request: Request, session: Session) -> None:
    """Revoke the session of this request's cookie (signing out)."""
    claims = request_claims(request)
    if claims is not None:
        web_sessions.revoke_session(session, sid=str(claims["sid"]), why="logout")


def replace_session(request: Request, session: Session, staff_id: int) -> tuple[str, str]:
    """:func:`issue_session` for someone signing in, ending the session this browser had
    (a shared workstation: the last person's session, whose cookie may have been
    copied, does not outlive the next sign-in)."""
    end_session(request, session)
    return issue_session(session, staff_id)


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )


def current_user(request: Request, session: Session) -> Principal | None:
    """The signed-in, still active staff member, or None (then the page redirects)."""
    claims = request_claims(request)
    if claims is None:
        return None
    try:
        staff_id = int(claims["sub"])
    except (TypeError, ValueError):
        return None
    found = web_sessions.signed_in_staff(session, sid=str(claims["sid"]), staff_id=staff_id)
    if found is None:
        return None  # unknown or disabled; signed out, revoked, or expired
    return principal_of(*found)


def session_csrf(request: Request) -> str:
    """The CSRF token of the signed-in session ("" without one)."""
    claims = request_claims(request)
    return str(claims["csrf"]) if claims else ""


def sign_note(request: Request, text: str) -> str:
    """The signature of a message a page sends itself through a redirect (an upload or
    a form refused), keyed by the session's CSRF token: a link made by anyone else cannot
    carry one, so a page never shows words a link put there (:func:`note_from`)."""
    key = session_csrf(request).encode("utf-8")
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def note_from(request: Request, name: str) -> str | None:
    """The message in the query parameter ``name`` if this session's page signed it
    (``<name>_sig``, :func:`sign_note`), else None."""
    text = request.query_params.get(name)
    given = request.query_params.get(f"{name}_sig", "")
    if not text or not session_csrf(request):
        return None
    signed = hmac.compare_digest(sign_note(request, text).encode(), given.encode("utf-8"))
    return text if signed else None


# --- CSRF -----------------------------------------------------------------------


def login_csrf(request: Request) -> str:
    """The double-submit value for the sign-in form (reuses the cookie when present)."""
    existing = request.cookies.get(CSRF_COOKIE)
    return existing if existing and len(existing) >= 32 else secrets.token_urlsafe(32)


def set_login_csrf_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        value,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/",
    )


def csrf_ok(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))
