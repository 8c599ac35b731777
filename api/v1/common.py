"""Helpers shared by the staff API routes: reach, presentation and idempotency."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.cache import TTLCache
from api.deps import engine_of
from models import actions, clock, confidentiality, pii, tracking
from models.access import Principal, find_case
from models.case import Case, CasePublic
from models.db import is_sqlite, read_session, write_session
from models.enums import UnitLevel
from models.errors import ConflictError, ValidationError
from models.idempotency import find_record, request_hash, save_record
from models.unit import Unit, unit_by_code

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


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


def cached_units(cache: TTLCache[str, UnitRef]) -> Callable[[Session, str], UnitRef | None]:
    """A look-up of units by code that keeps what it found a few seconds."""

    def lookup(session: Session, code: str) -> UnitRef | None:
        ref = cache.get(code)
        if ref is None:
            unit = unit_by_code(session, code)
            if unit is None or unit.id is None:
                return None
            ref = UnitRef(id=unit.id, code=unit.code, level=unit.level, path=unit.path)
            cache.put(code, ref)
        return ref

    return lookup


def load_case(session: Session, principal: Principal, ref: str) -> Case:
    """A case by id or number, if within the caller's reach; otherwise 404."""
    return find_case(session, principal, ref)


def case_public(
    session: Session,
    case: Case,
    *,
    reveal: bool = False,
    unit_codes: Mapping[int, str] | None = None,
    details: bool = True,
) -> CasePublic:
    """A case for staff; phone and ID numbers typed into its free text are masked unless
    ``reveal`` (the reader may see the case's personal data). ``unit_codes``: codes of
    units the caller already knows by id (looked up otherwise). ``details`` False (a
    confidential case read from outside its unit): no description, no address."""
    assert case.id is not None
    shown = (lambda text: text) if reveal else pii.scrub_text
    if not details:
        shown = lambda _text: confidentiality.HIDDEN  # noqa: E731

    def code_of(unit_id: int | None) -> str | None:
        if unit_id is None:
            return None
        if unit_codes is not None and unit_id in unit_codes:
            return unit_codes[unit_id]
        unit = session.get(Unit, unit_id)
        return unit.code if unit else None

    # Every field not set here is the case's own column of the same name.
    return CasePublic.model_validate(
        case,
        update={
            "description": shown(case.description),
            "address_text": shown(case.address_text) if case.address_text else None,
            "place_code": code_of(case.place_unit_id),
            "unit_code": code_of(case.unit_id),
            "tracking_code": tracking.code_for(case.number) if case.tracking_hash else None,
        },
    )


def unit_codes(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """The codes of these units by id, in one query (a list's rows, for :func:`case_public`)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    found = session.exec(select(Unit.id, Unit.code).where(col(Unit.id).in_(wanted))).all()
    return {unit_id: code for unit_id, code in found if unit_id is not None}


# One rule each, in the domain (the web pages use the same).
details_visible = actions.details_visible
personal_data_visible = actions.personal_data_visible


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


@dataclass
class WriteJob:
    """One request's write: ``produce`` plus, with an ``Idempotency-Key``, the record
    that answers its retries (written in the same transaction)."""

    produce: Callable[[Session], tuple[int, Any]]
    principal_ref: str
    method: str
    path: str
    key: str | None = None
    digest: str | None = None

    def run(self, session: Session) -> JSONResponse:
        if self.key is not None:
            record = find_record(session, principal=self.principal_ref, key=self.key)
            if record is not None:
                return _replay(
                    record.status_code, record.response_body, record.request_hash == self.digest
                )
        status, payload = self.produce(session)
        if self.key is not None:
            assert self.digest is not None
            save_record(
                session,
                principal=self.principal_ref,
                key=self.key,
                method=self.method,
                path=self.path,
                request_hash=self.digest,
                status_code=status,
                response_body=payload,
                at=clock.now(),
            )
        return JSONResponse(payload, status_code=status)

    def after_integrity_error(self, engine: Engine, exc: IntegrityError) -> JSONResponse:
        """A concurrent request with the same key committed first: answer as it did."""
        if self.key is None:
            raise exc
        with read_session(engine) as session:
            record = find_record(session, principal=self.principal_ref, key=self.key)
        if record is None:
            raise exc
        return _replay(record.status_code, record.response_body, record.request_hash == self.digest)


def write_job(
    request: Request,
    principal: Principal,
    body: BaseModel | None,
    produce: Callable[[Session], tuple[int, Any]],
) -> WriteJob:
    job = WriteJob(
        produce=produce,
        principal_ref=principal.ref,
        method=request.method,
        path=request.url.path,
    )
    key = request.headers.get("idempotency-key")
    if key is None:
        return job
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
    job.key = key
    job.digest = request_hash(method=request.method, path=request.url.path, body=canonical)
    return job


def run_job(engine: Engine, job: WriteJob) -> JSONResponse:
    """One job in its own write transaction."""
    try:
        with write_session(engine) as session:
            return job.run(session)
    except IntegrityError as exc:
        return job.after_integrity_error(engine, exc)


def run_write(
    request: Request,
    principal: Principal,
    body: BaseModel | None,
    produce: Callable[[Session], tuple[int, Any]],
) -> JSONResponse:
    """Run ``produce`` in one write transaction. With an ``Idempotency-Key`` header the
    answer is stored in the same transaction (unique per principal and key), so a retry
    is answered from the record and a concurrent retry cannot create twice."""
    return run_job(engine_of(request), write_job(request, principal, body, produce))


GROUP_COMMIT_MAX = 32

_Outcome = tuple[JSONResponse | None, BaseException | None]


class GroupCommit:
    """Writes of concurrent requests on SQLite, committed together (group commit).

    SQLite has one writer at a time. Requests that write queue here, on the event loop;
    one worker thread takes every request waiting (up to ``GROUP_COMMIT_MAX``) and runs
    each in its own SAVEPOINT of one transaction, then commits once. Every request's
    rows (case, parties, event, outbox row, idempotency record) are still written
    together or not at all (a request that fails rolls back to its savepoint, the
    others go on), and every answer is sent only after the commit that holds its rows.
    A request alone is a batch of one: an idle server answers as fast as before; a busy
    one commits (and writes the WAL pages that requests share) once per batch."""

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
        self.engine = engine
        self.loop = loop
        self.waiting: list[tuple[WriteJob, asyncio.Future[JSONResponse]]] = []
        self.draining = False
        self.drainer: asyncio.Task[None] | None = None

    async def submit(self, job: WriteJob) -> JSONResponse:
        future: asyncio.Future[JSONResponse] = self.loop.create_future()
        self.waiting.append((job, future))
        if not self.draining:
            self.draining = True
            # Kept: the loop holds only a weak reference to a running task.
            self.drainer = self.loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.waiting:
                batch = self.waiting[:GROUP_COMMIT_MAX]
                del self.waiting[:GROUP_COMMIT_MAX]
                jobs = [job for job, _ in batch]
                try:
                    outcomes = await anyio.to_thread.run_sync(self.run_batch, jobs)
                except BaseException as exc:  # the worker thread itself failed
                    outcomes = [(None, exc)] * len(batch)
                for (_, future), (answer, error) in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if error is not None:
                        future.set_exception(error)
                    else:
                        assert answer is not None
                        future.set_result(answer)
        finally:
            self.draining = False

    def run_batch(self, jobs: list[WriteJob]) -> list[_Outcome]:
        """Run ``jobs`` (in a worker thread): one transaction, one savepoint each."""
        if len(jobs) == 1:
            return [self._alone(jobs[0])]
        outcomes: list[_Outcome] = [(None, None)] * len(jobs)
        try:
            with write_session(self.engine) as session:
                for i, job in enumerate(jobs):
                    try:
                        with session.begin_nested():
                            outcomes[i] = (job.run(session), None)
                    except Exception as exc:
                        outcomes[i] = (None, exc)
                    # Each request's rows are flushed (or rolled back) by now: forget its
                    # objects, so that a row id freed by a rollback and given again to
                    # the next request cannot meet a stale object of the same id.
                    session.expunge_all()
        except Exception as exc:
            # The commit failed: nothing of this batch is stored.
            return [(None, exc)] * len(jobs)
        for i, (job, (_, error)) in enumerate(zip(jobs, outcomes, strict=True)):
            if isinstance(error, IntegrityError):
                outcomes[i] = self._alone(job, error)
        return outcomes

    def _alone(self, job: WriteJob, error: IntegrityError | None = None) -> _Outcome:
        try:
            if error is not None:
                return (job.after_integrity_error(self.engine, error), None)
            return (run_job(self.engine, job), None)
        except Exception as exc:
            return (None, exc)


def _group_commit(request: Request) -> GroupCommit:
    loop = asyncio.get_running_loop()
    held: GroupCommit | None = getattr(request.app.state, "group_commit", None)
    if held is None or held.loop is not loop:
        held = GroupCommit(engine_of(request), loop)
        request.app.state.group_commit = held
    return held


async def run_write_async(
    request: Request,
    principal: Principal,
    body: BaseModel | None,
    produce: Callable[[Session], tuple[int, Any]],
) -> JSONResponse:
    """:func:`run_write` from an ``async`` route. On SQLite the writes of concurrent
    requests are committed together (:class:`GroupCommit`); elsewhere each runs in its
    own transaction in a worker thread."""
    job = write_job(request, principal, body, produce)
    engine = engine_of(request)
    if not is_sqlite(engine):
        return await anyio.to_thread.run_sync(run_job, engine, job)
    return await _group_commit(request).submit(job)
