"""A new account's one-time sign-in link: set a password, land in the inbox; the link
then works no more, and a deactivated account cannot use one."""

from __future__ import annotations

import re

from models.db import write_session
from models.enums import StaffRole
from models.sign_in import issue_link
from models.staff import Staff
from tests.api.conftest import Api


def _new_staff(api: Api, *, active: bool = True) -> str:
    unit_id = next(iter(api.city.staff.values())).unit_id
    with write_session(api.engine) as session:
        staff = Staff(
            username="newcomer",
            display_name="新同事",
            role=StaffRole.MEDIATOR,
            unit_id=unit_id,
            active=active,
        )
        session.add(staff)
        session.flush()
        assert staff.id is not None
        return issue_link(session, staff.id)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_a_new_account_sets_its_password_with_the_link_once(api: Api) -> None:
    token = _new_staff(api)
    page = api.client.get(f"/web/welcome/{token}")
    assert page.status_code == 200 and "newcomer" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    form = {"csrf_token": _csrf(page.text), "password": "short", "repeat": "short"}
    short = api.client.post(f"/web/welcome/{token}", data=form)
    assert short.status_code == 400 and "10" in short.text
    form |= {"password": "correct-horse-battery", "repeat": "correct-horse-battery"}
    done = api.client.post(f"/web/welcome/{token}", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/web/inbox"
    inbox = api.client.get("/web/inbox")
    assert inbox.status_code == 200 and "新同事" in inbox.text
    again = api.client.get(f"/web/welcome/{token}")
    assert again.status_code == 410 and "newcomer" not in again.text
    api.client.cookies.clear()
    login = api.client.get("/web/login")
    signed = api.client.post(
        "/web/login",
        data={
            "csrf_token": _csrf(login.text),
            "username": "newcomer",
            "password": "correct-horse-battery",
            "next": "/web/inbox",
        },
        follow_redirects=False,
    )
    assert signed.status_code == 303


def test_a_deactivated_account_cannot_use_its_link(api: Api) -> None:
    token = _new_staff(api, active=False)
    assert api.client.get(f"/web/welcome/{token}").status_code == 410
