"""A case's whole life through the HTTP app. The workflow steps (triage, assignment,
follow-up scheduling and settlement) are called directly, as the flows would."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from models import follow_ups, routing, triage
from models.case import Case
from models.clock import VirtualClock
from models.db import write_session
from models.event import CaseEvent
from models.lifecycle import Actor
from tests.api.conftest import Api, AsUser
from tests.api.test_cases_api import CASE
from tests.factories import ID_NUMBER, PHONE

pytestmark = pytest.mark.usefixtures("vclock")


def step(api: Api, fn: Any, case_id: int) -> None:
    with write_session(api.engine) as s:
        fn(s, case_id=case_id, actor=Actor.system())


def created_and_assigned(api: Api) -> tuple[int, AsUser]:
    r = api.as_("workerA").post("/api/v1/cases", json=CASE)
    assert r.status_code == 201, r.text
    case_id = r.json()["case"]["id"]
    step(api, triage.triage_case, case_id)
    step(api, routing.assign_case, case_id)
    with Session(api.engine) as s:
        case = s.get(Case, case_id)
        assert case is not None and case.status.value == "assigned", case and case.status
        assignee = next(n for n, st in api.city.staff.items() if st.id == case.assignee_id)
    return case_id, api.as_(assignee)


def committee(api: Api, case_id: int, handler: AsUser) -> AsUser:
    """受理审查 and a named mediator (the community's), through the API."""
    act(handler, case_id, "acceptance", {"accepted": True, "note": "属于人民调解受理范围"})
    act(handler, case_id, "mediators", {"staff_ids": [api.city.staff["mediatorA"].id]})
    return api.as_("mediatorA")


def act(
    user: AsUser, case_id: int, action: str, body: dict[str, Any], *, status: int = 200
) -> dict[str, Any]:
    version = user.get(f"/api/v1/cases/{case_id}").json()["case"]["version"]
    r = user.post(f"/api/v1/cases/{case_id}/{action}", json={"version": version, **body})
    assert r.status_code == status, r.text
    return dict(r.json())


def test_full_life_agreement_follow_up_closed(api: Api, vclock: VirtualClock) -> None:
    case_id, handler = created_and_assigned(api)
    detail = handler.get(f"/api/v1/cases/{case_id}").json()
    assert "consent" in detail["allowed_actions"]
    parties = [p["id"] for p in detail["parties"]]

    mediator = committee(api, case_id, handler)
    act(handler, case_id, "consent", {"party_ids": parties, "how": "phone"})
    out = act(handler, case_id, "mediation/start", {})
    assert out["case"]["status"] == "in_mediation"
    vclock.advance(timedelta(hours=2))
    out = act(
        mediator,
        case_id,
        "sessions",
        {
            "held_at": "2026-11-30T10:00:00+08:00",
            "place": "桂花社区调解室",
            "participants": "双方当事人、调解员",
            "minutes": "双方同意分三期支付拖欠工资。",
        },
    )
    assert out["record_id"]
    out = act(
        mediator,
        case_id,
        "agreement",
        {
            "summary": "厂方分三期支付拖欠工资",
            "terms": [{"text": "支付第一期工资", "due_on": "2026-12-31"}],
        },
    )
    assert out["case"]["status"] == "agreement"
    step(api, follow_ups.schedule_follow_ups, case_id)
    vclock.advance(timedelta(days=1))
    out = act(
        handler,
        case_id,
        "follow-ups",
        {
            "outcome": "carried_out",
            "resolved": "resolved",
            "satisfied": "satisfied",
            "notes": "电话回访",
        },
    )
    step(api, follow_ups.settle_after_follow_up, case_id)

    detail = handler.get(f"/api/v1/cases/{case_id}").json()
    verbs = [e["verb"] for e in detail["timeline"]]
    for verb in (
        "submitted",
        "triaged",
        "assigned",
        "acceptance_reviewed",
        "mediators_named",
        "consent_recorded",
        "mediation_started",
        "session_recorded",
        "agreement_signed",
        "follow_up_due",
        "follow_up_recorded",
    ):
        assert verb in verbs
    assert detail["sessions"][0]["place"] == "桂花社区调解室"
    assert detail["agreements"][0]["terms"][0]["text"] == "支付第一期工资"
    assert detail["follow_ups"]
    assert detail["prefect_runs_url"].startswith("http")
    url = detail["prefect_runs_url"]
    assert f"/runs?tag=case%3A{detail['case']['number']}&type=range&startDate=" in url
    assert "&endDate=" in url  # the UI shows 7 days unless the link names a range
    assert detail["case"]["status"] in ("closed", "follow_up")

    # The handler (assignee) and the worker who recorded the complaint (they typed it and
    # make the first contact) see personal data in clear; a supervisor does not.
    assert detail["personal_data_visible"] is True
    assert PHONE in str(detail["parties"])
    recorder_view = api.as_("workerA").get(f"/api/v1/cases/{case_id}").json()
    assert recorder_view["personal_data_visible"] is True
    assert PHONE in str(recorder_view["parties"])
    boss_view = api.as_("supervisor").get(f"/api/v1/cases/{case_id}").json()
    assert boss_view["personal_data_visible"] is False
    assert PHONE not in str(boss_view) and ID_NUMBER not in str(boss_view)
    assert "138****8000" in str(boss_view["parties"])


def test_stale_version_is_refused_and_changes_nothing(api: Api) -> None:
    case_id, handler = created_and_assigned(api)
    committee(api, case_id, handler)
    version = handler.get(f"/api/v1/cases/{case_id}").json()["case"]["version"]
    ok = handler.post(f"/api/v1/cases/{case_id}/consent", json={"version": version})
    assert ok.status_code == 200, ok.text
    events = api.count(CaseEvent)
    stale = handler.post(f"/api/v1/cases/{case_id}/mediation/start", json={"version": version})
    assert stale.status_code == 409
    assert stale.json()["code"] == "conflict"
    assert "版本" in stale.json()["message"]
    assert api.count(CaseEvent) == events
    assert handler.get(f"/api/v1/cases/{case_id}").json()["case"]["status"] == "assigned"
    # If-Match works like the body field; a missing version is refused.
    r = handler.post(
        f"/api/v1/cases/{case_id}/mediation/start", json={}, headers={"If-Match": str(version)}
    )
    assert r.status_code == 409
    r = handler.post(f"/api/v1/cases/{case_id}/mediation/start", json={})
    assert r.status_code == 428
    r = handler.post(
        f"/api/v1/cases/{case_id}/mediation/start",
        json={},
        headers={"If-Match": f'"{version + 1}"'},
    )
    assert r.status_code == 200, r.text
    assert api.count(CaseEvent) == events + 1


def test_withdraw_reopen_refer_escalate_resolve(api: Api) -> None:
    case_id, handler = created_and_assigned(api)
    out = act(handler, case_id, "escalate", {"reason": "涉及人数多，社区无法化解"})
    assert out["case"]["status"] == "escalated"
    sup = api.as_("supervisor")
    out = act(sup, case_id, "refer", {"target": "arbitration", "reason": "转劳动仲裁"})
    assert out["case"]["status"] == "referred"

    case2, handler2 = created_and_assigned(api)
    out = act(handler2, case2, "resolve", {"resolution": "电话解答，当事人表示满意"})
    assert out["case"]["status"] == "follow_up"
    out = act(
        handler2,
        case2,
        "follow-ups",
        {
            "outcome": "carried_out",
            "resolved": "unresolved",
            "satisfied": "dissatisfied",
            "notes": "居民称问题仍未解决",
            "unit_at_fault": True,
        },
    )
    out = act(handler2, case2, "reopen", {"reason": "居民不满意"})
    assert out["case"]["status"] == "reopened"
    out = act(handler2, case2, "withdraw", {"reason": "当事人撤回申请"})
    assert out["case"]["status"] == "withdrawn"
    # Not allowed from the current state: 409, and the message says why in Chinese.
    r = handler2.post(
        f"/api/v1/cases/{case2}/mediation/start", json={"version": out["case"]["version"]}
    )
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"


def test_reassign_within_reach_only(api: Api) -> None:
    case_id, _handler = created_and_assigned(api)
    sup = api.as_("supervisor")
    target = api.city.staff["gridA"].id
    out = act(sup, case_id, "reassign", {"assignee_id": target})
    assert out["case"]["assignee_id"] == target
    worker = api.as_("workerA")
    out = act(
        worker, case_id, "reassign", {"assignee_id": api.city.staff["mediatorB"].id}, status=422
    )
    assert out["fields"] == [] or out["code"] == "validation_error"


def test_reassign_and_add_a_helper_by_username(api: Api) -> None:
    case_id, _handler = created_and_assigned(api)
    sup = api.as_("supervisor")
    out = act(sup, case_id, "reassign", {"assignee": "gridA"})
    assert out["case"]["assignee_id"] == api.city.staff["gridA"].id
    for body in ({"assignee": "nobody-d01"}, {"assignee": "mediatorB"}):
        # Unknown, or outside the worker's reach (answered alike): 422 naming the name.
        who = api.as_("workerA")
        out = act(who, case_id, "reassign", body, status=422)
        assert out["fields"][0]["field"] == "assignee"
        assert body["assignee"] in out["message"] and body["assignee"] in out["message_en"]
    out = act(sup, case_id, "helpers", {"username": "ghost", "role": "visit"}, status=422)
    assert "ghost" in out["message_en"] and out["fields"][0]["field"] == "username"
    out = act(sup, case_id, "reassign", {}, status=422)
    assert out["fields"][0]["field"] == "assignee" and "必填" in out["fields"][0]["message"]
