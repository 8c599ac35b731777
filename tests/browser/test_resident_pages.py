"""The resident's side on a 360 x 740 phone, in headless Chromium: the complainant
follows the case by its tracking code, adds a photo, gives consent, and later rates
the result; the staff case page shows each of those as the resident's own event."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest

from models.db import build_engine, write_session
from models.lifecycle import Actor
from models.mediating import resolve_directly
from models.routing import assign_case
from models.staff import Staff
from models.triage import triage_case
from models.unit import Unit
from tests.browser.conftest import Site, shoot, sign_in
from tests.factories import make_case

pytestmark = pytest.mark.browser

PHONE = "13812345678"


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    raw = zlib.compress(b"\x00" + b"\xb2\x22\x22" * 2 + b"\x00" + b"\xff\xff\xff" * 2)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _assigned_case(site: Site) -> tuple[int, str]:
    engine = build_engine(site.database_url)
    try:
        with write_session(engine) as session:
            case = make_case(
                session,
                category="neighbour",
                description="楼上装修噪音从早到晚，多次沟通无果。",
                place_code="BA1",
                people_affected=2,
                parties=[
                    {"side": "complainant", "kind": "person", "name": "韩晓梅", "phone": PHONE},
                    {"side": "respondent", "kind": "person", "name": "冯大力"},
                ],
            )
            assert case.id is not None
            triage_case(session, case_id=case.id, actor=Actor.system())
            assign_case(session, case_id=case.id, actor=Actor.system())
            return case.id, case.number
    finally:
        engine.dispose()


def _settle(site: Site, case_id: int) -> None:
    """The handler settles the case directly: it goes to its return visit."""
    engine = build_engine(site.database_url)
    try:
        with write_session(engine) as session:
            from models.case import Case

            case = session.get(Case, case_id)
            assert case is not None and case.assignee_id is not None
            staff = session.get(Staff, case.assignee_id)
            unit = session.get(Unit, staff.unit_id) if staff and staff.unit_id else None
            assert staff is not None and unit is not None
            actor = Actor(kind="staff", staff_id=staff.id, role=staff.role, unit_path=unit.path)
            resolve_directly(
                session,
                case_id=case_id,
                resolution="调解员上门沟通，约定装修时间为工作日九点至十八点。",
                actor=actor,
                expected_version=None,
            )
    finally:
        engine.dispose()


def _fits_the_phone(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width}px wide on a 360px phone"


def test_a_resident_follows_the_case_adds_a_photo_consents_and_rates(
    site: Site, new_page: Any
) -> None:
    case_id, number = _assigned_case(site)
    staff = new_page()
    sign_in(staff, site, "mediatorA")
    staff.goto(site.url(f"/web/cases/{number}"))
    code = staff.locator(".tracking-code").first.inner_text().strip()
    assert len(code) == 19

    phone = new_page(width=360, height=740)
    phone.goto(site.url(f"/r/{code}"))
    _fits_the_phone(phone)
    shoot(phone, "resident-01-phone-check")
    phone.fill("#last4", PHONE[-4:])
    phone.click("button[type=submit]")
    phone.locator("#status").wait_for()
    assert "冯大力" not in phone.content() and "陈调解" not in phone.content()
    shoot(phone, "resident-02-status")

    phone.fill("#note", "今天早上七点又开始施工，附照片。")
    phone.set_input_files(
        "#photos", files=[{"name": "noise.png", "mimeType": "image/png", "buffer": tiny_png()}]
    )
    phone.click("#info button[type=submit]")
    phone.locator(".alert.ok").wait_for()
    phone.click("#consent button[value=yes]")
    phone.locator("text=您已同意调解").wait_for()
    _fits_the_phone(phone)
    shoot(phone, "resident-03-consented")

    _settle(site, case_id)
    phone.goto(site.url(f"/r/{code}"))
    phone.locator("#visit").wait_for()
    phone.check("input[name=resolved][value=resolved]")
    phone.check("input[name=satisfied][value=satisfied]")
    phone.fill("#comment", "调解员很耐心。")
    shoot(phone, "resident-04-return-visit")
    phone.click("#visit button[type=submit]")
    phone.locator(".alert.ok").wait_for()
    assert "记录回访" in phone.inner_text("#mine")
    _fits_the_phone(phone)

    staff.goto(site.url(f"/web/cases/{number}"))
    timeline = staff.inner_text("#timeline")
    for seen in ("当事人补充材料", "今天早上七点又开始施工", "记录调解同意", "记录回访"):
        assert seen in timeline, seen
    assert timeline.count("当事人本人（查询页或短信链接）") == 3
    assert "已解决 · 满意" in timeline
    staff.locator("#timeline .photo-link").first.wait_for()
    shoot(staff, "resident-05-staff-timeline")
