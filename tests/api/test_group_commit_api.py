"""Group commit of concurrent creating requests (SQLite): one transaction, one
savepoint per request. A request that fails rolls back alone; the others are stored
whole (case, parties, event, outbox row, idempotency record); a retry queued behind its
first attempt in the same batch is answered from the first one's record."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlmodel import Session, col, select

from api.v1.common import GroupCommit, WriteJob
from models.case import Case, CaseCreate
from models.cases import create_case_with_parties
from models.errors import ValidationError
from models.event import CaseEvent, Outbox
from models.idempotency import IdempotencyRecord
from models.lifecycle import Actor, verify_chain
from models.party import Party
from tests.api.conftest import Api
from tests.api.test_cases_api import CASE


def _counts(api: Api) -> dict[str, int]:
    return {
        "cases": api.count(Case),
        "parties": api.count(Party),
        "events": api.count(CaseEvent),
        "outbox": api.count(Outbox),
        "records": api.count(IdempotencyRecord),
    }


def _chains_intact(api: Api) -> None:
    with Session(api.engine) as s:
        ids = s.exec(select(Case.id)).all()
        numbers = s.exec(select(Case.number)).all()
        assert len(set(numbers)) == len(numbers)
        for case_id in ids:
            assert case_id is not None
            assert verify_chain(s, case_id=case_id) == []


def test_concurrent_creates_with_failures_mixed_in(api: Api) -> None:
    headers = api.headers("workerA")

    def submit(i: int) -> tuple[int, dict[str, Any]]:
        body = {**CASE, "description": f"{CASE['description']}（{i}）"}
        if i % 3 == 0:
            body["place_code"] = "NO-SUCH-PLACE"
        extra = {"Idempotency-Key": f"mixed-{i}"} if i % 2 else {}
        r = api.client.post("/api/v1/cases", json=body, headers={**headers, **extra})
        return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(submit, range(36)))
    good = [a for i, a in enumerate(answers) if i % 3]
    bad = [a for i, a in enumerate(answers) if not i % 3]
    assert {status for status, _ in good} == {201}
    assert {status for status, _ in bad} == {422}
    assert all(body["code"] == "validation_error" for _, body in bad)
    assert len({body["case"]["id"] for _, body in good}) == len(good)
    assert _counts(api) == {
        "cases": 24,
        "parties": 48,
        "events": 24,
        "outbox": 24,
        "records": 12,
    }
    _chains_intact(api)


def _job(data: CaseCreate, *, key: str | None = None, fail_after_writing: bool = False) -> WriteJob:
    def produce(session: Session) -> tuple[int, Any]:
        case, _parties = create_case_with_parties(session, data=data, actor=Actor.system())
        if fail_after_writing:
            raise ValidationError("refused after writing", "写入后拒绝")
        return 201, {"id": case.id, "number": case.number}

    return WriteJob(
        produce=produce,
        principal_ref="staff:1",
        method="POST",
        path="/api/v1/cases",
        key=key,
        digest="d" * 64 if key else None,
    )


def test_one_batch_each_request_whole_or_not_at_all(api: Api) -> None:
    data = CaseCreate.model_validate(CASE)
    loop = asyncio.new_event_loop()
    try:
        batch = GroupCommit(api.engine, loop)
        outcomes = batch.run_batch(
            [
                _job(data),
                _job(data, fail_after_writing=True),
                _job(data, key="k-1"),
                _job(data, key="k-1"),  # a retry queued behind the first attempt
            ]
        )
    finally:
        loop.close()
    answers = [answer for answer, _ in outcomes]
    errors = [error for _, error in outcomes]
    assert errors[0] is None and errors[2] is None and errors[3] is None
    assert isinstance(errors[1], ValidationError)
    assert answers[0] is not None and answers[0].status_code == 201
    assert answers[2] is not None and answers[3] is not None
    assert answers[3].headers.get("Idempotent-Replayed") == "true"
    assert answers[3].body == answers[2].body
    # The failed request's case, parties, event and outbox row are all gone.
    assert _counts(api) == {"cases": 2, "parties": 4, "events": 2, "outbox": 2, "records": 1}
    with Session(api.engine) as s:
        steps = s.exec(select(Outbox.step).order_by(col(Outbox.id))).all()
    assert steps == ["intake", "intake"]
    _chains_intact(api)
