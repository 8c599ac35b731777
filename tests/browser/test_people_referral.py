"""Helpers and referrals as people use them, in headless Chromium: the community's
mediation committee names a mediator on a case, the grid worker adds a community volunteer
to it as a helper, and the volunteer records a visit; the
paired labour agency signs for a referral and records what it did."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from models.case import Case
from models.db import build_engine, write_session
from models.enums import CaseStatus, Category, ReferralState, ReferralTarget, StaffRole
from models.helper import HelperTask
from models.lifecycle import Actor
from models.passwords import hash_password
from models.routing import assign_case, refer_case
from models.staff import Staff
from models.triage import triage_case
from models.unit import Unit
from tests.browser.conftest import PASSWORD, Site, shoot, sign_in
from tests.factories import make_case

pytestmark = pytest.mark.browser


def _person(session: Any, username: str, role: StaffRole, unit_code: str, name: str) -> Staff:
    unit = session.exec(select(Unit).where(Unit.code == unit_code)).one()
    staff = session.exec(select(Staff).where(Staff.username == username)).first()
    if staff is None:
        staff = Staff(
            username=username,
            display_name=name,
            role=role,
            unit_id=unit.id,
            skills=[Category.LABOUR.value] if role == StaffRole.MEDIATOR else [],
        )
    staff.password_hash = hash_password(PASSWORD)
    session.add(staff)
    session.flush()
    return staff


def _seed(site: Site) -> tuple[str, str, int]:
    """A neighbour case with community A's grid worker, and a labour case his community
    refers to the paired labour agency; the volunteer, grid worker and agency officer
    can sign in."""
    engine = build_engine(site.database_url)
    system = Actor.system()
    try:
        with write_session(engine) as s:
            volunteer = _person(s, "volunteerA", StaffRole.VOLUNTEER, "CMA", "何志愿")
            _person(s, "gridA", StaffRole.GRID_WORKER, "CPA", "林网格")
            _person(s, "labour_officer", StaffRole.MEDIATOR, "AG-LAB", "孔劳动")
            noise = make_case(
                s,
                category="neighbour",
                description="楼上住户深夜拖拽家具，楼下老人无法入睡，多次沟通无果。",
                place_code="BA1",
                people_affected=1,
                parties=[
                    {"side": "complainant", "kind": "person", "name": "黄老伯"},
                    {"side": "respondent", "kind": "person", "name": "楼上住户"},
                ],
            )
            wages = make_case(
                s,
                category="labour",
                description="装修队拖欠两名工人工资，是否存在劳动关系双方说法不一。",
                place_code="BA2",
                people_affected=1,
                parties=[
                    {"side": "complainant", "kind": "person", "name": "刘师傅"},
                    {"side": "respondent", "kind": "firm", "name": "江心市顺达装饰工程部"},
                ],
            )
            for case in (noise, wages):
                assert case.id is not None
                triage_case(s, case_id=case.id, actor=system)
                assign_case(s, case_id=case.id, actor=system)
            grid = s.exec(select(Staff).where(Staff.username == "gridA")).one()
            unit = s.get(Unit, grid.unit_id)
            assert unit is not None and wages.id is not None
            refer_case(
                s,
                case_id=wages.id,
                target=ReferralTarget.AGENCY,
                agency_code=None,
                reason="劳动关系认定须由人社部门依职权作出",
                actor=Actor(kind="staff", staff_id=grid.id, role=grid.role, unit_path=unit.path),
                expected_version=wages.version,
            )
            assert volunteer.id is not None
            return noise.number, wages.number, volunteer.id
    finally:
        engine.dispose()


def _case(site: Site, number: str) -> tuple[Case, list[HelperTask]]:
    engine = build_engine(site.database_url)
    try:
        with write_session(engine) as s:
            case = s.exec(select(Case).where(Case.number == number)).one()
            tasks = list(s.exec(select(HelperTask).where(HelperTask.case_id == case.id)).all())
            return case, tasks
    finally:
        engine.dispose()


def test_a_volunteer_helps_and_an_agency_answers_a_referral(site: Site, new_page: Any) -> None:
    noise, wages, volunteer_id = _seed(site)

    # The community's mediator names the mediator of the neighbour case from its page.
    committee = new_page()
    sign_in(committee, site, "mediatorA")
    committee.goto(site.url(f"/web/cases/{noise}"))
    committee.click("#action-mediators_named summary")
    committee.check("#action-mediators_named label:has-text('陈调解') input")
    committee.click("#action-mediators_named button:has-text('确认')")
    committee.wait_for_url("**done=mediators_named**")
    assert "陈调解" in committee.locator("ul.mediators").inner_text()
    assert "指定调解员" in committee.locator("#timeline").inner_text()

    # The grid worker adds the community's volunteer to the neighbour case.
    grid = new_page()
    sign_in(grid, site, "gridA")
    grid.goto(site.url(f"/web/cases/{noise}"))
    grid.click("#action-helper_added summary")
    grid.fill("#helper_added-username", "volunteerA")  # by user name, as people know each other
    grid.select_option("#helper_added-role", "visit")
    grid.click("#action-helper_added button:has-text('确认')")
    grid.wait_for_url("**done=helper_added**")
    assert "何志愿" in grid.locator("#helpers").inner_text()

    # The volunteer finds it in the inbox and records the visit.
    volunteer = new_page()
    sign_in(volunteer, site, "volunteerA")
    assert volunteer.locator("#mine tr", has_text=noise).count() == 1
    volunteer.goto(site.url(f"/web/cases/{noise}"))
    volunteer.click("#action-helper_task_recorded summary")
    volunteer.select_option("#helper_task_recorded-kind", "visit")
    volunteer.fill("#helper_task_recorded-note", "上门走访楼上住户，约定晚十点后不再搬动家具。")
    volunteer.click("#action-helper_task_recorded button:has-text('确认')")
    volunteer.wait_for_url("**done=helper_task_recorded**")
    helpers = volunteer.locator("#helpers").inner_text()
    assert "走访" in helpers and "晚十点后" in helpers
    assert "记录协办任务" in volunteer.locator("#timeline").inner_text()
    shoot(volunteer, "20-volunteer-visit")
    _, tasks = _case(site, noise)
    assert [(t.staff_id, t.kind.value) for t in tasks] == [(volunteer_id, "visit")]

    # The grid worker's community keeps the referred case in view.
    grid.goto(site.url("/web/inbox"))
    assert grid.locator("#referred-out tr", has_text=wages).count() == 1

    # The labour agency signs for the referral, then records what it did.
    agency = new_page()
    sign_in(agency, site, "labour_officer")
    agency.goto(site.url(f"/web/cases/{wages}"))
    assert "待签收" in agency.locator("#referrals").inner_text()
    agency.click("#action-referral_signed summary")
    agency.click("#action-referral_signed button:has-text('确认')")
    agency.wait_for_url("**done=referral_signed**")
    assert "已签收" in agency.locator("#referrals").inner_text()
    agency.click("#action-referral_concluded summary")
    agency.fill(
        "#referral_concluded-action_taken", "劳动监察立案调查，责令装饰工程部补发工资，已补发。"
    )
    agency.select_option("#referral_concluded-outcome", "resolved")
    agency.click("#action-referral_concluded button:has-text('确认')")
    agency.wait_for_url("**done=referral_concluded**")
    referrals = agency.locator("#referrals").inner_text()
    assert "已解决" in referrals and "已补发" in referrals
    timeline = agency.locator("#timeline").inner_text()
    assert "签收" in timeline and "反馈办理结果" in timeline
    shoot(agency, "21-agency-referral")
    case, _ = _case(site, wages)
    assert case.referral_state == ReferralState.CONCLUDED
    assert case.status in (CaseStatus.REFERRED, CaseStatus.FOLLOW_UP)
