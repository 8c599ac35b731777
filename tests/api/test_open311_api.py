"""Open311 GeoReport v2: every endpoint in JSON and XML, the spec's fields and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from api.security import create_open311_key, create_token
from models import triage
from models.case import Case
from models.db import write_session
from models.lifecycle import Actor
from models.party import Party
from tests.api.conftest import Api, make_api
from tests.factories import ID_NUMBER, PHONE

BASE = "/open311/v2"
REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}


@pytest.fixture
def key() -> str:
    return create_open311_key(client="test-app")


def form(key: str, **extra: str) -> dict[str, str]:
    return {
        "api_key": key,
        "service_code": "environment",
        "address_id": "BA1",
        "description": f"工地夜间施工噪声扰民，联系我 {PHONE}，身份证 {ID_NUMBER}",
        "first_name": "小明",
        "last_name": "王",
        "phone": PHONE,
        "email": "resident@example.cn",
        "attribute[people_affected]": "12",
        "attribute[respondent]": "江心市某建筑工地",
        "attribute[urgency]": "high",
        **extra,
    }


def xml(r: Any) -> ET.Element:
    assert r.headers["content-type"].startswith("text/xml"), r.headers
    return ET.fromstring(r.content)


def errors_of(r: Any, fmt: str) -> list[dict[str, str]]:
    if fmt == "json":
        body = r.json()
        assert isinstance(body, list)
        return [{"code": e["code"], "description": e["description"]} for e in body]
    root = xml(r)
    assert root.tag == "errors"
    return [
        {"code": e.findtext("code") or "", "description": e.findtext("description") or ""}
        for e in root.findall("error")
    ]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_services_and_definitions(api: Api, fmt: str) -> None:
    r = api.client.get(f"{BASE}/services.{fmt}")
    assert r.status_code == 200
    if fmt == "json":
        services = r.json()
    else:
        root = xml(r)
        assert root.tag == "services"
        services = [{c.tag: c.text for c in s} for s in root.findall("service")]
    codes = {s["service_code"] for s in services}
    assert {"relocation", "labour", "environment"} <= codes
    for s in services:
        assert {
            "service_code",
            "service_name",
            "description",
            "metadata",
            "type",
            "keywords",
            "group",
        } <= set(s)
        assert s["type"] == "realtime" and str(s["metadata"]).lower() == "true"

    r = api.client.get(f"{BASE}/services/labour.{fmt}")
    assert r.status_code == 200
    if fmt == "json":
        definition = r.json()
        attrs = definition["attributes"]
    else:
        root = xml(r)
        assert root.tag == "service_definition"
        definition = {"service_code": root.findtext("service_code")}
        attrs = [
            {
                **{c.tag: c.text for c in a if c.tag != "values"},
                "values": [{v.findtext("key"): v.findtext("name")} for v in a.find("values") or []],
            }
            for a in root.find("attributes") or []
        ]
    assert definition["service_code"] == "labour"
    by_code = {a["code"]: a for a in attrs}
    assert by_code["people_affected"]["datatype"] == "number"
    assert by_code["respondent"]["datatype"] == "string"
    assert by_code["urgency"]["datatype"] == "singlevaluelist"
    assert len(by_code["urgency"]["values"]) == 3
    for a in attrs:
        assert {
            "variable",
            "code",
            "datatype",
            "required",
            "datatype_description",
            "order",
            "description",
        } <= set(a)

    r = api.client.get(f"{BASE}/services/unicorns.{fmt}")
    assert r.status_code == 404
    assert errors_of(r, fmt)[0]["code"] == "404"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_file_a_request_and_read_it_back(api: Api, key: str, fmt: str, vclock: object) -> None:
    r = api.client.post(f"{BASE}/requests.{fmt}", data=form(key))
    assert r.status_code == 200, r.text
    if fmt == "json":
        [answer] = r.json()
    else:
        root = xml(r)
        assert root.tag == "service_requests"
        answer = {c.tag: c.text for c in root.find("request")}  # type: ignore[union-attr]
    number, token = answer["service_request_id"], answer["token"]
    assert number.startswith("JX-") and token and "service_notice" in answer
    assert PHONE not in r.text and "王小明" not in r.text

    # The complainant became a party, stored encrypted; the email was not kept.
    with write_session(api.engine) as s:
        case = s.exec(Case.__table__.select()).first()  # type: ignore[attr-defined]
        assert case is not None
        parties = s.exec(Party.__table__.select()).all()  # type: ignore[attr-defined]
        assert len(parties) == 2
        assert "resident@example.cn" not in str(parties) and PHONE not in str(parties)
        triage.triage_case(s, case_id=case.id, actor=Actor.system())

    r = api.client.get(f"{BASE}/tokens/{token}.{fmt}")
    assert r.status_code == 200
    got = r.json()[0] if fmt == "json" else {c.tag: c.text for c in xml(r).find("request")}  # type: ignore[union-attr]
    assert got == {"service_request_id": number, "token": token}

    for url in (
        f"{BASE}/requests/{number}.{fmt}",
        f"{BASE}/requests.{fmt}",
        f"{BASE}/requests.{fmt}?service_request_id={number},JX-0000-000000",
        f"{BASE}/requests.{fmt}?status=open&service_code=environment",
    ):
        r = api.client.get(url)
        assert r.status_code == 200, (url, r.text)
        if fmt == "json":
            rows = r.json()
        else:
            root = xml(r)
            assert root.tag == "service_requests"
            rows = [{c.tag: c.text for c in req} for req in root.findall("request")]
        assert len(rows) == 1, url
        row = rows[0]
        assert set(row) == REQUEST_FIELDS
        assert row["service_request_id"] == number
        assert row["status"] == "open"
        assert row["address_id"] == "BA1"
        assert row["agency_responsible"]  # the handling unit's name after triage
        assert row["expected_datetime"].endswith("+08:00")
        assert row["requested_datetime"].endswith("+08:00")
        assert PHONE not in r.text and ID_NUMBER not in r.text
        assert "138****8000" in row["description"]
        assert "王小明" not in r.text and "小明" not in r.text

    assert len(_rows(api.client.get(f"{BASE}/requests.{fmt}?status=closed"), fmt)) == 0
    r = api.client.get(f"{BASE}/servicerequestupdates.{fmt}")
    assert r.status_code == 200
    updates = _rows(r, fmt, item="request_update")
    assert updates and updates[0]["service_request_id"] == number
    assert {
        "update_id",
        "service_request_id",
        "status",
        "updated_datetime",
        "description",
        "media_url",
    } <= set(updates[0])
    if fmt == "xml":
        assert xml(r).tag == "service_request_updates"


def _rows(r: Any, fmt: str, item: str = "request") -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    if fmt == "json":
        return list(r.json())
    return [{c.tag: c.text for c in req} for req in xml(r).findall(item)]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_errors_follow_the_spec(api: Api, key: str, fmt: str) -> None:
    before = api.count(Case)
    cases: list[tuple[dict[str, str], int]] = [
        ({k: v for k, v in form(key).items() if k != "api_key"}, 403),
        (form("not-a-key"), 403),
        (form(create_token(subject="1", role="admin", unit=None)), 403),
        (form(key, service_code="unicorns"), 400),
        ({k: v for k, v in form(key).items() if k != "service_code"}, 400),
        ({k: v for k, v in form(key).items() if k != "address_id"}, 400),
        (form(key, address_id="NOWHERE"), 400),
        (form(key, address_id="D1"), 400),
        (form(key, phone="１３８００１３８０００"), 400),
        (form(key, phone="12345"), 400),
        (form(key, email="not an email"), 400),
        (form(key, **{"attribute[people_affected]": "many"}), 400),
        (form(key, **{"attribute[urgency]": "yesterday"}), 400),
        (form(key, description="x" * 4001), 400),
        (form(key, lat="91", long="120"), 400),
        (form(key, lat="30.2"), 400),
    ]
    for data, status in cases:
        r = api.client.post(f"{BASE}/requests.{fmt}", data=data)
        assert r.status_code == status, (data.get("service_code"), r.text)
        errors = errors_of(r, fmt)
        assert errors and errors[0]["code"] == str(status) and errors[0]["description"]
        assert PHONE not in r.text
    r = api.client.post(f"{BASE}/requests.{fmt}", json=form(key))
    assert r.status_code == 415
    assert errors_of(r, fmt)[0]["code"] == "415"
    for url in (
        f"{BASE}/requests/JX-1999-000001.{fmt}",
        f"{BASE}/tokens/t1-0000000000aaaaaaaaaa.{fmt}",
        f"{BASE}/nothing.{fmt}",
    ):
        r = api.client.get(url)
        assert r.status_code == 404
        assert errors_of(r, fmt)[0]["code"] == "404"
    for query in (
        "start_date=2026-01-01T00:00:00%2B08:00&end_date=2026-06-01T00:00:00%2B08:00",
        "start_date=yesterday",
        "status=pending",
        "service_code=unicorns",
    ):
        r = api.client.get(f"{BASE}/requests.{fmt}?{query}")
        assert r.status_code in (400, 404), query
        errors_of(r, fmt)
    assert api.count(Case) == before


@pytest.fixture
def limited() -> Iterator[Api]:
    yield from make_api(open311_rate_limit_per_min=3)


def test_rate_limit_per_client(limited: Api) -> None:
    answers = [limited.client.get(f"{BASE}/services.json").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    r = limited.client.get(f"{BASE}/services.xml")
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert errors_of(r, "xml")[0]["code"] == "429"


def test_staff_see_open311_cases_masked(api: Api, key: str) -> None:
    api.client.post(f"{BASE}/requests.json", data=form(key))
    listed = api.as_("workerA").get("/api/v1/cases").json()["items"]
    assert listed and listed[0]["channel"] == "open311"
    detail = api.as_("workerA").get(f"/api/v1/cases/{listed[0]['id']}").json()
    assert PHONE not in str(detail)
