"""The intake baseline: the smallest FastAPI + SQLModel endpoint that inserts the same
``cases`` row, with none of the real app's work (no auth, no party encryption, no
case number counter, no event, no outbox, no idempotency).

SQLite gets the same journal settings as the real app (WAL, synchronous=NORMAL) so the
comparison measures the application, not the journal mode.

Run: ``BENCH_DB_URL=sqlite:///x.db uvicorn bench.baseline_app:app``
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event
from sqlmodel import Session, SQLModel, create_engine

import models.tables  # noqa: F401  (every table, so the foreign keys resolve)
from models.case import Case
from models.enums import Category

engine = create_engine(
    os.environ.get("BENCH_DB_URL", "sqlite:///baseline.db"),
    connect_args={"check_same_thread": False, "timeout": 30},
)


@event.listens_for(engine, "connect")
def _pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class CaseIn(SQLModel):
    category: Category
    description: str
    address_text: str | None = None
    people_affected: int = 1


app = FastAPI()


@app.post("/cases", status_code=201)
def post_case(data: CaseIn) -> dict[str, Any]:
    now = datetime.now(UTC)
    case = Case(**data.model_dump(), number=uuid.uuid4().hex[:20], created_at=now, updated_at=now)
    with Session(engine) as session:
        session.add(case)
        session.commit()
        return {"id": case.id, "number": case.number}


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
