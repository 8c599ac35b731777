"""Machine triage on the pages, in headless Chromium: the intake form suggests a
category as the worker types and "采用" takes it; a case the machine was unsure of waits
in the inbox's 研判 queue with the top three, and a worker confirms it on its page."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from models.case import Case
from models.cases import create_case
from models.db import build_engine, write_session
from models.lifecycle import Actor
from models.triage import triage_case
from tests.browser.conftest import Site, shoot, sign_in
from tests.factories import case_data

pytestmark = pytest.mark.browser

NOISE = "俺家楼上天天半夜蹦跶拖椅子，敲门也不开，闹心死了"
VAGUE = "你好，有个事想反映一下，麻烦你们管一管。"


def test_the_intake_form_suggests_a_category_as_the_worker_types(site: Site, new_page: Any) -> None:
    page = new_page()
    sign_in(page, site, "workerA")
    page.goto(site.url("/web/cases/new"))
    page.fill("#description", NOISE)
    box = page.locator("#triage-box .triage-box")
    box.wait_for(timeout=15000)
    assert "邻里纠纷" in box.inner_text()
    assert page.locator("#category").input_value() == ""  # nothing chosen for the worker
    page.click("#triage-box [data-use-category]")
    assert page.locator("#category").input_value() == "neighbour"
    shoot(page, "triage-01-suggestion")


def test_an_unsure_case_waits_in_the_inbox_and_a_worker_confirms_it(
    site: Site, new_page: Any
) -> None:
    engine = build_engine(site.database_url)
    try:
        with write_session(engine) as session:
            case = create_case(
                session,
                data=case_data(description=VAGUE, people_affected=1, parties=[]),
                actor=Actor.system(),
            )
            assert case.id is not None
            triage_case(session, case_id=case.id, actor=Actor.system())
            assert case.held_for_assessment
            number = case.number
    finally:
        engine.dispose()
    page = new_page()
    sign_in(page, site, "workerA")
    queue = page.locator("#assessment")
    assert number in queue.inner_text() and "%" in queue.inner_text()
    shoot(page, "triage-02-inbox-queue")
    page.click(f"#assessment a:has-text('{number}')")
    page.click("#action-assessed summary")
    page.select_option("#assessed-category", "property")
    page.click("#action-assessed button[type=submit]")
    page.wait_for_url("**done=assessed**")
    assert "物业纠纷" in page.locator(".facts").inner_text()
    engine = build_engine(site.database_url)
    try:
        with write_session(engine) as session:
            stored = session.exec(select(Case).where(Case.number == number)).one()
            assert not stored.held_for_assessment and stored.category_locked
    finally:
        engine.dispose()
