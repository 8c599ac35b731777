"""Helpers shared by the staff API routes: reach, presentation and idempotency."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import ColumnElement, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.deps import engine_of
from api.security import Principal
from models import clock, pii
from models.case import Case, CasePublic
from models.cases import find_unit, get_case, get_case_by_number
from models.db import is_sqlite, read_session, write_session
from models.enums import UnitLevel
from models.errors import ConflictError, NotFound, ValidationError
from models.idempotency import find_record, request_hash, save_record
from models.unit import Unit

K = TypeVar("K")
V = TypeVar("V")

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


class TTLCache(Generic[K, V]):
    """A small bounded map whose entries live ``ttl_s`` seconds (for what changes
    rarely and is read on every request: units by code)."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() >= entry[0]:
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.ttl_s, value)


@dataclass(frozen=True)
class UnitRef:
    """What a request needs of a unit, detached from any session."""

    id: int
    code: str
    level: UnitLevel
    path: str


UNIT_CACHE_TTL_S = 5.0


def unit_cache_of(request: Request) -> TTLCache[str, UnitRef]:
    cache: TTLCache[str, UnitRef] | None = getattr(request.app.state, "unit_cache", None)
    if cache is None:
        cache = request.app.state.unit_cache = TTLCache(UNIT_CACHE_TTL_S)
    return cache


def unit_by_code(session: Session, cache: TTLCache[str, UnitRef], code: str) -> UnitRef:
    """The unit with this code (cached a few seconds), or the place_code ValidationError."""
    ref = cache.get(code)
    if ref is None:
        unit = find_unit(session, code=code)
        assert unit.id is not None
        ref = UnitRef(id=unit.id, code=unit.code, level=unit.level, path=unit.path)
        cache.put(code, ref)
    return ref


def not_found(ref: object) -> NotFound:
    # The same answer whether the case does not exist or is out of the caller's reach.
    return NotFound(f"no case {ref}", f"案件 {ref} 不存在或无权查看")


def unit_path_of(session: Session, unit_id: int | None) -> str | None:
    if unit_id is None:
        return None
    unit = session.get(Unit, unit_id)
    return unit.path if unit else None


def load_case(session: Session, principal: Principal, ref: str) -> Case:
    """A case by id or number, if within the caller's reach; otherwise 404."""
    ref = ref.strip()
    try:
        if ref.isascii() and ref.isdigit() and len(ref) <= 12:
            case = get_case(session, case_id=int(ref))
        elif 0 < len(ref) <= 32:
            case = get_case_by_number(session, number=ref)
        else:
            raise not_found(ref[:32])
    except NotFound:
        raise not_found(ref[:32]) from None
    if not principal.reaches(case, place_path=unit_path_of(session, case.place_unit_id)):
        raise not_found(ref[:32])
    return case


def reach_clause(principal: Principal) -> ColumnElement[bool] | None:
    """SQL form of :meth:`Principal.reaches` (None: no restriction)."""
    if principal.is_admin:
        return None
    clauses: list[ColumnElement[bool]] = []
    if principal.unit_path:
        prefix = principal.unit_path
        places = select(Unit.id).where(col(Unit.path).startswith(prefix, autoescape=True))
        clauses.append(col(Case.unit_path).startswith(prefix, autoescape=True))
        clauses.append(col(Case.place_unit_id).in_(places))
    if principal.staff_id is not None:
        clauses.append(col(Case.created_by_id) == principal.staff_id)
        clauses.append(col(Case.assignee_id) == principal.staff_id)
    if not clauses:
        return col(Case.id) < 0
    return or_(*clauses)


def case_public(
    session: Session,
    case: Case,
    *,
    reveal: bool = False,
    unit_codes: Mapping[int, str] | None = None,
) -> CasePublic:
    """A case for staff; phone and ID numbers typed into its free text are masked unless
    ``reveal`` (the reader may see the case's personal data). ``unit_codes``: codes of
    units the caller already knows by id (looked up otherwise)."""
    assert case.id is not None
    shown = (lambda text: text) if reveal else pii.scrub_text

    def code_of(unit_id: int | None) -> str | None:
        if unit_id is None:
            return None
        if unit_codes is not None and unit_id in unit_codes:
            return unit_codes[unit_id]
        unit = session.get(Unit, unit_id)
        return unit.code if unit else None

    return CasePublic(
        id=case.id,
        number=case.number,
        category=case.category,
        priority=case.priority,
        status=case.status,
        version=case.version,
        channel=case.channel,
        description=shown(case.description),
        address_text=shown(case.address_text) if case.address_text else None,
        place_code=code_of(case.place_unit_id),
        unit_code=code_of(case.unit_id),
        assignee_id=case.assignee_id,
        escalation_level=case.escalation_level,
        is_group=case.is_group,
        people_affected=case.people_affected,
        response_due_at=case.response_due_at,
        resolution_due_at=case.resolution_due_at,
        created_at=case.created_at,
        updated_at=case.updated_at,
        closed_at=case.closed_at,
    )


def expected_version(request: Request, body_version: int | None) -> int:
    """The case version the caller last saw: ``version`` in the body or ``If-Match``."""
    if body_version is not None:
        return body_version
    header = request.headers.get("if-match")
    if header:
        value = header.strip().removeprefix("W/").strip('"')
        if value.isascii() and value.isdigit() and len(value) <= 9:
            return int(value)
        raise ValidationError(
            "If-Match must be the case version (a number)",
            "If-Match 应为案件版本号（数字）",
        )
    err = ValidationError(
        "send the case version you last saw (body field version, or If-Match)",
        "请提供您看到的案件版本号（请求体 version 字段或 If-Match 头）",
    )
    err.http_status = 428
    err.code = "precondition_required"
    return _raise(err)


def _raise(err: Exception) -> int:
    raise err


def _replay(record_status: int, record_body: Any, same: bool) -> JSONResponse:
    if not same:
        raise ConflictError(
            "this Idempotency-Key was already used with a different request",
            "此 Idempotency-Key 已用于另一个不同的请求，请换一个新的键",
        )
    return JSONResponse(
        record_body, status_code=record_status, headers={"Idempotent-Replayed": "true"}
    )


def _writer_limiter(request: Request) -> anyio.CapacityLimiter | None:
    """SQLite takes one writer at a time: requests that write wait their turn here, on
    the event loop, instead of each holding a worker thread that queues on the write
    lock (dozens of threads passing one lock and the GIL cost more than the writes).
    PostgreSQL writes in parallel: no limiter."""
    if not is_sqlite(engine_of(request)):
        return None
    loop = asyncio.get_running_loop()
    held: tuple[asyncio.AbstractEventLoop, anyio.CapacityLimiter] | None = getattr(
        request.app.state, "writer_limiter", None
    )
    if held is None or held[0] is not loop:
        held = (loop, anyio.CapacityLimiter(1))
        request.app.state.writer_limiter = held
    return held[1]


async def run_write_async(
    request: Request,
    principal: Principal,
    body: BaseModel | None,
    produce: Callable[[Session], tuple[int, Any]],
) -> JSONResponse:
    """:func:`run_write` from an ``async`` route: in a worker thread, one at a time on
    SQLite."""
    return await anyio.to_thread.run_sync(
        run_write, request, principal, body, produce, limiter=_writer_limiter(request)
    )


def run_write(
    request: Request,
    principal: Principal,
    body: BaseModel | None,
    produce: Callable[[Session], tuple[int, Any]],
) -> JSONResponse:
    """Run ``produce`` in one write transaction. With an ``Idempotency-Key`` header the
    answer is stored in the same transaction (unique per principal and key), so a retry
    is answered from the record and a concurrent retry cannot create twice."""
    engine = engine_of(request)
    key = request.headers.get("idempotency-key")
    if key is None:
        with write_session(engine) as session:
            status, payload = produce(session)
        return JSONResponse(payload, status_code=status)
    if not IDEMPOTENCY_KEY.match(key):
        raise ValidationError(
            "Idempotency-Key must be 1 to 200 visible ASCII characters",
            "Idempotency-Key 应为 1 至 200 个可见 ASCII 字符",
        )
    canonical = json.dumps(
        body.model_dump(mode="json") if body is not None else None,
        sort_keys=True,
        ensure_ascii=False,
    ).encode("utf-8")
    digest = request_hash(method=request.method, path=request.url.path, body=canonical)
    try:
        with write_session(engine) as session:
            record = find_record(session, principal=principal.ref, key=key)
            if record is not None:
                return _replay(
                    record.status_code, record.response_body, record.request_hash == digest
                )
            status, payload = produce(session)
            save_record(
                session,
                principal=principal.ref,
                key=key,
                method=request.method,
                path=request.url.path,
                request_hash=digest,
                status_code=status,
                response_body=payload,
                at=clock.now(),
            )
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        with read_session(engine) as session:
            record = find_record(session, principal=principal.ref, key=key)
        if record is None:
            raise
        return _replay(record.status_code, record.response_body, record.request_hash == digest)
    return JSONResponse(payload, status_code=status)
