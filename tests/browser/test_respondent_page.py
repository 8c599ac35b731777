"""The respondent's one-use link on a 360 x 740 phone, in headless Chromium: the firm
named in a complaint opens the invitation sent by SMS, accepts mediation and proposes
two times; the link then works no more; the mediator sees the times on the case page
and the answer on the timeline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from models import clock, resident_links
from models.case import Case
from models.db import build_engine, write_session
from models.lifecycle import Actor
from models.routing import assign_case
from models.triage import triage_case
from tests.browser.conftest import SCREENSHOTS, Site, shoot, sign_in
from tests.browser.test_resident_pages import _fits_the_phone
from tests.factories import make_case

pytestmark = pytest.mark.browser

COMPLAINANT = "韩晓梅"
PHONE = "13812345678"


def _invited(site: Site) -> tuple[str, str]:
    """An assigned case whose respondent, a restaurant, has a phone: the link the
    notify step would text it."""
    engine = build_engine(site.database_url)
    try:
        with write_session(engine) as session:
            case = make_case(
                session,
                category="environment",
                description="楼下餐馆油烟直排，晚上十点后仍在营业，窗户不敢开。",
                place_code="BA1",
                people_affected=6,
                parties=[
                    {"side": "complainant", "kind": "person", "name": COMPLAINANT, "phone": PHONE},
                    {
                        "side": "respondent",
                        "kind": "firm",
                        "name": "江心市老味道餐馆",
                        "phone": "13987654321",
                    },
                ],
            )
            assert case.id is not None
            triage_case(session, case_id=case.id, actor=Actor.system())
            assign_case(session, case_id=case.id, actor=Actor.system())
            row = session.get(Case, case.id)
            assert row is not None
            [link] = resident_links.issue(session, case=row, purposes=("respondent",))
            return case.number, resident_links.token_of(link)
    finally:
        engine.dispose()


def test_the_respondent_accepts_and_proposes_times_on_a_phone(site: Site, new_page: Any) -> None:
    number, token = _invited(site)
    phone = new_page(width=360, height=740)
    phone.goto(site.url(f"/r/link/{token}"))
    phone.locator("#invitation").wait_for()
    text = phone.inner_text("body")
    assert "江心市老味道餐馆" in text and number in text
    assert COMPLAINANT not in text and PHONE not in text and "油烟直排" not in text
    _fits_the_phone(phone)
    today = clock.to_local(clock.now()).date()
    first, second = today + timedelta(days=2), today + timedelta(days=3)
    days = phone.locator("input[name=slot_day]")
    parts = phone.locator("select[name=slot_part]")
    days.nth(0).fill(first.isoformat())
    parts.nth(0).select_option("pm")
    days.nth(1).fill(second.isoformat())
    parts.nth(1).select_option("eve")
    phone.fill("#accept-note", "中午营业时间不方便。")
    shoot(phone, "respondent-01-invitation")
    phone.click("#accept button[type=submit]")
    phone.locator(".alert.ok").wait_for()
    assert "同意调解" in phone.inner_text(".alert.ok")
    _fits_the_phone(phone)
    shoot(phone, "respondent-02-answered")

    phone.goto(site.url(f"/r/link/{token}"))  # once only
    assert "此链接已使用、已过期或无效" in phone.inner_text(".alert.error")
    assert phone.locator("#invitation").count() == 0

    staff = new_page()
    sign_in(staff, site, "mediatorA")
    staff.goto(site.url(f"/web/cases/{number}"))
    answers = staff.inner_text(".party-answers")
    assert "江心市老味道餐馆" in answers and "同意调解" in answers
    assert f"{first.month}月{first.day}日 下午" in answers
    assert f"{second.month}月{second.day}日 晚上" in answers
    timeline = staff.inner_text("#timeline")
    assert "当事人提出调解时间" in timeline and "记录调解同意" in timeline
    staff.locator("#mediation").screenshot(path=str(SCREENSHOTS / "respondent-03-staff.png"))
