"""Who reaches what: every role x every endpoint that takes an id or lists x two
communities. A worker of community A reaches nothing of community B (404, never 403),
and lists hold no B rows. Forged tokens are refused."""

from __future__ import annotations

import base64
import json
import warnings
from datetime import timedelta
from typing import Any

import jwt
import pytest

from api.security import AUDIENCE, ISSUER, _signing_key, create_open311_key, create_token
from models import routing, triage
from models.db import write_session
from models.enums import StaffRole
from models.event import CaseEvent
from models.lifecycle import Actor
from tests.api.conftest import Api
from tests.api.test_cases_api import CASE
from tests.factories import add_staff

ACTIONS: dict[str, dict[str, Any]] = {
    "consent": {},
    "mediation/start": {},
    "mediation/extend": {"until": "2027-01-31", "both_parties_consent": True},
    "sessions": {
        "held_at": "2026-11-30T10:00:00+08:00",
        "place": "p",
        "participants": "p",
        "minutes": "m",
    },
    "agreement": {"summary": "s", "terms": [{"text": "t", "due_on": "2026-12-31"}]},
    "failure": {"reason": "r"},
    "follow-ups": {
        "outcome": "carried_out",
        "resolved": "resolved",
        "satisfied": "satisfied",
        "notes": "电话回访",
    },
    "reassign": {"assignee_id": 1},
    "escalate": {"reason": "r"},
    "refer": {"target": "court", "reason": "r"},
    "withdraw": {"reason": "r"},
    "reopen": {"reason": "r"},
    "resolve": {"resolution": "r"},
    "merge": {"into": "1"},
}
COMMUNITY_ROLES = ("worker", "grid", "mediator", "volunteer", "instructor")


def open_case(api: Api, worker: str, place: str) -> dict[str, Any]:
    r = api.as_(worker).post("/api/v1/cases", json={**CASE, "place_code": place})
    assert r.status_code == 201
    case_id = r.json()["case"]["id"]
    with write_session(api.engine) as s:
        triage.triage_case(s, case_id=case_id, actor=Actor.system())
        routing.assign_case(s, case_id=case_id, actor=Actor.system())
    return dict(api.as_("admin").get(f"/api/v1/cases/{case_id}").json()["case"])


@pytest.fixture
def two(api: Api) -> tuple[Api, dict[str, dict[str, Any]]]:
    with write_session(api.engine) as s:
        for tag in ("A", "B"):
            add_staff(s, api.city, f"volunteer{tag}", StaffRole.VOLUNTEER, f"CM{tag}")
            add_staff(s, api.city, f"instructor{tag}", StaffRole.INSTRUCTOR, f"CM{tag}")
    cases = {"A": open_case(api, "workerA", "BA1"), "B": open_case(api, "workerB", "BB2")}
    return api, cases


def test_community_staff_reach_nothing_of_the_other_community(
    two: tuple[Api, dict[str, dict[str, Any]]],
) -> None:
    api, cases = two
    checked = 0
    for mine, other in (("A", "B"), ("B", "A")):
        foreign = cases[other]
        for role in COMMUNITY_ROLES:
            user = api.as_(f"{role}{mine}")
            assert user.get(f"/api/v1/cases/{cases[mine]['id']}").status_code == 200
            for ref in (foreign["id"], foreign["number"]):
                r = user.get(f"/api/v1/cases/{ref}")
                assert r.status_code == 404, (role, mine, r.text)
                assert foreign["description"] not in r.text
            events = api.count(CaseEvent)
            for action, body in ACTIONS.items():
                r = user.post(
                    f"/api/v1/cases/{foreign['id']}/{action}",
                    json={"version": foreign["version"], **body},
                )
                assert r.status_code == 404, (role, mine, action, r.text)
                checked += 1
            assert api.count(CaseEvent) == events
            for params in (
                {},
                {"unit": f"CM{other}"},
                {"q": foreign["number"]},
                {"status": foreign["status"]},
                {"page_size": 100},
            ):
                listed = user.get("/api/v1/cases", params=params).json()
                assert foreign["id"] not in [c["id"] for c in listed["items"]], (role, params)
            backlog = user.get("/api/v1/metrics/backlog").json()
            assert f"CM{other}" not in {row["unit_code"] for row in backlog}
    assert checked == 2 * len(COMMUNITY_ROLES) * len(ACTIONS)


@pytest.mark.parametrize("username", ["street_mediator", "supervisor", "admin"])
def test_upper_levels_reach_both(two: tuple[Api, dict[str, dict[str, Any]]], username: str) -> None:
    api, cases = two
    user = api.as_(username)
    ids = {c["id"] for c in user.get("/api/v1/cases").json()["items"]}
    assert {cases["A"]["id"], cases["B"]["id"]} <= ids
    for case in cases.values():
        assert user.get(f"/api/v1/cases/{case['id']}").status_code == 200


def test_read_only_roles_may_not_act_on_their_own_cases(
    two: tuple[Api, dict[str, dict[str, Any]]],
) -> None:
    api, cases = two
    own = cases["A"]
    for role in ("volunteer", "instructor"):
        user = api.as_(f"{role}A")
        assert user.get(f"/api/v1/cases/{own['id']}").json()["allowed_actions"] == []
        r = user.post(
            f"/api/v1/cases/{own['id']}/withdraw", json={"version": own["version"], "reason": "r"}
        )
        assert r.status_code == 403


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _hs512(claims: dict[str, Any]) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the short-key warning: this token is a forgery
        return jwt.encode(claims, _signing_key(), algorithm="HS512")


def forged_tokens(api: Api) -> dict[str, str]:
    staff = api.city.staff["workerA"]
    good = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(staff.id),
        "role": "community_worker",
        "unit": "CMA",
    }
    import time

    now = int(time.time())
    valid = {**good, "iat": now, "exp": now + 600}
    real = create_token(subject=str(staff.id), role="community_worker", unit="CMA")
    head, _payload, sig = real.split(".")
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({**valid, 'role': 'admin'})}.",
        "wrong key": jwt.encode(valid, b"not-the-key" * 4, algorithm="HS256"),
        "expired": jwt.encode({**valid, "exp": now - 3600}, _signing_key(), algorithm="HS256"),
        "wrong audience": jwt.encode(
            {**valid, "aud": "someone-else"}, _signing_key(), algorithm="HS256"
        ),
        "wrong issuer": jwt.encode({**valid, "iss": "evil"}, _signing_key(), algorithm="HS256"),
        "missing role": jwt.encode(
            {k: v for k, v in valid.items() if k != "role"}, _signing_key(), algorithm="HS256"
        ),
        "unknown role": jwt.encode({**valid, "role": "root"}, _signing_key(), algorithm="HS256"),
        "role changed": jwt.encode({**valid, "role": "admin"}, _signing_key(), algorithm="HS256"),
        "payload swapped": f"{head}.{_b64({**valid, 'role': 'admin'})}.{sig}",
        "HS512": _hs512(valid),
        "no such staff": jwt.encode({**valid, "sub": "99999"}, _signing_key(), algorithm="HS256"),
        "garbage": "not.a.token",
        "empty": "",
    }


def test_forged_tokens_are_refused(api: Api) -> None:
    tokens = forged_tokens(api)
    for name, token in tokens.items():
        r = api.client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (name, r.text)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert r.json()["code"] == "unauthorized"
    assert api.client.get("/api/v1/cases").status_code == 401
    assert (
        api.client.get("/api/v1/cases", headers={"Authorization": "Basic dTpw"}).status_code == 401
    )
    # An Open311 key is not a staff token.
    r = api.client.get("/api/v1/cases", headers={"Authorization": f"Bearer {create_open311_key()}"})
    assert r.status_code == 403
    # A real token still works, and a short-lived one expires.
    assert api.as_("workerA").get("/api/v1/cases").status_code == 200
    short = create_token(
        subject=str(api.city.staff["workerA"].id),
        role="community_worker",
        unit="CMA",
        ttl=timedelta(seconds=-60),
    )
    assert (
        api.client.get("/api/v1/cases", headers={"Authorization": f"Bearer {short}"}).status_code
        == 401
    )


def test_sign_in_with_password(api: Api) -> None:
    from models.passwords import hash_password
    from models.staff import Staff

    with write_session(api.engine) as s:
        row = s.get(Staff, api.city.staff["workerA"].id)
        assert row is not None
        row.password_hash = hash_password("correct horse 马")
        s.add(row)
    r = api.client.post(
        "/api/v1/auth/token", json={"username": "workerA", "password": "correct horse 马"}
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert r.json()["role"] == "community_worker" and r.json()["unit"] == "CMA"
    assert (
        api.client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    for username, password in (("workerA", "wrong"), ("nobody", "x"), ("workerB", "x")):
        r = api.client.post("/api/v1/auth/token", json={"username": username, "password": password})
        assert r.status_code == 401
        assert r.json()["message"] == "用户名或密码错误"


def test_only_staff_of_the_office_export_the_case_list(
    two: tuple[Api, dict[str, dict[str, Any]]],
) -> None:
    """Volunteers and in-service Party members registered with a community read the
    cases they reach one by one; a whole list in a spreadsheet is not theirs to take.
    Volunteers were refused and Party members were not."""
    from tests.api.conftest import web_cookie

    api, _cases = two
    with write_session(api.engine) as s:
        add_staff(s, api.city, "party_memberA", StaffRole.PARTY_MEMBER, "CMA")
    for username, allowed in (("volunteerA", False), ("party_memberA", False), ("workerA", True)):
        api.client.cookies.set("tj_session", web_cookie(api, api.city.staff[username].id))
        listed = api.client.get("/web/cases")
        assert listed.status_code == 200
        assert ('id="export-csv"' in listed.text) == allowed, username
        for kind in ("csv", "xlsx"):
            answer = api.client.get(f"/web/export/cases.{kind}")
            assert (answer.status_code == 200) == allowed, (username, kind)
            assert answer.status_code in (200, 403)


def test_a_street_supervisor_cannot_replace_the_districts_problem_of_the_month(
    api: Api,
) -> None:
    """One problem a month (每月一题). A supervisor of one street could overwrite the one
    the district had set (its lead unit, an agency of the district, outside the street)
    with their own; now a decision is changed only by someone whose area holds its lead
    unit, and the street's supervisor is told so."""
    from models import clock

    with write_session(api.engine) as s:
        add_staff(s, api.city, "street_supervisor", StaffRole.SUPERVISOR, "S1")
    month = clock.to_local(clock.now()).strftime("%Y-%m")
    decision = {
        "month": month,
        "category": "labour",
        "title": "电子厂欠薪反复投诉",
        "lead_unit_code": "AG-LAB",
        "plan": "区人社局牵头，每周联合社区排查欠薪线索。",
    }
    url = "/api/v1/metrics/problem-of-the-month"
    set_by_district = api.client.put(url, json=decision, headers=api.headers("supervisor"))
    assert set_by_district.status_code == 200, set_by_district.text
    mine = decision | {"lead_unit_code": "S1", "title": "本街道的问题", "plan": "街道牵头处理。"}
    replaced = api.client.put(url, json=mine, headers=api.headers("street_supervisor"))
    assert replaced.status_code == 403, replaced.text
    shown = api.as_("supervisor").get(url, params={"month": month}).json()
    assert shown["decided"]["lead_unit_code"] == "AG-LAB"
    again = api.client.put(url, json=mine, headers=api.headers("supervisor"))
    assert again.status_code == 200, again.text
