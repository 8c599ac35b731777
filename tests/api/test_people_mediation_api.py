"""Mediation under the People's Mediation Law through HTTP: acceptance review with its
guidance, confidential cases in Open311, documents for entitled staff only (each
download recorded), and attachments that refuse bad uploads and store nothing."""

from __future__ import annotations

import io
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from docx import Document
from sqlmodel import Session, select

from api.security import create_open311_key
from models import triage
from models.attachments import Attachment, storage_root
from models.case import Case
from models.db import write_session
from models.documents.audit import DocumentDownload
from models.event import CaseEvent
from models.lifecycle import Actor
from tests.api.conftest import Api, AsUser
from tests.api.test_case_life_api import act, committee, created_and_assigned
from tests.factories import NAME

pytestmark = pytest.mark.usefixtures("vclock")
BASE = "/open311/v2"


def test_a_dispute_in_arbitration_is_not_accepted_and_the_guidance_shows(api: Api) -> None:
    case_id, handler = created_and_assigned(api)
    out = act(
        handler,
        case_id,
        "acceptance",
        {"accepted": False, "reason": "before_arbitration", "note": "已申请劳动仲裁"},
    )
    assert out["case"]["status"] == "referred"
    detail = handler.get(f"/api/v1/cases/{case_id}").json()
    mediation = detail["mediation"]
    assert mediation["accepted"] is False
    assert "劳动人事争议仲裁" in mediation["guidance"]
    assert "第二十二条" in mediation["legal_basis"]
    docs = handler.get(f"/api/v1/cases/{case_id}/documents").json()
    assert [d["kind"] for d in docs] == ["application", "acceptance"]
    r = handler.get(f"/api/v1/cases/{case_id}/documents/acceptance.docx")
    assert r.status_code == 200
    text = "\n".join(p.text for p in Document(io.BytesIO(r.content)).paragraphs)
    assert "劳动人事争议仲裁委员会申请仲裁" in text
    # Bad input: a refusal without its reason is 422 and changes nothing.
    case2, handler2 = created_and_assigned(api)
    before = api.count(CaseEvent)
    version = handler2.get(f"/api/v1/cases/{case2}").json()["case"]["version"]
    r = handler2.post(
        f"/api/v1/cases/{case2}/acceptance", json={"version": version, "accepted": False}
    )
    assert r.status_code == 422 and api.count(CaseEvent) == before


def _file(api: Api, key: str, **extra: str) -> str:
    data = {
        "api_key": key,
        "service_code": "neighbour",
        "address_id": "BA1",
        "description": "楼上住户深夜噪音，多次沟通无果。",
        "first_name": "小明",
        "last_name": "王",
        **extra,
    }
    r = api.client.post(f"{BASE}/requests.json", data=data)
    assert r.status_code == 200, r.text
    number = str(r.json()[0]["service_request_id"])
    with write_session(api.engine) as s:
        case = s.exec(select(Case).where(Case.number == number)).one()
        triage.triage_case(s, case_id=case.id or 0, actor=Actor.system())
    return number


def _listed(api: Api, url: str) -> list[str]:
    rows = []
    for fmt in ("json", "xml"):
        r = api.client.get(url.replace("{fmt}", fmt))
        assert r.status_code == 200, r.text
        if fmt == "json":
            rows += [str(x.get("service_request_id")) for x in r.json()]
        else:
            root = ET.fromstring(r.content)
            rows += [el.text or "" for el in root.iter("service_request_id")]
    return rows


def test_a_confidential_case_is_in_no_open311_listing_and_shows_no_description(
    api: Api,
) -> None:
    key = create_open311_key(client="test-app")
    family = _file(
        api, key, service_code="family", description="夫妻因离婚后子女抚养问题发生纠纷。"
    )
    public = _file(api, key)
    asked = _file(api, key, description="邻居装修占用公共楼道，双方争执。")
    with Session(api.engine) as s:
        asked_id = s.exec(select(Case.id).where(Case.number == asked)).one()
    act(api.as_("workerA"), asked_id or 0, "confidential", {"reason": "申请人要求不公开"})

    for url in (
        BASE + "/requests.{fmt}",
        BASE + "/requests.{fmt}?status=open",
        BASE + "/requests.{fmt}?service_code=family,neighbour",
        BASE + f"/requests.{{fmt}}?service_request_id={family},{public},{asked}",
        BASE + "/servicerequestupdates.{fmt}",
    ):
        seen = _listed(api, url)
        assert public in seen, url
        assert family not in seen and asked not in seen, url
    for number, words in ((family, "抚养"), (asked, "楼道")):
        r = api.client.get(f"{BASE}/requests/{number}.json")
        assert r.status_code == 200
        [row] = r.json()
        assert row["service_request_id"] == number and row["status"] == "open"
        assert row["service_code"] in ("family", "neighbour") and row["status_notes"]
        assert row.get("description") is None and words not in r.text
        assert "address" not in row and "lat" not in row
        r = api.client.get(f"{BASE}/requests/{number}.xml")
        assert words not in r.text and "<description" not in r.text.replace("<description />", "")


def test_a_confidential_case_hides_its_details_from_staff_outside_its_unit(api: Api) -> None:
    case_id, handler = created_and_assigned(api)
    act(handler, case_id, "confidential", {"reason": "当事人要求不公开调解"})
    inside = api.as_("workerA").get(f"/api/v1/cases/{case_id}").json()
    assert "拖欠" in inside["case"]["description"] and inside["parties"]
    outside = api.as_("supervisor").get(f"/api/v1/cases/{case_id}").json()
    assert outside["confidential"] is True and outside["details_visible"] is False
    assert "拖欠" not in str(outside) and outside["parties"] == []
    assert outside["case"]["description"].startswith("（不公开）")
    listed = api.as_("supervisor").get("/api/v1/cases?q=拖欠").json()
    assert case_id not in [c["id"] for c in listed["items"]]


def _settled(api: Api) -> tuple[int, AsUser]:
    case_id, handler = created_and_assigned(api)
    mediator = committee(api, case_id, handler)
    act(handler, case_id, "consent", {})
    act(handler, case_id, "mediation/start", {})
    agreement = {
        "summary": "厂方分两期支付拖欠工资",
        "facts": "厂方拖欠工资。",
        "signed_on_paper": True,
        "committee_sealed": True,
        "terms": [{"text": "支付第一期工资", "due_on": "2026-12-31"}],
    }
    act(mediator, case_id, "agreement", agreement)
    return case_id, mediator


def test_documents_go_to_entitled_staff_only_and_every_download_is_recorded(
    api: Api,
) -> None:
    case_id, mediator = _settled(api)
    docs = mediator.get(f"/api/v1/cases/{case_id}/documents").json()
    kinds = {d["kind"]: d for d in docs}
    assert {"application", "acceptance", "agreement", "confirmation"} <= set(kinds)
    assert kinds["agreement"] == {
        "kind": "agreement",
        "title": "人民调解协议书",
        "formats": ["pdf", "docx"],
    }
    pdf = mediator.get(f"/api/v1/cases/{case_id}/documents/agreement.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert pdf.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''" in pdf.headers["content-disposition"]
    docx = mediator.get(f"/api/v1/cases/{case_id}/documents/agreement.docx")
    assert docx.status_code == 200 and NAME in str(
        [p.text for p in Document(io.BytesIO(docx.content)).paragraphs]
    )
    with Session(api.engine) as s:
        rows = s.exec(select(DocumentDownload)).all()
    assert [(r.kind, r.fmt) for r in rows] == [("agreement", "pdf"), ("agreement", "docx")]
    assert all(r.staff_id == api.city.staff["mediatorA"].id for r in rows)
    # Not entitled (a masked reader, another community): 404. (workerA recorded the case:
    # they see the contact they typed, models.access.may_see_personal_data.)
    for user in ("supervisor", "mediatorB"):
        for url in ("documents", "documents/agreement.pdf", "attachments"):
            r = api.as_(user).get(f"/api/v1/cases/{case_id}/{url}")
            assert r.status_code == 404, (user, url)
    for url in ("documents/archive.pdf", "documents/agreement.txt", "documents/nope.pdf"):
        r = mediator.get(f"/api/v1/cases/{case_id}/{url}")
        assert r.status_code in (404, 422), url
    with Session(api.engine) as s:
        assert len(s.exec(select(DocumentDownload)).all()) == 2


def _upload(user: AsUser, case_id: int, name: str, content: bytes, **kw: Any) -> Any:
    return user.post(
        f"/api/v1/cases/{case_id}/attachments",
        files={"file": (name, content, "application/octet-stream")},
        data={"kind": kw.get("kind", "scan")},
        headers=kw.get("headers", {}),
    )


def test_bad_uploads_get_a_clear_4xx_and_store_nothing(api: Api) -> None:
    case_id, mediator = _settled(api)
    stored = sorted(storage_root().rglob("*")) if storage_root().exists() else []
    events = api.count(CaseEvent)
    big = b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024 + 1)
    for name, content, status in (
        ("scan.pdf", b"GIF89a not a pdf", 415),
        ("../../evil.png", b"\x89PNG\r\n\x1a\n" + b"0" * 32, 422),
        ("big.pdf", big, 413),
    ):
        r = _upload(mediator, case_id, name, content)
        assert r.status_code == status, (name, r.status_code, r.text)
        assert r.json()["message"], r.text
    r = mediator.post(f"/api/v1/cases/{case_id}/attachments", json={"file": "x"})
    assert r.status_code == 415
    assert api.count(Attachment) == 0 and api.count(CaseEvent) == events
    assert (sorted(storage_root().rglob("*")) if storage_root().exists() else []) == stored

    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    r = _upload(mediator, case_id, "协议书签章页.png", png, kind="agreement_scan")
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["content_type"] == "image/png" and info["title"] == "协议书签章页.png"
    listed = mediator.get(f"/api/v1/cases/{case_id}/attachments").json()
    assert [a["id"] for a in listed] == [info["id"]]
    got = mediator.get(f"/api/v1/cases/{case_id}/attachments/{info['id']}")
    assert got.status_code == 200 and got.content == png
    assert got.headers["x-content-type-options"] == "nosniff"
    r = api.as_("mediatorB").get(f"/api/v1/cases/{case_id}/attachments/{info['id']}")
    assert r.status_code == 404


def test_an_upload_retried_with_its_key_is_stored_once_and_the_key_binds_the_file(
    api: Api,
) -> None:
    case_id, mediator = _settled(api)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    key = {"Idempotency-Key": "scan-upload-1"}
    first = _upload(mediator, case_id, "签章页.png", png, headers=key)
    again = _upload(mediator, case_id, "签章页.png", png, headers=key)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"] and api.count(Attachment) == 1
    other = _upload(mediator, case_id, "签章页.png", png + b"\x01", headers=key)
    assert other.status_code == 409 and api.count(Attachment) == 1, other.text
