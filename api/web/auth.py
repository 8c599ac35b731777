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

import hmac
import secrets
import time
from typing import Any

import jwt
from fastapi import Request, Response
from sqlmodel import Session

from models import keys
from models.access import Principal, principal_for_staff
from models.settings import get_settings
from models.staff import Staff

SESSION_COOKIE = "tj_session"
CSRF_COOKIE = "tj_csrf"
AUDIENCE = "tiaojie-web"
ALGORITHM = "HS256"


def _key() -> bytes:
    return keys.key("session")


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def issue_session(staff_id: int) -> tuple[str, str]:
    """A new signed session token and its CSRF token."""
    settings = get_settings()
    now = int(time.time())
    csrf = secrets.token_urlsafe(32)
    claims: dict[str, Any] = {
        "sub": str(staff_id),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + settings.token_ttl_s,
        "sid": secrets.token_urlsafe(16),
        "csrf": csrf,
    }
    return jwt.encode(claims, _key(), algorithm=ALGORITHM), csrf


def read_session(token: str | None) -> dict[str, Any] | None:
    """The claims of a valid, unexpired session cookie, else None."""
    if not token:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _key(),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "aud", "csrf"]},
        )
    except jwt.PyJWTError:
        return None
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


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request)
    )


def current_user(request: Request, session: Session) -> Principal | None:
    """The signed-in, still active staff member, or None (then the page redirects)."""
    claims = read_session(request.cookies.get(SESSION_COOKIE))
    if claims is None:
        return None
    try:
        staff_id = int(claims["sub"])
    except (TypeError, ValueError):
        return None
    staff = session.get(Staff, staff_id)
    if staff is None or not staff.active:
        return None
    return principal_for_staff(session, staff)


def session_csrf(request: Request) -> str:
    """The CSRF token of the signed-in session ("" without one)."""
    claims = read_session(request.cookies.get(SESSION_COOKIE))
    return str(claims["csrf"]) if claims else ""


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
