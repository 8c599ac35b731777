"""The three rates through the HTTP front ends: first contact, a return visit that needs
its outcome, the resident's answers and a note (a 4xx otherwise, nothing written), the
monthly ranking, the problem of the month, and the Prefect link's time range."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from models import clock
from models.db import write_session
from models.enums import StaffRole
from models.escalation import escalate_case
from models.follow_up import FollowUp
from models.mediating import merge_case, resolve_directly
from models.month_problem import MonthProblem
from tests.api.conftest import Api, web_cookie
from tests.factories import add_staff, advance_to_assigned, make_case, staff_actor

GOOD_VISIT = {
    "outcome": "carried_out",
    "resolved": "basically",
    "satisfied": "satisfied",
    "channel": "phone",
    "notes": "电话回访申请人，工资已补发大部分",
}


def _assigned_case(api: Api, *, settled: bool) -> tuple[int, str]:
    with write_session(api.engine) as session:
        if "visitor" not in api.city.staff:
            add_staff(session, api.city, "visitor", StaffRole.RETURN_VISITOR, "S1")
        case = make_case(session)
        advance_to_assigned(session, case, api.city)
        if settled:
            resolve_directly(
                session,
                case_id=case.id or 0,
                resolution="协调企业补发工资",
                actor=staff_actor(api.city, "mediatorA"),
                expected_version=None,
            )
        return case.id or 0, case.number


def _version(api: Api, user: str, case_id: int) -> int:
    return int(api.as_(user).get(f"/api/v1/cases/{case_id}").json()["case"]["version"])


def test_first_contact_is_recorded_by_a_person(api: Api) -> None:
    case_id, _ = _assigned_case(api, settled=False)
    mediator = api.as_("mediatorA")
    body = {"version": _version(api, "mediatorA", case_id), "method": "phone", "note": "已电话联系"}
    answer = mediator.post(f"/api/v1/cases/{case_id}/contact", json=body)
    assert answer.status_code == 200, answer.text
    detail = mediator.get(f"/api/v1/cases/{case_id}").json()
    contacted = [e for e in detail["timeline"] if e["verb"] == "contacted"]
    assert len(contacted) == 1 and contacted[0]["data"]["in_time"] is True
    bad = mediator.post(
        f"/api/v1/cases/{case_id}/contact",
        json={"version": _version(api, "mediatorA", case_id), "method": "telepathy"},
    )
    assert bad.status_code == 422


def test_a_return_visit_needs_its_outcome_answers_and_note(api: Api) -> None:
    case_id, number = _assigned_case(api, settled=True)
    visitor = api.as_("visitor")  # the street's return visitor: independent of CMA
    version = _version(api, "visitor", case_id)
    incomplete: list[dict[str, Any]] = [
        {},
        {"outcome": "carried_out"},
        {**GOOD_VISIT, "notes": ""},
        {**GOOD_VISIT, "resolved": None},
        {**GOOD_VISIT, "satisfied": "meh"},
        {**GOOD_VISIT, "channel": "resident_link"},  # only the resident answers that way
        {"outcome": "unreachable", "notes": "无人接听", "satisfied": "satisfied"},
    ]
    for body in incomplete:
        answer = visitor.post(
            f"/api/v1/cases/{case_id}/follow-ups", json={"version": version, **body}
        )
        assert answer.status_code == 422, (body, answer.text)
    assert _version(api, "visitor", case_id) == version  # nothing written

    # The page's form: an empty form is refused the same way, and names the fields.
    cookie = {"Cookie": f"tj_session={web_cookie(api, api.city.staff['mediatorA'].id or 0)}"}
    page = api.client.get(f"/web/cases/{number}", headers=cookie).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf and 'name="resolved"' in page and 'name="satisfied"' in page
    empty = api.client.post(
        f"/web/cases/{number}/actions/follow_up_recorded",
        data={"csrf_token": csrf.group(1), "version": str(version), "outcome": "carried_out"},
        headers=cookie,
    )
    assert empty.status_code == 422
    assert _version(api, "visitor", case_id) == version

    done = visitor.post(
        f"/api/v1/cases/{case_id}/follow-ups", json={"version": version, **GOOD_VISIT}
    )
    assert done.status_code == 200, done.text
    with write_session(api.engine) as session:
        visit = session.get(FollowUp, done.json()["record_id"])
        assert visit is not None and visit.independent and visit.judged_unit_path is not None
        assert (visit.resolved, visit.satisfied) == ("basically", "satisfied")


def test_ranking_and_problem_of_the_month(api: Api, vclock: clock.VirtualClock) -> None:
    month = clock.to_local(clock.now()).strftime("%Y-%m")
    supervisor = api.as_("supervisor")
    ranking = supervisor.get("/api/v1/metrics/ranking", params={"month": month})
    assert ranking.status_code == 200
    codes = {r["unit_code"]: r for r in ranking.json()}
    assert {"CMA", "CMB", "AG-LAB"} <= set(codes)  # agencies are ranked with communities
    assert {"response_cases", "resolution_cases", "rated"} <= set(codes["CMA"])
    assert supervisor.get("/api/v1/metrics/ranking", params={"month": "2026-13"}).status_code == 422

    decision = {
        "month": month,
        "category": "labour",
        "title": "电子厂欠薪反复投诉",
        "lead_unit_code": "AG-LAB",
        "plan": "区人社局牵头，每周联合社区排查欠薪线索，月底前清欠。",
    }
    put = api.client.put
    refused = put(
        "/api/v1/metrics/problem-of-the-month", json=decision, headers=api.headers("workerA")
    )
    assert refused.status_code == 403
    assert api.count(MonthProblem) == 0
    accepted = put(
        "/api/v1/metrics/problem-of-the-month", json=decision, headers=api.headers("supervisor")
    )
    assert accepted.status_code == 200, accepted.text
    shown = supervisor.get("/api/v1/metrics/problem-of-the-month", params={"month": month}).json()
    assert shown["decided"]["lead_unit_code"] == "AG-LAB"
    assert shown["decided"]["title"] == decision["title"]


def test_the_prefect_link_covers_the_whole_life_of_the_case(api: Api) -> None:
    case_id, number = _assigned_case(api, settled=False)
    detail = api.as_("mediatorA").get(f"/api/v1/cases/{case_id}").json()
    query = parse_qs(urlparse(detail["prefect_runs_url"]).query)
    assert query["tag"] == [f"case:{number}"] and query["type"] == ["range"]
    created = clock.ensure_utc(datetime.fromisoformat(detail["case"]["created_at"]))
    start = datetime.fromisoformat(query["startDate"][0].replace("Z", "+00:00"))
    end = datetime.fromisoformat(query["endDate"][0].replace("Z", "+00:00"))
    assert start < created < clock.now() < end
    # Written out by hand (the dashboard makes one per row), as urlencode would write it.
    written = urlencode({k: v[0] for k, v in query.items()})
    assert detail["prefect_runs_url"].endswith(f"/runs?{written}")


def test_the_dashboard_ranks_agencies_explains_the_rates_and_takes_the_problem(
    api: Api, vclock: clock.VirtualClock
) -> None:
    case_id, number = _assigned_case(api, settled=False)
    vclock.advance(timedelta(days=30))  # long past its limits: on the overdue list
    cookie = {"Cookie": f"tj_session={web_cookie(api, api.city.staff['supervisor'].id or 0)}"}
    page = api.client.get("/web/dashboard", headers=cookie)
    assert page.status_code == 200
    html = page.text
    assert "区人社局" in html and "结对部门" in html  # agencies are ranked too
    assert "三率怎么算" in html and "自动派单不算联系" in html
    runs = re.search(rf'href="([^"]*runs\?tag=case%3A{number}[^"]*)"', html)
    assert runs and "type=range" in runs.group(1) and "startDate=" in runs.group(1)

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf and 'action="/web/dashboard/problem"' in html
    month = clock.to_local(clock.now()).strftime("%Y-%m")
    form = {
        "csrf_token": csrf.group(1),
        "month": month,
        "category": "labour",
        "title": "电子厂欠薪",
        "lead_unit_code": "AG-LAB",
        "plan": "",
    }
    refused = api.client.post("/web/dashboard/problem", data=form, headers=cookie)
    assert refused.status_code == 303 and "problem_error" in refused.headers["location"]
    assert api.count(MonthProblem) == 0
    form["plan"] = "区人社局牵头，联合社区排查欠薪线索。"
    saved = api.client.post("/web/dashboard/problem", data=form, headers=cookie)
    assert saved.status_code == 303 and "problem_error" not in saved.headers["location"]
    shown = api.client.get(f"/web/dashboard?month={month}", headers=cookie).text
    assert "联合社区排查欠薪线索" in shown and "牵头单位" in shown
    worker = {"Cookie": f"tj_session={web_cookie(api, api.city.staff['workerA'].id or 0)}"}
    assert (
        'action="/web/dashboard/problem"'
        not in api.client.get("/web/dashboard", headers=worker).text
    )
    assert case_id


def test_a_return_visitor_only_hears_the_answers(api: Api) -> None:
    case_id, _ = _assigned_case(api, settled=False)
    visitor = api.as_("visitor")
    body = {"version": _version(api, "visitor", case_id), "method": "phone"}
    assert visitor.post(f"/api/v1/cases/{case_id}/contact", json=body).status_code == 403
    detail = visitor.get(f"/api/v1/cases/{case_id}").json()
    assert detail["allowed_actions"] == []  # nothing to do until the case is in follow-up


def _escalate_by_hand(api: Api, case_id: int) -> None:
    """The supervisor sends the case up a level (提级) by hand."""
    with write_session(api.engine) as session:
        escalate_case(
            session,
            case_id=case_id,
            now=clock.now(),
            actor=staff_actor(api.city, "supervisor"),
            by_hand=True,
            reason="社区调解无果，提请街道调解",
        )


def test_the_timeline_names_where_a_case_went_and_what_it_was_linked_to(api: Api) -> None:
    kept_id, kept_number = _assigned_case(api, settled=False)
    moved_id, _ = _assigned_case(api, settled=False)
    _escalate_by_hand(api, moved_id)
    with write_session(api.engine) as session:
        merge_case(
            session,
            case_id=moved_id,
            into_case_id=kept_id,
            actor=staff_actor(api.city, "supervisor"),
            expected_version=None,
        )
    timeline = api.as_("supervisor").get(f"/api/v1/cases/{moved_id}").json()["timeline"]
    notes = {e["verb"]: (e["note"], e["note_en"]) for e in timeline}
    assert notes["escalated"] == ("桂花社区 → 柳河街道", "CMA → S1")
    assert notes["merged"] == (f"并入 {kept_number}", f"merged into {kept_number}")
    assert notes["assigned"] == (None, None)  # assigned by hand in the fixture: nobody named


def test_the_case_page_timeline_shows_each_move_its_note_and_who(api: Api) -> None:
    """The web page's timeline says what the REST timeline says, row by row."""
    moved_id, moved_number = _assigned_case(api, settled=False)
    _escalate_by_hand(api, moved_id)
    supervisor_id = api.city.staff["supervisor"].id
    assert supervisor_id is not None
    api.client.cookies.set("tj_session", web_cookie(api, supervisor_id))
    page = api.client.get(f"/web/cases/{moved_number}")
    assert page.status_code == 200, page.text[:300]
    timeline = page.text[page.text.index('id="timeline"') :]
    rows = re.findall(r'<li class="event ev-(\w+)">(.*?)</li>', timeline, re.S)
    escalated = [text for verb, text in rows if verb == "escalated"]
    assert len(escalated) == 1 and "桂花社区 → 柳河街道" in escalated[0]
    assert api.city.staff["supervisor"].display_name in escalated[0]
    assert "→" in escalated[0] and 'class="muted">' in escalated[0]  # the status change
    assert rows[0][0] == "submitted" and len(rows) >= 3
