"""Tokens and principals: who is calling, and what they may reach.

Staff tokens are JWTs signed with HS256 only (the algorithm is pinned when verifying,
so ``alg=none`` or an RSA/HMAC confusion is refused), audience ``tiaojie``, issuer
``tiaojie``, an expiry, the staff id as ``sub``, their ``role`` and ``unit`` code, and
``gen``: the account's ``token_generation`` when issued. Setting or resetting a password
or deactivating the account moves that number on, so every token issued before stops
working (at the latest when the API's principal cache lets go, five seconds). The
signing key is the token key of :mod:`models.keys` (separate from the keys of
sessions and field encryption). Open311 ``api_key`` values are tokens of the same kind with
role ``open311`` and a long expiry; they reach only the public endpoint, and those issued
before ``settings.open311_keys_since`` are refused (:func:`open311_client`).

The web pages reuse :func:`create_token`, :func:`verify_token` and
:func:`principal_for_staff`; FastAPI dependencies live in :mod:`api.deps`.

Who the caller is, what they reach and whose personal data they see is decided in
:mod:`models.access`; this module only turns a token into that principal.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlmodel import Session

from models import keys
from models.access import Principal, principal_for_staff
from models.enums import StaffRole
from models.errors import TiaojieError
from models.settings import get_settings
from models.staff import Staff

ALGORITHM = "HS256"
AUDIENCE = "tiaojie"
ISSUER = "tiaojie"
OPEN311_ROLE = "open311"
OPEN311_KEY_TTL = timedelta(days=365)


class AuthError(TiaojieError):
    """Missing, malformed, forged, expired or revoked credentials."""

    code = "unauthorized"
    http_status = 401


def _signing_key() -> bytes:
    return keys.key("token")


def encode_pinned(claims: dict[str, Any], key: bytes) -> str:
    """``claims`` signed with ``key`` by HS256, the one algorithm :func:`decode_pinned` takes."""
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode_pinned(
    token: str,
    key: bytes,
    *,
    audience: str,
    require: list[str],
    issuer: str | None = None,
    leeway: int = 0,
) -> dict[str, Any]:
    """The claims of a JWT signed with ``key``. Only HS256 is accepted (so ``alg=none``
    or an RSA/HMAC confusion is refused); the audience, the issuer when given, an
    unexpired ``exp`` (give or take ``leeway`` seconds) and every claim of ``require``
    must be there. Anything else raises :class:`jwt.PyJWTError`. Staff tokens and the
    web's session cookie (each with its own key and audience) are read by this."""
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[ALGORITHM],
        audience=audience,
        issuer=issuer,
        options={"require": require},
        leeway=leeway,
    )
    return claims


def create_token(
    *,
    subject: str,
    role: str,
    unit: str | None,
    ttl: timedelta | None = None,
    generation: int = 0,
) -> str:
    # Wall-clock time: token expiry is checked against the real clock, never the
    # virtual one used by tests and the policy simulator.
    now = datetime.now(UTC)
    lifetime = ttl if ttl is not None else timedelta(seconds=get_settings().token_ttl_s)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "role": role,
        "unit": unit,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
        "gen": generation,
    }
    return encode_pinned(claims, _signing_key())


def create_open311_key(*, client: str = "open311") -> str:
    """A public Open311 ``api_key`` (rate-limited; reaches only ``/open311/v2``)."""
    return create_token(subject=client, role=OPEN311_ROLE, unit=None, ttl=OPEN311_KEY_TTL)


def verify_token(token: str) -> dict[str, Any]:
    """Claims of a valid token, or :class:`AuthError`."""
    if not token or len(token) > 4096:
        raise AuthError("missing or oversized token", "缺少令牌或令牌过长")
    try:
        claims = decode_pinned(
            token,
            _signing_key(),
            audience=AUDIENCE,
            issuer=ISSUER,
            require=["exp", "sub", "aud", "iss", "role"],
            leeway=5,
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("the token has expired; sign in again", "令牌已过期，请重新登录") from None
    except jwt.PyJWTError:
        raise AuthError("invalid token", "令牌无效") from None
    role = claims.get("role")
    if not isinstance(role, str) or role not in {*StaffRole, OPEN311_ROLE}:
        raise AuthError("the token carries no valid role", "令牌未包含有效角色")
    if not isinstance(claims.get("sub"), str):
        raise AuthError("invalid token subject", "令牌主体无效")
    return claims


def open311_client(api_key: str, *, keys_since: datetime | None) -> str:
    """The client named by a valid Open311 ``api_key`` issued at or after ``keys_since``
    (``settings.open311_keys_since``: keys issued before it are withdrawn), else
    :class:`AuthError`."""
    claims = verify_token(api_key)
    if claims["role"] != OPEN311_ROLE:
        raise AuthError("api_key is not an Open311 key", "api_key 不是公众上报密钥")
    issued = claims.get("iat")
    if keys_since is not None and not (
        isinstance(issued, int) and issued >= keys_since.timestamp()
    ):
        raise AuthError(
            "this api_key was withdrawn; ask for a new one", "此 api_key 已停用，请申请新的密钥"
        )
    return str(claims["sub"])


def principal_from_claims(session: Session, claims: dict[str, Any]) -> Principal:
    role = claims["role"]
    if role == OPEN311_ROLE:
        return Principal.public(str(claims["sub"]))
    try:
        staff_id = int(claims["sub"])
    except ValueError:
        raise AuthError("invalid token subject", "令牌主体无效") from None
    staff = session.get(Staff, staff_id)
    if staff is None or not staff.active:
        raise AuthError("the account is unknown or disabled", "账号不存在或已停用")
    if staff.role != role:
        raise AuthError("the account's role changed; sign in again", "账号角色已变更，请重新登录")
    if claims.get("gen", 0) != staff.token_generation:
        raise AuthError(
            "the password was changed or reset after this token was issued; sign in again",
            "签发此令牌后密码已修改或重置，请重新登录",
        )
    principal = principal_for_staff(session, staff)
    if staff.role != StaffRole.ADMIN and principal.unit_path is None:
        raise AuthError("the account has no unit", "账号未归属任何单位")
    return principal


# How long a process keeps the principal behind a token (a disabled account or a changed
# role is refused at the latest this much later).
PRINCIPAL_CACHE_TTL_S = 5.0


def authenticate(session: Session, token: str) -> Principal:
    return principal_from_claims(session, verify_token(token))


__all__ = [
    "ALGORITHM",
    "AUDIENCE",
    "ISSUER",
    "OPEN311_ROLE",
    "AuthError",
    "Principal",
    "authenticate",
    "create_open311_key",
    "create_token",
    "open311_client",
    "principal_for_staff",
    "principal_from_claims",
    "verify_token",
]
