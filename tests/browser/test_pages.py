"""The pages as people use them, in headless Chromium: a community worker records a
complaint in Chinese, sees the earlier case suggested when the same complaint comes
again, finds the case in the inbox and records a mediation session on its page; a
supervisor reads the dashboard; a worker of another community gets a 404."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import select

from models.case import Case
from models.db import build_engine, write_session
from models.lifecycle import Actor
from models.mediation import MediationSession
from models.routing import assign_case
from models.staff import Staff
from models.triage import triage_case
from tests.browser.conftest import Site, shoot, sign_in
from tests.factories import ID_NUMBER, PHONE

pytestmark = pytest.mark.browser

DESCRIPTION = "恒达电子厂拖欠二十多名工人三个月工资，工人多次讨要未果，情绪激动。"
RESPONDENT = "江心市恒达电子厂"


def _fill_intake(page: Any, *, name: str, phone: str, id_number: str) -> None:
    page.select_option("#category", "labour")
    page.select_option("#place_code", "BA1")
    page.fill("#address_text", "桂花社区一小区1号楼东侧厂房")
    page.fill("#description", DESCRIPTION)
    page.fill("#people_affected", "23")
    page.fill("#complainant_name", name)
    page.fill("#complainant_phone", phone)
    page.fill("#complainant_id", id_number)
    page.fill("#respondent_name", RESPONDENT)


def _move_like_the_workflow(site: Site, number: str) -> str:
    """Triage and assignment, as the intake and assignment flows would run them; answers
    the assignee's username."""
    engine = build_engine(site.database_url)
    try:
        with write_session(engine) as session:
            case = session.exec(select(Case).where(Case.number == number)).one()
            assert case.id is not None
            triage_case(session, case_id=case.id, actor=Actor.system())
            assign_case(session, case_id=case.id, actor=Actor.system())
            assignee = session.get(Staff, case.assignee_id)
            assert assignee is not None
            return assignee.username
    finally:
        engine.dispose()


def test_worker_records_a_case_and_a_mediation_session(site: Site, new_page: Any) -> None:
    page = new_page()
    page.goto(site.url("/web/inbox"))
    page.wait_for_url("**/web/login**")
    assert page.locator("h1").inner_text() == "工作人员登录"
    shoot(page, "01-login")

    sign_in(page, site, "workerA")
    assert "我的待办" in page.locator("h1").inner_text()

    # The intake form refuses a bad phone and ID number, next to the fields, in zh and en.
    page.click("text=登记案件")
    page.wait_for_url("**/web/cases/new")
    _fill_intake(page, name="王小明", phone="1380013800", id_number="110105194912310021")
    page.click("button:has-text('提交登记')")
    phone_error = page.locator("#complainant_phone-error")
    assert "手机号码" in phone_error.inner_text() and "mobile" in phone_error.inner_text()
    assert "校验位" in page.locator("#complainant_id-error").inner_text()
    assert page.locator("#description").input_value() == DESCRIPTION  # nothing typed is lost
    shoot(page, "02-intake-errors")

    page.fill("#complainant_phone", PHONE)
    page.fill("#complainant_id", ID_NUMBER)
    page.click("button:has-text('提交登记')")
    page.wait_for_url(re.compile(r".*/web/cases/JX-\d{4}-\d{6}\?created=1"))
    number = page.locator("h1").inner_text().split()[0]
    assert "已登记" in page.locator(".alert.ok").inner_text()
    # The worker who recorded the complaint sees the contact they typed (they make the
    # first contact and the return visit).
    party_text = page.locator("#parties").inner_text()
    assert "王小明" in party_text and PHONE in party_text and ID_NUMBER in party_text

    assignee = _move_like_the_workflow(site, number)
    assert assignee != "workerA"

    # The same complaint again: the earlier case is suggested while typing.
    page.goto(site.url("/web/cases/new"))
    page.select_option("#place_code", "BA1")
    page.fill("#respondent_name", RESPONDENT)
    page.fill("#description", DESCRIPTION)
    suggestion = page.locator("#dup-box .dup-item", has_text=number)
    suggestion.wait_for()
    assert "可能的重复件" in page.locator("#dup-box").inner_text()
    shoot(page, "03-intake-duplicate-suggestion")

    # The inbox lists it among my cases, with its deadline counted in working days.
    page.goto(site.url("/web/inbox"))
    row = page.locator("#mine tr", has_text=number)
    assert row.count() == 1
    assert re.search(r"剩 \d+ 个工作日|今日到期", row.inner_text())
    assert page.locator("#overdue tr", has_text=site.numbers["overdue"]).count() == 1
    shoot(page, "04-inbox")

    # Its page: the worker who recorded it is not offered the mediation (that is the
    # assignee's and the mediators'; REST refuses it to them too).
    row.locator("a", has_text=number).click()
    page.wait_for_url(f"**/web/cases/{number}")
    assert "已派单" in page.locator("h1 .status").inner_text()
    for committee in ("consent_recorded", "acceptance_reviewed", "mediators_named"):
        assert page.locator(f"#action-{committee}").count() == 0
    assert page.locator("#action-follow_up_due").count() == 1  # settled directly: theirs too

    # The community's mediator reviews acceptance, is named, records consent, starts
    # mediation and records a session, all through the forms.
    page = new_page()
    sign_in(page, site, "mediatorA")
    page.goto(site.url(f"/web/cases/{number}"))
    page.click("#action-acceptance_reviewed summary")
    page.click("#action-acceptance_reviewed button:has-text('确认')")
    page.wait_for_url("**done=acceptance_reviewed**")
    assert "予以受理" in page.locator("#mediation").inner_text()
    page.click("#action-mediators_named summary")
    page.locator("#action-mediators_named label", has_text="陈调解").locator("input").check()
    page.click("#action-mediators_named button:has-text('确认')")
    page.wait_for_url("**done=mediators_named**")
    assert "陈调解" in page.locator("#mediation").inner_text()
    page.click("#action-consent_recorded summary")
    for box in page.locator("#action-consent_recorded input[name=party_ids]").all():
        box.check()
    page.click("#action-consent_recorded button:has-text('确认')")
    page.wait_for_url("**done=consent_recorded**")
    page.click("#action-mediation_started summary")
    page.click("#action-mediation_started button:has-text('确认')")
    page.wait_for_url("**done=mediation_started**")
    assert "调解中" in page.locator("h1 .status").inner_text()

    # Only the named mediator records the minutes.
    sign_in(page, site, "mediatorA")
    page.goto(site.url(f"/web/cases/{number}"))
    page.click("#action-session_recorded summary")
    page.fill("#session-place", "桂花社区人民调解室")
    page.fill("#participants", "工人代表三名、厂方负责人、社区调解员")
    page.fill("#minutes", "双方同意厂方于月底前分两期支付拖欠工资，工人代表表示认可。")
    page.click("#action-session_recorded button:has-text('确认')")
    page.wait_for_url("**done=session_recorded**")
    sessions = page.locator("#sessions").inner_text()
    assert "桂花社区人民调解室" in sessions and "分两期支付" in sessions
    timeline = page.locator("#timeline").inner_text()
    for label in (
        "登记受理", "研判分流", "派单", "受理审查", "指定调解员", "记录调解同意", "开始调解",
        "记录调解笔录",
    ):  # fmt: skip
        assert label in timeline
    link = page.locator("a", has_text="查看流程运行").get_attribute("href")
    assert link is not None and f"/runs?tag=case%3A{number}&type=range&startDate=" in link
    shoot(page, "05-case-page")

    # Stored once, through the domain.
    engine = build_engine(site.database_url)
    try:
        with write_session(engine) as session:
            case = session.exec(select(Case).where(Case.number == number)).one()
            stored = session.exec(
                select(MediationSession).where(MediationSession.case_id == case.id)
            ).all()
            assert len(stored) == 1 and stored[0].place == "桂花社区人民调解室"
    finally:
        engine.dispose()

    # English on request, remembered.
    page.goto(site.url(f"/web/cases/{number}?lang=en"))
    assert "In mediation" in page.locator("h1 .status").inner_text()
    page.goto(site.url("/web/inbox"))
    assert page.locator("h1").inner_text() == "My inbox"

    # A worker of another community cannot open it: 404, exactly like a missing case.
    other = new_page()
    sign_in(other, site, "workerB")
    response = other.goto(site.url(f"/web/cases/{number}"))
    assert response is not None and response.status == 404
    assert "未找到" in other.locator("h1").inner_text()
    assert number not in other.locator("main").inner_text()
    shoot(other, "06-other-community-404")


def test_supervisor_dashboard(site: Site, new_page: Any) -> None:
    page = new_page()
    sign_in(page, site, "supervisor")
    page.click("text=督办看板")
    page.wait_for_url("**/web/dashboard**")
    chart = page.locator("svg.chart-wide")
    assert chart.is_visible() and not page.locator("svg.chart-narrow").is_visible()
    assert "各社区和结对部门三率" in chart.locator("title").first.text_content()
    assert chart.locator("text", has_text="桂花社区").count() >= 1
    # The monthly ranking: communities and the paired agency, each rate with its cases.
    ranking = page.locator("#ranking")
    for unit in ("桂花社区", "竹园社区", "区人社局"):
        assert ranking.locator("tr", has_text=unit).count() == 1
    assert "(1/1)" in ranking.locator("tr", has_text="区人社局").inner_text()
    assert page.locator("#rates details.definitions").is_visible()
    assert "自动派单不算联系" in page.locator("#rates details.definitions").inner_text()
    levels = page.locator("#overdue-levels").inner_text()
    assert "社区" in levels and "在办超期" in levels
    runs = page.locator("#overdue-list a.runs").first.get_attribute("href")
    assert runs is not None and "type=range" in runs and "startDate=" in runs
    # The problem of the month: the supervisor names the lead unit and the plan.
    page.click("#problem summary")
    page.fill("#pm-title", "租房押金纠纷反复投诉")
    page.select_option("#pm-category", "tenancy")
    page.select_option("#pm-lead", "CMA")
    page.fill("#pm-plan", "桂花社区牵头，约谈中介门店，月底前公示退押流程。")
    page.click("#problem button[type=submit]")
    page.wait_for_url("**/web/dashboard**#problem")
    assert "约谈中介门店" in page.locator("#problem").inner_text()
    overdue = page.locator("#overdue-list")
    assert overdue.locator("tr", has_text=site.numbers["overdue"]).count() == 1
    assert page.locator("#escalations", has_text=site.numbers["community_b"]).count() == 1
    shoot(page, "07-dashboard")

    phone = new_page(width=390, height=844)
    sign_in(phone, site, "supervisor")
    phone.goto(site.url("/web/dashboard"))
    assert phone.locator("svg.chart-narrow").is_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the dashboard overflows a phone screen ({width}px)"
    shoot(phone, "08-dashboard-phone")


def test_sign_in_refuses_wrong_password_and_forged_forms(site: Site, new_page: Any) -> None:
    page = new_page()
    page.goto(site.url("/web/login"))
    page.fill("#username", "workerA")
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    assert "用户名或密码不正确" in page.locator(".alert.error").inner_text()
    assert "tj_session" not in {c["name"] for c in page.context.cookies()}

    sign_in(page, site, "workerA")
    cookie = next(c for c in page.context.cookies() if c["name"] == "tj_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    # A form posted without the session's CSRF token changes nothing.
    response = page.request.post(
        site.url("/web/cases/new"),
        form={
            "category": "labour",
            "place_code": "BA1",
            "description": "测试伪造请求",
            "complainant_name": "张三",
            "csrf_token": "forged",
        },
        max_redirects=0,
    )
    assert response.status == 403
