"""An administrator adds a staff member, who signs in with the one-time link, sets a
password and sees their inbox; deactivated, their page session ends at once and their
API token within the principal cache's 5 s."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Site, shoot, sign_in

pytestmark = pytest.mark.browser


def test_admin_adds_a_member_who_signs_in_then_is_locked_out(site: Site, new_page: Any) -> None:
    admin = new_page()
    sign_in(admin, site, "admin")
    admin.click("text=系统管理")
    admin.wait_for_url("**/web/admin/staff")
    admin.fill("#add-staff input[name=username]", "liu-new")
    admin.fill("#add-staff input[name=name]", "刘新")
    admin.select_option("#add-staff select[name=role]", "mediator")
    admin.fill("#add-staff input[name=unit_code]", "CMA")
    admin.check("#add-staff input[value=neighbour]")
    admin.click("#add-staff button[type=submit]")
    link = admin.inner_text("#sign-in-link").strip()
    assert link.startswith(site.base_url + "/web/welcome/")
    shoot(admin, "admin-staff-added")

    newcomer = new_page()
    newcomer.goto(link)
    assert newcomer.inner_text("#welcome-username") == "liu-new"
    newcomer.fill("#password", "a-password-of-my-own")
    newcomer.fill("#repeat", "a-password-of-my-own")
    newcomer.click("button[type=submit]")
    newcomer.wait_for_url("**/web/inbox")
    assert "刘新" in newcomer.content()
    shoot(newcomer, "welcome-inbox")
    token = httpx.post(
        site.url("/api/v1/auth/token"),
        json={"username": "liu-new", "password": "a-password-of-my-own"},
        timeout=10,
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(site.url("/api/v1/cases"), headers=auth, timeout=10).status_code == 200
    newcomer.goto(link)  # the link worked once
    assert "已使用" in newcomer.content()

    admin.goto(site.url("/web/cases?sort=due"))
    assert "共" in admin.inner_text("h2") and admin.is_visible("#export-xlsx")
    shoot(admin, "case-list")
    admin.goto(site.url("/web/admin/staff/liu-new"))
    admin.click("#deactivate")
    admin.wait_for_selector("#saved")
    assert "已停用" in admin.inner_text("#state")
    shoot(admin, "admin-staff-deactivated")

    newcomer.goto(site.url("/web/inbox"))
    assert "/web/login" in newcomer.url
    deadline = time.monotonic() + 8
    status = 200
    while time.monotonic() < deadline:
        status = httpx.get(site.url("/api/v1/cases"), headers=auth, timeout=10).status_code
        if status == 401:
            break
        time.sleep(0.5)
    assert status == 401
