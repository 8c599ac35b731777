"""Creating, listing and reading cases through the HTTP app."""

from __future__ import annotations

from models.case import Case
from models.event import CaseEvent
from models.party import Party
from tests.api.conftest import Api
from tests.factories import ID_NUMBER, NAME, PHONE

CASE = {
    "category": "labour",
    "description": "电子厂拖欠二十名工人三个月工资，工人多次讨要未果。",
    "place_code": "BA1",
    "people_affected": 20,
    "parties": [
        {
            "side": "complainant",
            "kind": "person",
            "name": NAME,
            "phone": PHONE,
            "id_number": ID_NUMBER,
        },
        {"side": "respondent", "kind": "firm", "name": "江心市恒达电子厂"},
    ],
}


def test_healthz_and_openapi(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    schema = api.client.get("/openapi.json").json()
    assert "/api/v1/cases" in schema["paths"]


def test_worker_records_a_case_others_read_it_masked(api: Api) -> None:
    worker = api.as_("workerA")
    r = worker.post("/api/v1/cases", json=CASE)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["case"]["number"].startswith("JX-")
    assert body["case"]["status"] == "submitted"
    assert body["case"]["place_code"] == "BA1"
    assert PHONE not in r.text and ID_NUMBER not in r.text and NAME not in r.text
    complainant = body["parties"][0]
    assert complainant["phone"] == "138****8000"
    assert complainant["id_number"] == "110105********002X"

    detail = worker.get(f"/api/v1/cases/{body['case']['id']}").json()
    assert [e["verb"] for e in detail["timeline"]] == ["submitted"]
    # The worker who typed the contact sees it (they make the first contact); a grid
    # worker of the same compound, who neither recorded nor handles it, does not.
    assert detail["personal_data_visible"] is True
    other = api.as_("gridA").get(f"/api/v1/cases/{body['case']['id']}")
    assert other.json()["personal_data_visible"] is False
    assert PHONE not in other.text and ID_NUMBER not in other.text
    by_number = worker.get(f"/api/v1/cases/{body['case']['number']}")
    assert by_number.json()["case"]["id"] == body["case"]["id"]

    listed = worker.get("/api/v1/cases").json()
    assert [c["id"] for c in listed["items"]] == [body["case"]["id"]]
    assert listed["total"] == 1


def test_list_filters(api: Api) -> None:
    worker = api.as_("workerA")
    worker.post("/api/v1/cases", json=CASE)
    worker.post(
        "/api/v1/cases",
        json={**CASE, "category": "environment", "description": "工地夜间施工噪声扰民"},
    )
    assert worker.get("/api/v1/cases", params={"category": "environment"}).json()["total"] == 1
    assert worker.get("/api/v1/cases", params={"q": "噪声"}).json()["total"] == 1
    assert worker.get("/api/v1/cases", params={"q": "%"}).json()["total"] == 0
    assert worker.get("/api/v1/cases", params={"status": "closed"}).json()["total"] == 0
    page = worker.get("/api/v1/cases", params={"page_size": 1, "page": 2}).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    assert worker.get("/api/v1/cases", params={"unit": "NOPE"}).status_code == 422
    assert worker.get("/api/v1/cases", params={"assignee": "x"}).status_code == 422


def test_place_must_be_building_compound_or_community(api: Api) -> None:
    worker = api.as_("workerA")
    before = api.count(Case)
    r = worker.post("/api/v1/cases", json={**CASE, "place_code": "D1"})
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"] == "place_code"
    r = worker.post("/api/v1/cases", json={**CASE, "place_code": "NOWHERE"})
    assert r.status_code == 422
    assert api.count(Case) == before


def test_units_tree(api: Api) -> None:
    units = api.as_("workerA").get("/api/v1/units").json()
    by_code = {u["code"]: u for u in units}
    assert by_code["C"]["parent_code"] is None
    assert by_code["BA1"] == {
        "code": "BA1",
        "name": "1号楼",
        "name_en": "BA1",
        "level": "building",
        "parent_code": "CPA",
    }
    assert by_code["AG-LAB"]["level"] == "agency"
    assert {
        u["level"]
        for u in api.as_("workerA").get("/api/v1/units", params={"level": "community"}).json()
    } == {"community"}


def test_read_only_roles_cannot_create(api: Api) -> None:
    from models.db import write_session
    from models.enums import StaffRole
    from tests.factories import add_staff

    with write_session(api.engine) as s:
        add_staff(s, api.city, "volunteerA", StaffRole.VOLUNTEER, "CMA")
    before = api.count(Case)
    r = api.as_("volunteerA").post("/api/v1/cases", json=CASE)
    assert r.status_code == 403
    assert api.count(Case) == before
    assert api.count(Party) == 0 and api.count(CaseEvent) == 0


def test_staff_get_the_tracking_code_on_creation_and_on_the_case(api: Api) -> None:
    from models import tracking

    worker = api.as_("workerA")
    body = worker.post("/api/v1/cases", json=CASE).json()
    code = body["case"]["tracking_code"]
    assert code == tracking.code_for(body["case"]["number"])
    detail = worker.get(f"/api/v1/cases/{body['case']['id']}").json()
    assert detail["case"]["tracking_code"] == code
