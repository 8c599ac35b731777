"""Idempotency-Key: a retry answers the first result and creates nothing; another body
with the same key is refused; concurrent retries create one case."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from models.case import Case
from models.event import CaseEvent, Outbox
from models.idempotency import IdempotencyRecord
from models.party import Party
from tests.api.conftest import Api
from tests.api.test_cases_api import CASE
from tests.factories import PHONE


def test_retry_replays_the_first_answer(api: Api) -> None:
    worker = api.as_("workerA")
    first = worker.post("/api/v1/cases", json=CASE, headers={"Idempotency-Key": "intake-001"})
    assert first.status_code == 201
    counts = (api.count(Case), api.count(Party), api.count(CaseEvent), api.count(Outbox))
    again = worker.post("/api/v1/cases", json=CASE, headers={"Idempotency-Key": "intake-001"})
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (api.count(Case), api.count(Party), api.count(CaseEvent), api.count(Outbox)) == counts
    # The stored answer holds no personal data in clear.
    assert api.count(IdempotencyRecord) == 1
    from sqlmodel import Session, select

    with Session(api.engine) as s:
        stored = s.exec(select(IdempotencyRecord)).one()
    assert PHONE not in str(stored.response_body)


def test_same_key_other_body_is_refused(api: Api) -> None:
    worker = api.as_("workerA")
    worker.post("/api/v1/cases", json=CASE, headers={"Idempotency-Key": "k-1"})
    before = api.count(Case)
    other = worker.post(
        "/api/v1/cases",
        json={**CASE, "description": "另一件事：楼上漏水"},
        headers={"Idempotency-Key": "k-1"},
    )
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["message"]
    assert api.count(Case) == before


def test_keys_belong_to_their_caller(api: Api) -> None:
    a = api.as_("workerA").post("/api/v1/cases", json=CASE, headers={"Idempotency-Key": "shared"})
    b = api.as_("mediatorA").post("/api/v1/cases", json=CASE, headers={"Idempotency-Key": "shared"})
    assert a.status_code == b.status_code == 201
    assert a.json()["case"]["id"] != b.json()["case"]["id"]


def test_bad_key_refused(api: Api) -> None:
    r = api.as_("workerA").post("/api/v1/cases", json=CASE, headers={"Idempotency-Key": "x" * 201})
    assert r.status_code == 422
    assert api.count(Case) == 0


def test_concurrent_retries_create_one_case(api: Api) -> None:
    headers = api.headers("workerA", **{"Idempotency-Key": "race-1"})

    def submit(_: int) -> tuple[int, int]:
        r = api.client.post("/api/v1/cases", json=CASE, headers=headers)
        return r.status_code, r.json()["case"]["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(submit, range(16)))
    assert {status for status, _ in answers} == {201}
    assert len({case_id for _, case_id in answers}) == 1
    assert api.count(Case) == 1
    assert api.count(CaseEvent) == 1
