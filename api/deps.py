"""FastAPI dependencies: the database engine, sessions and the calling principal.

``current_principal`` reads a bearer token (``Authorization: Bearer …``). The web pages
resolve their session cookie to the same :class:`api.security.Principal` with
:func:`api.security.authenticate` and can reuse ``engine_of``/``staff_principal``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from api.security import AuthError, Forbidden, Principal, authenticate
from models.db import read_session

bearer = HTTPBearer(auto_error=False, description="Staff token: POST /api/v1/auth/token")


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def db_read(request: Request) -> Iterator[Session]:
    with read_session(engine_of(request)) as session:
        yield session


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized(AuthError("sign in first (bearer token)", "请先登录（需要令牌）"))
    with read_session(engine_of(request)) as session:
        try:
            return authenticate(session, credentials.credentials)
        except AuthError as exc:
            raise _unauthorized(exc) from None


def _unauthorized(exc: AuthError) -> AuthError:
    exc.headers = {"WWW-Authenticate": 'Bearer realm="tiaojie"'}  # type: ignore[attr-defined]
    return exc


def staff_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_staff:
        raise Forbidden(
            "an Open311 api_key reaches only /open311/v2", "公众上报密钥只能用于 /open311/v2"
        )
    return principal


def writer_principal(principal: Annotated[Principal, Depends(staff_principal)]) -> Principal:
    if not principal.can_write:
        raise Forbidden(
            f"the {principal.role} role may read but not change cases",
            "当前角色只能查看，不能办理案件",
        )
    return principal


Staff = Annotated[Principal, Depends(staff_principal)]
Writer = Annotated[Principal, Depends(writer_principal)]
DBRead = Annotated[Session, Depends(db_read)]
