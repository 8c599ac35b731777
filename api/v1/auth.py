"""Staff REST: sign in with a password for a bearer token (for scripts and the CLI)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.client import client_address
from api.deps import DBRead, engine_of
from api.ratelimit import RateLimited
from api.security import AuthError, create_token, principal_for_staff
from models.login import sign_in
from models.settings import get_settings

router = APIRouter(prefix="/auth", tags=["auth 登录"])


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
    responses={
        401: {"description": "Wrong username or password"},
        429: {"description": "Too many attempts for this name or address; see Retry-After"},
    },
)
def issue_token(request: Request, data: Credentials, session: DBRead) -> TokenAnswer:
    # The rules (limit, back-off, constant time, audit) are the sign-in service's.
    attempt = sign_in(
        engine_of(request),
        username=data.username,
        password=data.password,
        address=client_address(request),
        channel="api",
        per_minute=request.app.state.settings.signin_per_minute,
    )
    if attempt.retry_after_s is not None:
        raise RateLimited(attempt.retry_after_s)
    if attempt.staff is None:
        raise AuthError("wrong username or password", "用户名或密码错误")
    principal = principal_for_staff(session, attempt.staff)
    ttl = get_settings().token_ttl_s
    token = create_token(
        subject=str(principal.staff_id),
        role=attempt.staff.role.value,
        unit=principal.unit_code,
        generation=attempt.staff.token_generation,
    )
    return TokenAnswer(
        access_token=token, expires_in=ttl, role=principal.role, unit=principal.unit_code
    )
