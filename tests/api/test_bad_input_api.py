"""Bad input gets a 4xx with field-level messages in Chinese and English, and nothing is
stored. (The transport raises any server exception, so none of these reach a 500.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from models.case import Case
from models.event import CaseEvent
from models.party import Party
from tests.api.conftest import Api
from tests.api.test_cases_api import CASE
from tests.factories import ID_NUMBER


def with_party(**fields: Any) -> dict[str, Any]:
    party = {**CASE["parties"][0], **fields}  # type: ignore[index]
    return {**CASE, "parties": [party]}


BAD_BODIES: dict[str, tuple[dict[str, Any], str]] = {
    "bad ID check digit": (with_party(id_number=ID_NUMBER[:-1] + "3"), "parties.0.id_number"),
    "ID birth date not real": (with_party(id_number="110105194902300021"), "parties.0.id_number"),
    "full-width ID digits": (
        with_party(id_number="１１０１０５１９４９１２３１００２Ｘ"),
        "parties.0.id_number",
    ),
    "full-width phone": (with_party(phone="１３８００１３８０００"), "parties.0.phone"),
    "landline as mobile": (with_party(phone="010-12345678"), "parties.0.phone"),
    "unknown field": ({**CASE, "colour": "red"}, "colour"),
    "privileged status": ({**CASE, "status": "closed"}, "status"),
    "privileged unit": ({**CASE, "unit_id": 1}, "unit_id"),
    "privileged assignee": ({**CASE, "assignee_id": 1}, "assignee_id"),
    "privileged version": ({**CASE, "version": 9}, "version"),
    "privileged created_at": ({**CASE, "created_at": "2020-01-01T00:00:00Z"}, "created_at"),
    "privileged number": ({**CASE, "number": "JX-2026-000001"}, "number"),
    "wrong type people": ({**CASE, "people_affected": "many"}, "people_affected"),
    "negative people": ({**CASE, "people_affected": -3}, "people_affected"),
    "parties not a list": ({**CASE, "parties": "王小明"}, "parties"),
    "unknown category": ({**CASE, "category": "alien"}, "category"),
    "control characters": ({**CASE, "description": "噪声\x00\x07扰民"}, "description"),
    "empty description": ({**CASE, "description": ""}, "description"),
    "long description": ({**CASE, "description": "吵" * 4001}, "description"),
    "unknown party field": (with_party(email="a@b.cn"), "parties.0.email"),
}


@pytest.fixture
def counted(api: Api) -> Iterator[Api]:
    before = (api.count(Case), api.count(Party), api.count(CaseEvent))
    yield api
    assert (api.count(Case), api.count(Party), api.count(CaseEvent)) == before


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
def test_bad_bodies_are_refused_field_by_field(counted: Api, kind: str) -> None:
    body, field = BAD_BODIES[kind]
    r = counted.as_("workerA").post("/api/v1/cases", json=body)
    assert r.status_code == 422, r.text
    answer = r.json()
    assert answer["code"] in ("validation_error", "invalid_id_number", "invalid_phone")
    fields = {f["field"]: f for f in answer["fields"]}
    assert field in fields, answer
    problem = fields[field]
    assert problem["message"] and problem["message_en"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in problem["message"] + answer["message"])


def test_invalid_json(counted: Api) -> None:
    r = counted.as_("workerA").post(
        "/api/v1/cases",
        content=b'{"category": "labour",',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["fields"][0]["message"] == "请求体不是有效的 JSON"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_wrong_content_type(counted: Api, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    r = counted.as_("workerA").post(
        "/api/v1/cases", content=json.dumps(CASE).encode(), headers=headers
    )
    assert r.status_code == 415
    assert r.json()["code"] == "unsupported_media_type"


def test_one_megabyte_description(counted: Api) -> None:
    body = {**CASE, "description": "吵" * 350_000}
    r = counted.as_("workerA").post("/api/v1/cases", json=body)
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"


def test_chunked_body_over_the_limit(counted: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"category": "labour", "description": "'
        for _ in range(64):
            yield b"x" * 16384
        yield b'"}'

    r = counted.as_("workerA").post(
        "/api/v1/cases", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413


def test_privileged_fields_in_an_action_change_nothing(api: Api) -> None:
    worker = api.as_("workerA")
    case = worker.post("/api/v1/cases", json=CASE).json()["case"]
    events = api.count(CaseEvent)
    r = worker.post(
        f"/api/v1/cases/{case['id']}/withdraw",
        json={"version": case["version"], "reason": "x", "status": "closed", "assignee_id": 1},
    )
    assert r.status_code == 422
    assert {f["field"] for f in r.json()["fields"]} == {"status", "assignee_id"}
    assert api.count(CaseEvent) == events
    assert worker.get(f"/api/v1/cases/{case['id']}").json()["case"]["status"] == "submitted"


def test_sql_and_html_are_stored_literally(api: Api) -> None:
    text = "'); DROP TABLE cases; -- <script>alert('x')</script> <b>加粗</b> %_"
    worker = api.as_("workerA")
    r = worker.post(
        "/api/v1/cases",
        json={**CASE, "description": text, "address_text": "<img src=x onerror=alert(1)>"},
    )
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/json")
    shown = worker.get(f"/api/v1/cases/{r.json()['case']['id']}").json()["case"]
    assert shown["description"] == text
    assert shown["address_text"] == "<img src=x onerror=alert(1)>"
    assert api.count(Case) == 1
    found = worker.get("/api/v1/cases", params={"q": "DROP TABLE"}).json()
    assert found["total"] == 1
    assert worker.get("/api/v1/cases", params={"q": "' OR 1=1 --"}).json()["total"] == 0


def test_wrong_query_types(api: Api) -> None:
    worker = api.as_("workerA")
    for params in (
        {"page": "x"},
        {"page": 0},
        {"page_size": 1000},
        {"status": "nope"},
        {"overdue": "maybe"},
    ):
        r = worker.get("/api/v1/cases", params=params)
        assert r.status_code == 422, params
        assert r.json()["fields"]
    assert worker.get("/api/v1/cases/" + "9" * 40).status_code == 422
    assert worker.get("/api/v1/cases/99999").status_code == 404
