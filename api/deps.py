"""FastAPI dependencies: the database engine, sessions and the calling principal.

``current_principal`` reads a bearer token (``Authorization: Bearer …``). The web pages
resolve their session cookie to the same :class:`models.access.Principal` with
:func:`api.security.authenticate` and can reuse ``engine_of``/``staff_principal``.

A token already resolved is answered from the app's principal cache
(:class:`api.cache.TTLCache`) for a few seconds (never past the token's expiry), so that
a busy client does not cost a staff and unit look-up per request; a disabled account or
a changed role is refused at the latest ``PRINCIPAL_CACHE_TTL_S`` seconds later. The
dependencies are ``async`` so that a request does not hop to a worker thread for each of
them; only a cache miss reads the database, in a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.cache import TTLCache
from api.security import (
    PRINCIPAL_CACHE_TTL_S,
    AuthError,
    principal_from_claims,
    verify_token,
)
from models.access import Principal, find_case, require_writer
from models.db import read_session
from models.errors import PermissionDenied

bearer = HTTPBearer(auto_error=False, description="Staff token: POST /api/v1/auth/token")


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def db_read(request: Request) -> Iterator[Session]:
    with read_session(engine_of(request)) as session:
        yield session


def principal_cache_of(request: Request) -> TTLCache[str, Principal]:
    cache: TTLCache[str, Principal] | None = getattr(request.app.state, "principal_cache", None)
    if cache is None:
        cache = request.app.state.principal_cache = TTLCache(PRINCIPAL_CACHE_TTL_S)
    return cache


def _resolve(engine: Engine, claims: dict[str, Any]) -> Principal:
    with read_session(engine) as session:
        return principal_from_claims(session, claims)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized(AuthError("sign in first (bearer token)", "请先登录（需要令牌）"))
    token = credentials.credentials
    cache = principal_cache_of(request)
    cached = cache.get(token)
    if cached is not None:
        return cached
    try:
        claims = verify_token(token)
        principal = await run_in_threadpool(_resolve, engine_of(request), claims)
    except AuthError as exc:
        raise _unauthorized(exc) from None
    cache.put(token, principal, expires_at=float(claims["exp"]))
    return principal


def _unauthorized(exc: AuthError) -> AuthError:
    exc.headers = {"WWW-Authenticate": 'Bearer realm="tiaojie"'}  # type: ignore[attr-defined]
    return exc


def _require_staff(principal: Principal) -> Principal:
    if not principal.is_staff:
        raise PermissionDenied(
            "an Open311 api_key reaches only /open311/v2", "公众上报密钥只能用于 /open311/v2"
        )
    return principal


async def staff_principal(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    return _require_staff(principal)


async def writer_principal(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    # Directly on current_principal (one dependency level less per write request).
    require_writer(principal)
    return principal


Staff = Annotated[Principal, Depends(staff_principal)]
Writer = Annotated[Principal, Depends(writer_principal)]
DBRead = Annotated[Session, Depends(db_read)]


def case_in_reach(
    request: Request,
    case_ref: Annotated[str, Path(max_length=32, description="case id or number")],
    principal: Annotated[Principal, Depends(staff_principal)],
) -> None:
    """Router dependency of every ``/cases/{case_ref}/…`` route: a case out of reach
    answers 404 like a missing one *before* the body and the other path parameters are
    validated, so that no answer (422, 403, …) tells a foreign case from a missing one."""
    with read_session(engine_of(request)) as session:
        find_case(session, principal, case_ref)


CaseInReach = Depends(case_in_reach)

# The id of a row in a path (an attachment, a photo, a simulation, a mediator): a number
# the database holds (an int beyond 64 bits answered 500 when bound to the query).
RowId = Annotated[int, Path(ge=1, le=2_000_000_000)]
