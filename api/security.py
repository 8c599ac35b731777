"""Tokens and principals: who is calling, and what they may reach.

Staff tokens are JWTs signed with HS256 only (the algorithm is pinned when verifying,
so ``alg=none`` or an RSA/HMAC confusion is refused), audience ``tiaojie``, issuer
``tiaojie``, an expiry, the staff id as ``sub``, their ``role`` and ``unit`` code. The
signing key is the token key of :mod:`models.keys` (separate from the keys of
sessions and field encryption). Open311 ``api_key`` values are tokens of the same kind with
role ``open311`` and a long expiry; they reach only the public endpoint.

The web pages reuse :func:`create_token`, :func:`verify_token` and
:func:`principal_for_staff`; FastAPI dependencies live in :mod:`api.deps`.

Who sees personal data in clear (the rule, also in the README): the case's assignee,
and mediators of the unit handling the case. Everyone else (workers, supervisors,
instructors, volunteers, admins) sees masked values; admins administer, they do not
read residents' ID numbers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlmodel import Session

from models import keys
from models.case import Case
from models.enums import StaffRole
from models.errors import TiaojieError
from models.lifecycle import Actor
from models.settings import get_settings
from models.staff import Staff
from models.unit import Unit

ALGORITHM = "HS256"
AUDIENCE = "tiaojie"
ISSUER = "tiaojie"
OPEN311_ROLE = "open311"
OPEN311_KEY_TTL = timedelta(days=365)

# Roles that may only read (and record nothing on a case).
READ_ONLY_ROLES = frozenset({StaffRole.INSTRUCTOR, StaffRole.VOLUNTEER, StaffRole.PARTY_MEMBER})


class AuthError(TiaojieError):
    """Missing, malformed, forged, expired or revoked credentials."""

    code = "unauthorized"
    http_status = 401


class Forbidden(TiaojieError):
    """Signed in, but this role may not do this (on something within reach)."""

    code = "forbidden"
    http_status = 403


@dataclass(frozen=True)
class Principal:
    """The caller: a staff member (or service account) or a public Open311 client."""

    staff_id: int | None
    username: str
    role: str  # a StaffRole value, or "open311"
    unit_id: int | None
    unit_code: str | None
    unit_path: str | None
    actor: Actor

    @property
    def ref(self) -> str:
        """Stable identity for idempotency records and rate limits."""
        return f"staff:{self.staff_id}" if self.staff_id is not None else self.username

    @property
    def is_admin(self) -> bool:
        return self.role == StaffRole.ADMIN.value

    @property
    def is_staff(self) -> bool:
        return self.role != OPEN311_ROLE

    @property
    def can_write(self) -> bool:
        return self.is_staff and self.role not in {r.value for r in READ_ONLY_ROLES}

    def reaches_path(self, path: str | None) -> bool:
        """Whether a unit path is inside the caller's subtree."""
        if self.is_admin:
            return True
        if not self.unit_path or not path:
            return False
        return path.startswith(self.unit_path)

    def reaches(self, case: Case, *, place_path: str | None = None) -> bool:
        """Staff reach a case handled in their subtree or happening in it (its place), a
        case assigned to them, and a case they recorded. Admins reach every case."""
        if not self.is_staff:
            return False
        if self.is_admin:
            return True
        if self.reaches_path(case.unit_path) or self.reaches_path(place_path):
            return True
        return self.staff_id is not None and self.staff_id in (
            case.assignee_id,
            case.created_by_id,
        )

    def may_see_personal_data(self, case: Case) -> bool:
        if not self.is_staff or self.staff_id is None:
            return False
        if case.assignee_id is not None and case.assignee_id == self.staff_id:
            return True
        return (
            self.role == StaffRole.MEDIATOR.value
            and case.unit_id is not None
            and case.unit_id == self.unit_id
        )


def _signing_key() -> bytes:
    return keys.key("token")


def create_token(
    *,
    subject: str,
    role: str,
    unit: str | None,
    ttl: timedelta | None = None,
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
    }
    return jwt.encode(claims, _signing_key(), algorithm=ALGORITHM)


def create_open311_key(*, client: str = "open311") -> str:
    """A public Open311 ``api_key`` (rate-limited; reaches only ``/open311/v2``)."""
    return create_token(subject=client, role=OPEN311_ROLE, unit=None, ttl=OPEN311_KEY_TTL)


def verify_token(token: str) -> dict[str, Any]:
    """Claims of a valid token, or :class:`AuthError`."""
    if not token or len(token) > 4096:
        raise AuthError("missing or oversized token", "缺少令牌或令牌过长")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _signing_key(),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "sub", "aud", "iss", "role"]},
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


def staff_actor(staff: Staff, unit: Unit | None) -> Actor:
    return Actor(
        kind="staff", staff_id=staff.id, role=staff.role, unit_path=unit.path if unit else None
    )


def principal_for_staff(session: Session, staff: Staff) -> Principal:
    """The principal of a staff member as stored now (role and unit from the database)."""
    unit = session.get(Unit, staff.unit_id) if staff.unit_id is not None else None
    return Principal(
        staff_id=staff.id,
        username=staff.username,
        role=staff.role.value,
        unit_id=unit.id if unit else None,
        unit_code=unit.code if unit else None,
        unit_path=unit.path if unit else None,
        actor=staff_actor(staff, unit),
    )


def principal_from_claims(session: Session, claims: dict[str, Any]) -> Principal:
    role = claims["role"]
    if role == OPEN311_ROLE:
        return Principal(
            staff_id=None,
            username=f"open311:{claims['sub']}",
            role=OPEN311_ROLE,
            unit_id=None,
            unit_code=None,
            unit_path=None,
            actor=Actor.public(),
        )
    try:
        staff_id = int(claims["sub"])
    except ValueError:
        raise AuthError("invalid token subject", "令牌主体无效") from None
    staff = session.get(Staff, staff_id)
    if staff is None or not staff.active:
        raise AuthError("the account is unknown or disabled", "账号不存在或已停用")
    if staff.role.value != role:
        raise AuthError("the account's role changed; sign in again", "账号角色已变更，请重新登录")
    principal = principal_for_staff(session, staff)
    if role != StaffRole.ADMIN.value and principal.unit_path is None:
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
    "Forbidden",
    "Principal",
    "authenticate",
    "create_open311_key",
    "create_token",
    "principal_for_staff",
    "principal_from_claims",
    "verify_token",
]
