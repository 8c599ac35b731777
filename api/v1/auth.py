"""Staff REST: sign in with a password for a bearer token (for scripts and the CLI)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import DBRead
from api.ratelimit import RateLimiter
from api.security import AuthError, create_token, find_staff, principal_for_staff
from models.passwords import verify_password
from models.settings import get_settings

router = APIRouter(prefix="/auth", tags=["auth 登录"])

# Guessing passwords: at most 10 attempts a minute per account and per client address.
_attempts = RateLimiter(10)


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105
    expires_in: int
    role: str
    unit: str | None


@router.post(
    "/token",
    response_model=TokenAnswer,
    summary="登录取令牌 Exchange a username and password for a bearer token",
    responses={401: {"description": "Wrong username or password"}},
)
def issue_token(request: Request, data: Credentials, session: DBRead) -> TokenAnswer:
    client = request.client.host if request.client else "?"
    _attempts.hit(f"user:{data.username.lower()}")
    _attempts.hit(f"ip:{client}")
    staff = find_staff(session, data.username)
    ok = verify_password(data.password, staff.password_hash if staff else None)
    if staff is None or not ok or not staff.active:
        raise AuthError("wrong username or password", "用户名或密码错误")
    principal = principal_for_staff(session, staff)
    ttl = get_settings().token_ttl_s
    token = create_token(subject=str(staff.id), role=staff.role.value, unit=principal.unit_code)
    return TokenAnswer(
        access_token=token, expires_in=ttl, role=principal.role, unit=principal.unit_code
    )
