"""The inbox as a worker meets it each morning: what became overdue today apart from
what has been overdue for days."""

from __future__ import annotations

import re
from datetime import timedelta

from models import clock
from models.db import write_session
from tests.api.conftest import Api, web_cookie
from tests.factories import advance_to_assigned, make_case


def _late_case(api: Api, due: timedelta) -> str:
    """An assigned case whose limits ran out ``due`` ago."""
    with write_session(api.engine) as session:
        case = advance_to_assigned(session, make_case(session), api.city)
        case.response_due_at = case.resolution_due_at = clock.now() - due
        return case.number


def _section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}"')
    return page[start : page.index("</section>", start)]


def test_the_inbox_tells_overdue_since_today_from_long_overdue(
    api: Api, vclock: clock.VirtualClock
) -> None:
    today = _late_case(api, timedelta(minutes=30))  # Monday 08:30, now 09:00
    long_ago = _late_case(api, timedelta(days=3))  # the Friday before
    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["mediatorA"].id or 0))
    page = api.client.get("/web/inbox").text
    just_late = _section(page, "overdue-today")
    assert today in just_late and long_ago not in just_late and "今日已超期" in just_late
    late = _section(page, "overdue")
    assert long_ago in late and today not in late and "超期 1 个工作日" in late
    assert re.search(r"<b>1</b>今日已超期", page) and re.search(r"<b>1</b>已超期", page)


def test_a_returning_worker_sees_what_others_changed_since_they_last_signed_in(
    api: Api,
) -> None:
    with write_session(api.engine) as session:
        case = advance_to_assigned(session, make_case(session), api.city)
        number, case_id = case.number, case.id
    mediator = api.city.staff["mediatorA"].id or 0
    api.client.cookies.set("tj_session", web_cookie(api, mediator))
    first = api.client.get("/web/inbox").text
    assert 'id="changes"' not in first  # a first visit: nothing to compare with
    version = api.as_("supervisor").get(f"/api/v1/cases/{case_id}").json()["case"]["version"]
    moved = api.as_("supervisor").post(
        f"/api/v1/cases/{case_id}/classification",
        json={"version": version, "priority": "high"},
    )
    assert moved.status_code == 200, moved.text
    api.client.cookies.set("tj_session", web_cookie(api, mediator))  # the next morning
    changes = _section(api.client.get("/web/inbox").text, "changes")
    assert number in changes and "改类" in changes


def test_what_a_role_may_do_is_one_rule() -> None:
    from models.access import Principal
    from models.actions import Duty, role_may
    from models.enums import StaffRole

    def may(role: StaffRole) -> set[str]:
        who = Principal(kind="staff", staff_id=1, role=role, unit_path="/C/")
        return {d.value for d in Duty if role_may(who, d)}

    assert may(StaffRole.ADMIN) == {d.value for d in Duty}
    assert may(StaffRole.SUPERVISOR) == {"record", "export", "report", "simulate", "problem"}
    assert may(StaffRole.COMMUNITY_WORKER) == {"record", "export"}
    assert may(StaffRole.VOLUNTEER) == set()
    assert not role_may(None, Duty.RECORD)
