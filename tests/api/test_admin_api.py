"""System administration through the app: only administrators; adding an account gives
a one-time link, changing it and deactivating it are logged; a unit moves with its
subtree; the policies page shows what is in force. Every action is in the log."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from models.admin_log import AdminEvent, verify_log
from models.staff import Staff
from models.unit import Unit
from tests.api.conftest import Api, web_cookie


def _as(api: Api, username: str) -> str:
    staff_id = api.city.staff[username].id
    assert staff_id is not None
    api.client.cookies.clear()
    api.client.cookies.set("tj_session", web_cookie(api, staff_id))
    page = api.client.get("/web/admin/staff")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    return match.group(1) if match else ""


def test_only_administrators_reach_the_pages(api: Api) -> None:
    _as(api, "supervisor")
    for path in ("/web/admin/staff", "/web/admin/units", "/web/admin/policies"):
        assert api.client.get(path).status_code == 403


def test_add_change_deactivate_and_reset_an_account(api: Api) -> None:
    csrf = _as(api, "admin")
    form = {
        "csrf_token": csrf,
        "username": "Newcomer",
        "name": "新同事",
        "role": "mediator",
        "unit_code": "CMA",
        "phone": "139 1234 5678",
        "skills": ["neighbour", "family"],
    }
    added = api.client.post("/web/admin/staff", data=form)
    assert added.status_code == 200
    link = re.search(r'id="sign-in-link">([^<]+)<', added.text)
    assert link and "/web/welcome/" in link.group(1) and "13912345678" not in added.text
    again = api.client.post("/web/admin/staff", data=form)
    assert again.status_code == 400 and "已被使用" in again.text
    bad = api.client.post(
        "/web/admin/staff",
        data={**form, "username": "x2", "role": "boss", "unit_code": "NOWHERE", "phone": "12"},
    )
    assert bad.status_code == 400
    assert all(word in bad.text for word in ("role", "unit_code", "phone"))

    edit = api.client.post(
        "/web/admin/staff/newcomer",
        data={
            "csrf_token": csrf,
            "do": "save",
            "name": "新同事",
            "role": "supervisor",
            "unit_code": "S1",
            "skills": ["labour"],
        },
    )
    assert edit.status_code == 200 and 'id="saved"' in edit.text
    off = api.client.post(
        "/web/admin/staff/newcomer", data={"csrf_token": csrf, "do": "deactivate"}
    )
    assert off.status_code == 200
    reset = api.client.post("/web/admin/staff/newcomer", data={"csrf_token": csrf, "do": "reset"})
    assert "/web/welcome/" in reset.text
    forged = api.client.post(
        "/web/admin/staff/newcomer", data={"csrf_token": "x", "do": "activate"}
    )
    assert forged.status_code == 403
    with Session(api.engine) as session:
        member = session.exec(select(Staff).where(Staff.username == "newcomer")).one()
        assert (member.role.value, member.skills, member.active) == (
            "supervisor",
            ["labour"],
            False,
        )
        assert member.phone_masked == "139****5678" and member.password_hash is None
        log = [
            (e.action, e.actor)
            for e in session.exec(select(AdminEvent).order_by(col(AdminEvent.id)))
        ]
        assert log == [
            ("staff.add", "admin"),
            ("staff.update", "admin"),
            ("staff.deactivate", "admin"),
            ("staff.reset_password", "admin"),
        ]
        assert verify_log(session) == []


def test_units_add_rename_move_and_policies_page(api: Api) -> None:
    csrf = _as(api, "admin")
    added = api.client.post(
        "/web/admin/units",
        data={
            "csrf_token": csrf,
            "code": "S2",
            "name": "新街道",
            "name_en": "New Street",
            "level": "street",
            "parent_code": "D1",
        },
    )
    assert added.status_code == 200 and "S2" in added.text
    wrong = api.client.post(
        "/web/admin/units",
        data={
            "csrf_token": csrf,
            "code": "X9",
            "name": "错层",
            "level": "street",
            "parent_code": "CMA",
        },
    )
    assert wrong.status_code == 400 and "层级顺序错误" in wrong.text
    moved = api.client.post(
        "/web/admin/units",
        data={"csrf_token": csrf, "existing": "CMB", "name": "竹园社区（新）", "parent_code": "S2"},
    )
    assert moved.status_code == 200
    with Session(api.engine) as session:
        building = session.exec(select(Unit).where(Unit.code == "BB1")).one()
        assert building.path == "/C/D1/S2/CMB/CPB/BB1/"
        actions = [e.action for e in session.exec(select(AdminEvent).order_by(col(AdminEvent.id)))]
    assert actions == ["unit.add", "unit.move"]
    page = api.client.get("/web/admin/policies")
    assert page.status_code == 200 and "complaint" in page.text
