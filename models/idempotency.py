"""Idempotency-Key records: the first answer to a creating POST, kept so that a retry
with the same key and body is answered the same and creates nothing.

The record is written in the same transaction as what the request creates; the unique
constraint on (principal, key) makes a concurrent retry fail instead of doubling.
Response bodies stored here never hold personal data in clear (answers to creating
requests show parties masked).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import JSON, Column, Field, Session, SQLModel, select

from models.types import UTCDateTime


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("principal", "key", name="uq_idempotency_principal_key"),)

    id: int | None = Field(default=None, primary_key=True)
    principal: str = Field(max_length=64)
    key: str = Field(max_length=200)
    method: str = Field(max_length=8)
    path: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    status_code: int
    response_body: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


def request_hash(*, method: str, path: str, body: bytes) -> str:
    """Hash of what was asked: method, path and the body (JSON canonicalised when it is
    JSON, so that key order and spacing do not make two equal requests differ)."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), b"\0", path.encode(), b"\0", canonical):
        digest.update(part)
    return digest.hexdigest()


def find_record(session: Session, *, principal: str, key: str) -> IdempotencyRecord | None:
    return session.exec(
        select(IdempotencyRecord).where(
            IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
        )
    ).first()


def save_record(
    session: Session,
    *,
    principal: str,
    key: str,
    method: str,
    path: str,
    request_hash: str,
    status_code: int,
    response_body: Any,
    at: datetime,
) -> IdempotencyRecord:
    record = IdempotencyRecord(
        principal=principal,
        key=key,
        method=method.upper(),
        path=path,
        request_hash=request_hash,
        status_code=status_code,
        response_body=response_body,
        created_at=at,
    )
    session.add(record)
    session.flush()
    return record
