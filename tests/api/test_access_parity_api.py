"""One rule book, two front ends: the staff REST API and the web pages must give the same
answer for every role x a case in every status x every action (offered or not; refused
with the same code), and the same reach (visible or 404) across two communities and
after a case is escalated from the community to the street."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import Session

from api.security import create_open311_key
from api.web.auth import issue_session
from models import (
    acceptance,
    clock,
    escalation,
    follow_ups,
    lifecycle,
    mediating,
    mediators,
    routing,
    triage,
)
from models.actions import ACTIONS
from models.case import Case
from models.cases import create_case
from models.db import write_session
from models.enums import CaseStatus, Category, ReferralTarget, StaffRole
from models.lifecycle import Actor
from tests.api.conftest import Api, make_api
from tests.api.test_cases_api import CASE
from tests.factories import ID_NUMBER, PHONE, add_staff, case_data, staff_actor

# The lifecycle verb the web page names an action by -> the REST action (path).
WEB_TO_REST: dict[str, str] = {
    "consent_recorded": "consent",
    "mediation_started": "mediation/start",
    "mediation_extended": "mediation/extend",
    "session_recorded": "sessions",
    "agreement_signed": "agreement",
    "mediation_failed": "failure",
    "follow_up_recorded": "follow-ups",
    "assigned": "reassign",
    "escalated": "escalate",
    "referred": "refer",
    "withdrawn": "withdraw",
    "reopened": "reopen",
    "follow_up_due": "resolve",
    "merged": "merge",
    "contacted": "contact",
    "reclassified": "classification",
    "assessed": "assessment",
    "acceptance_reviewed": "acceptance",
    "mediators_named": "mediators",
    "handed_to_committee": "committee",
    "assignment_returned": "send-back",
    "referral_signed": "referral/sign",
    "referral_returned": "referral/return",
    "referral_concluded": "referral/outcome",
    "extension_requested": "extension",
    "extension_decided": "extension/decide",
    "helper_added": "helpers",
    "helper_task_recorded": "helper-tasks",
    "attachment_added": "attachments",  # the page's upload form
}
REST_TO_WEB = {rest: web for web, rest in WEB_TO_REST.items()}

# A valid body for each action (REST JSON; the web form sends the same as fields).
BODIES: dict[str, dict[str, Any]] = {
    "consent": {},
    "mediation/start": {},
    "mediation/extend": {"until": "2027-03-31", "both_parties_consent": True},
    "sessions": {"place": "调解室", "participants": "双方", "minutes": "笔录"},
    "agreement": {"summary": "协议", "terms": [{"text": "付款", "due_on": "2027-03-31"}]},
    "failure": {"reason": "未成"},
    "follow-ups": {
        "outcome": "carried_out",
        "resolved": "resolved",
        "satisfied": "satisfied",
        "notes": "回访",
    },
    "contact": {"method": "phone"},
    "classification": {"category": "labour"},
    "assessment": {"category": "labour"},
    "acceptance": {"accepted": True},
    "mediators": {"staff_ids": [0]},  # filled in with mediatorA's id
    "reassign": {"assignee": "gridA"},  # by user name, as on the page
    "escalate": {"reason": "上报"},
    "refer": {"target": "court", "reason": "移交"},
    "withdraw": {"reason": "撤回"},
    "reopen": {"reason": "重启"},
    "resolve": {"resolution": "当场化解"},
    "merge": {"into": "0"},  # filled in with another case's number
    "committee": {},
    "send-back": {"reason": "不属本网格"},
    "referral/sign": {},
    "referral/return": {"reason": "不属本部门职责"},
    "referral/outcome": {"action_taken": "已处理", "outcome": "resolved"},
    "extension": {"until": "2027-01-08", "reason": "当事人外出"},
    "extension/decide": {"grant": True},
    "helpers": {"username": "volunteerA", "role": "visit"},
    "helper-tasks": {"kind": "visit", "note": "走访"},
    "attachments": {"kind": "scan"},  # with a file that is no PDF, JPEG or PNG (never stored)
}
# The rows the page has no form for (path parameters, or REST only): a body each.
REST_ONLY: dict[str, dict[str, Any]] = {
    "parties": {"side": "respondent", "name": "李四"},
    "parties/edit": {"address": "桂花社区3栋"},
    "mediators/recuse": {"note": "与当事人系亲属"},
    "mediators/replace": {"note": "当事人申请更换", "at_party_request": True},
    "confidential": {"reason": "当事人要求不公开"},
    "court-confirmation": {"status": "applied", "on": "2026-12-01"},
}
NOT_A_SCAN = {"file": ("scan.pdf", b"GIF89a not a scan", "application/pdf")}
USERS = (
    "workerA",
    "gridA",
    "mediatorA",
    "volunteerA",
    "instructorA",
    "workerB",
    "mediatorB",
    "street_mediator",
    "district_mediator",
    "supervisor",
    "admin",
)
OFFERED = re.compile(r'id="action-([a-z_]+)"')


@dataclass
class World:
    api: Api
    cases: dict[str, Case]  # by label: a status name, or "escalated_to_street", "community_b"
    cookies: dict[str, tuple[str, str]]  # username -> (session cookie, csrf token)


def _staff(api: Api, name: str) -> int:
    staff_id = api.city.staff[name].id
    assert staff_id is not None
    return staff_id


def _new(s: Session, api: Api, *, place: str = "BA1") -> Case:
    data = case_data(place_code=place, category=Category.NEIGHBOUR)
    return create_case(s, data=data, actor=Actor.system(), created_by_id=_staff(api, "workerA"))


def _assigned(s: Session, api: Api, *, place: str = "BA1") -> Case:
    case = _new(s, api, place=place)
    assert case.id is not None
    triage.triage_case(s, case_id=case.id, actor=Actor.system())
    routing.assign_case(s, case_id=case.id, actor=Actor.system())
    assert case.status == CaseStatus.ASSIGNED, case.status
    return case


def _in_mediation(s: Session, api: Api) -> Case:
    case = _assigned(s, api)
    assert case.id is not None
    acceptance.review_acceptance(
        s,
        case_id=case.id,
        accepted=True,
        reason=None,
        route=None,
        note="",
        actor=staff_actor(api.city, "mediatorA"),
        expected_version=None,
    )
    mediators.name_mediators(
        s,
        case=case,
        staff_ids=[_staff(api, "mediatorA")],
        actor=staff_actor(api.city, "mediatorA"),
        expected_version=None,
    )
    mediating.record_consent(
        s, case_id=case.id, party_ids=None, actor=Actor.system(), expected_version=None
    )
    mediating.start_mediation(s, case_id=case.id, actor=Actor.system())
    return case


def build_world(api: Api) -> dict[str, Case]:
    boss = staff_actor(api.city, "supervisor")
    cases: dict[str, Case] = {}
    with write_session(api.engine) as s:
        for tag in ("A", "B"):
            add_staff(s, api.city, f"volunteer{tag}", StaffRole.VOLUNTEER, f"CM{tag}")
            add_staff(s, api.city, f"instructor{tag}", StaffRole.INSTRUCTOR, f"CM{tag}")
        cases["submitted"] = _new(s, api)
        triaged = _new(s, api)
        assert triaged.id is not None
        triage.triage_case(s, case_id=triaged.id, actor=Actor.system())
        cases["triaged"] = triaged
        cases["assigned"] = _assigned(s, api)
        cases["in_mediation"] = _in_mediation(s, api)
        agreed = _in_mediation(s, api)
        lifecycle.apply(
            s, case=agreed, verb="agreement_signed", actor=boss, data={"agreement_id": 1}
        )
        cases["agreement"] = agreed
        failed = _in_mediation(s, api)
        assert failed.id is not None
        mediating.fail_mediation(
            s, case_id=failed.id, reason="不成", referral=None, actor=boss, expected_version=None
        )
        cases["mediation_failed"] = failed
        for label in ("follow_up", "closed", "reopened"):
            settled = _assigned(s, api)
            assert settled.id is not None
            mediating.resolve_directly(
                s, case_id=settled.id, resolution="化解", actor=boss, expected_version=None
            )
            if label != "follow_up":
                lifecycle.apply(
                    s, case=settled, verb="closed", actor=Actor.system(), data={"unreachable": True}
                )
            if label == "reopened":
                follow_ups.reopen_case(
                    s, case_id=settled.id, reason="不满意", actor=boss, expected_version=None
                )
            cases[label] = settled
        escalated = _assigned(s, api)
        assert escalated.id is not None
        while escalated.unit_path != api.city.unit("S1").path:
            escalation.escalate_case(
                s,
                case_id=escalated.id,
                now=escalated.updated_at,
                actor=boss,
                by_hand=True,
                reason="督办",
            )
            assert escalated.status == CaseStatus.ESCALATED
        cases["escalated"] = escalated
        # After escalation to the street the workflow assigns it there.
        to_street = _assigned(s, api)
        assert to_street.id is not None
        while to_street.unit_path != api.city.unit("S1").path:
            escalation.escalate_case(
                s, case_id=to_street.id, now=to_street.updated_at, actor=boss, by_hand=True,
                reason="督办",
            )  # fmt: skip
        routing.assign_case(s, case_id=to_street.id, actor=Actor.system())
        cases["escalated_to_street"] = to_street
        referred = _assigned(s, api)
        assert referred.id is not None
        routing.refer_case(
            s,
            case_id=referred.id,
            target=ReferralTarget.COURT,
            agency_code=None,
            reason="诉讼",
            actor=boss,
            expected_version=referred.version,
        )
        cases["referred"] = referred
        merged = _new(s, api)
        assert merged.id is not None and cases["assigned"].id is not None
        mediating.merge_case(
            s,
            case_id=merged.id,
            into_case_id=cases["assigned"].id,
            actor=boss,
            expected_version=None,
        )
        cases["merged"] = merged
        withdrawn = _assigned(s, api)
        assert withdrawn.id is not None
        mediating.withdraw_case(
            s, case_id=withdrawn.id, reason="撤回", actor=boss, expected_version=None
        )
        cases["withdrawn"] = withdrawn
        cases["community_b"] = _assigned(s, api, place="BB1")
        for case in cases.values():
            s.expunge(case)
    assert {c.status for c in cases.values()} == set(CaseStatus)
    return cases


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """Built once for the module: the tests here only read, or are refused."""
    for api in make_api():
        cases = build_world(api)
        with write_session(api.engine) as s:
            cookies = {name: issue_session(s, _staff(api, name)) for name in USERS}
        yield World(api, cases, cookies)


def rest_view(w: World, user: str, case: Case, *, page: bool = True) -> tuple[int, set[str]]:
    """Reach and the actions offered: those the page has forms for (``page``), or the
    others (REST only)."""
    r = w.api.as_(user).get(f"/api/v1/cases/{case.id}")
    if r.status_code != 200:
        return r.status_code, set()
    return r.status_code, {a for a in r.json()["allowed_actions"] if ACTIONS[a].page is page}


def web_view(w: World, user: str, case: Case) -> tuple[int, set[str]]:
    r = w.api.client.get(
        f"/web/cases/{case.number}", headers={"Cookie": f"tj_session={w.cookies[user][0]}"}
    )
    offered = {WEB_TO_REST.get(v, f"?{v}") for v in OFFERED.findall(r.text)}
    return r.status_code, offered if r.status_code == 200 else set()


def _body(w: World, action: str, case: Case) -> dict[str, Any]:
    body = dict(BODIES[action])
    if action == "sessions":
        body["held_at"] = clock.now().isoformat()
    if action == "mediators":
        body["staff_ids"] = [_staff(w.api, "mediatorA")]
    if action == "merge":
        body["into"] = w.cases["community_b" if case is w.cases["assigned"] else "assigned"].number
    return body


def _form(body: dict[str, Any]) -> dict[str, str]:
    form: dict[str, str] = {}
    for key, value in body.items():
        if key == "accepted":
            form["decision"] = "accept" if value else "not_accepted"
        elif key == "staff_ids":
            form[key] = ",".join(str(v) for v in value)
        elif key == "terms":
            form["term_1"], form["term_1_due"] = value[0]["text"], value[0]["due_on"]
        elif isinstance(value, bool):
            if value:
                form[key] = "1"
        else:
            form[key] = str(value)
    return form


def rest_post(w: World, user: str, case: Case, action: str) -> int:
    url = f"/api/v1/cases/{case.id}/{action}"
    if ACTIONS[action].upload:
        r = w.api.as_(user).post(url, data=BODIES[action], files=NOT_A_SCAN)
        return 303 if r.status_code == 415 else r.status_code  # past the table: the page's 303
    body = {"version": case.version, **_body(w, action, case)}
    status: int = w.api.as_(user).post(url, json=body).status_code
    return status


def web_post(w: World, user: str, case: Case, action: str) -> int:
    token, csrf = w.cookies[user]
    cookie = {"Cookie": f"tj_session={token}"}
    if ACTIONS[action].upload:
        r = w.api.client.post(
            f"/web/cases/{case.number}/attachments",
            data={"csrf_token": csrf, **BODIES[action]},
            files=NOT_A_SCAN,
            headers=cookie,
            follow_redirects=False,
        )
        assert r.status_code != 303 or "upload_error=" in r.headers["location"], "stored"
        return r.status_code
    form = {"csrf_token": csrf, "version": str(case.version), **_form(_body(w, action, case))}
    r = w.api.client.post(
        f"/web/cases/{case.number}/actions/{REST_TO_WEB[action]}",
        data=form,
        headers=cookie,
        follow_redirects=False,
    )
    return r.status_code


def test_rest_and_web_agree_on_reach_and_actions(world: World) -> None:
    """Every user x every case: the same reach and the same actions offered. Actions not
    offered are posted to both front ends (each user a quarter of the cases, in turn, so
    that every case and action is posted by several roles): refused by both with the same
    status, and nothing changes."""
    disagreements: list[str] = []
    refused = 0
    for turn, user in enumerate(USERS):
        for index, (label, case) in enumerate(world.cases.items()):
            rest, web = rest_view(world, user, case), web_view(world, user, case)
            if rest != web:
                disagreements.append(f"{user} on {label}: REST {rest} web {web}")
                continue
            if index % 4 != turn % 4:
                continue
            for action in WEB_TO_REST.values():
                if action in rest[1]:
                    continue
                answers = (
                    rest_post(world, user, case, action),
                    web_post(world, user, case, action),
                )
                refused += 1
                if answers[0] != answers[1] or answers[0] < 400:
                    disagreements.append(f"{user} {action} on {label}: REST/web {answers}")
    assert not disagreements, "\n".join(disagreements)
    assert refused > len(USERS) * len(world.cases) * 2
    with Session(world.api.engine) as s:
        for case in world.cases.values():
            stored = s.get(Case, case.id)
            assert stored is not None and stored.version == case.version, "a refusal wrote"


def test_an_escalated_case_stays_in_view_of_its_community_on_both(world: World) -> None:
    """After escalation to the street, the community where it happened keeps the case in
    view (REST used to answer 200 and the web page 404)."""
    case = world.cases["escalated_to_street"]
    for user in ("workerA", "mediatorA", "gridA", "street_mediator"):
        assert rest_view(world, user, case)[0] == 200, user
        assert web_view(world, user, case)[0] == 200, user
    for user in ("workerB", "mediatorB"):
        assert rest_view(world, user, case)[0] == 404, user
        assert web_view(world, user, case)[0] == 404, user


def test_a_community_worker_who_is_not_the_assignee_is_not_offered_consent(
    world: World,
) -> None:
    """The web page used to offer (and accept) consent and the start of mediation to any
    community worker; REST refused. Mediation is the mediators' and the assignee's."""
    case = world.cases["assigned"]
    assert case.assignee_id != _staff(world.api, "workerA")
    for user in ("workerA", "volunteerA"):
        assert "consent" not in rest_view(world, user, case)[1]
        assert "consent" not in web_view(world, user, case)[1]
        assert rest_post(world, user, case, "consent") == 403
        assert web_post(world, user, case, "consent") == 403
    assert "consent" in rest_view(world, "mediatorA", case)[1]
    assert "consent" in web_view(world, "mediatorA", case)[1]


def test_the_recorder_sees_the_contact_they_typed_on_both(world: World) -> None:
    """The worker who recorded a complaint is offered the return visit that needs the
    contact: they see it in clear (the page used to show them 139****5678); others not."""
    case = world.cases["follow_up"]
    assert case.created_by_id == _staff(world.api, "workerA") != case.assignee_id
    for user, clear in (("workerA", True), ("supervisor", False), ("volunteerA", False)):
        rest = world.api.as_(user).get(f"/api/v1/cases/{case.id}")
        web = world.api.client.get(
            f"/web/cases/{case.number}", headers={"Cookie": f"tj_session={world.cookies[user][0]}"}
        )
        assert rest.json()["personal_data_visible"] is clear, user
        assert (PHONE in rest.text) is clear and (PHONE in web.text) is clear, user
        assert (ID_NUMBER in web.text) is clear, user
    assert "follow-ups" in rest_view(world, "workerA", world.cases["follow_up"])[1]


def test_one_403_code_on_every_front_end(world: World) -> None:
    """Refusals by role answer 403 with the one code, over REST and Open311 (the spec's
    numeric code) and on the web pages (403, where a read-only user's intake post used to
    answer 404)."""
    api = world.api
    open311_key_on_staff_api = api.client.get(
        "/api/v1/cases", headers={"Authorization": f"Bearer {create_open311_key()}"}
    )
    read_only = api.as_("volunteerA").post("/api/v1/cases", json={})
    by_role = api.as_("workerA").post(
        f"/api/v1/cases/{world.cases['assigned'].id}/consent",
        json={"version": world.cases["assigned"].version},
    )
    for answer in (open311_key_on_staff_api, read_only, by_role):
        assert answer.status_code == 403 and answer.json()["code"] == "forbidden", answer.text
    bad_key = api.client.post("/open311/v2/requests.json", data={"api_key": "nope"})
    assert bad_key.status_code == 403 and bad_key.json()[0]["code"] == "403"
    token, csrf = world.cookies["volunteerA"]
    page = api.client.post(
        "/web/cases/new",
        data={"csrf_token": csrf, "category": "labour", "complainant_name": "张三"},
        headers={"Cookie": f"tj_session={token}"},
        follow_redirects=False,
    )
    assert page.status_code == 403


def test_filing_outside_ones_area_is_refused_on_both(world: World) -> None:
    """The place rule: staff file only at places in their own area (the web checked it,
    REST did not); the public files anywhere."""
    api = world.api
    body = {**CASE, "place_code": "BB1"}
    rest = api.as_("workerA").post("/api/v1/cases", json=body)
    assert rest.status_code == 422
    assert [f["field"] for f in rest.json()["fields"]] == ["place_code"]
    token, csrf = world.cookies["workerA"]
    page = api.client.post(
        "/web/cases/new",
        data={
            "csrf_token": csrf,
            "category": "labour",
            "place_code": "BB1",
            "description": "拖欠工资",
            "complainant_name": "张三",
        },
        headers={"Cookie": f"tj_session={token}"},
        follow_redirects=False,
    )
    assert page.status_code == 422 and "不在您负责的范围内" in page.text
    assert api.as_("street_mediator").post("/api/v1/cases", json=body).status_code == 201


def _rest_only_post(w: World, user: str, case: Case, action: str, version: int) -> Any:
    row = ACTIONS[action]
    ids = {"staff_id": _staff(w.api, "mediatorA"), "party_id": 1}
    url = f"/api/v1/cases/{case.id}/{row.rest_path.format(**ids)}"
    body = {"version": version, **REST_ONLY[action]}
    return w.api.client.request(row.method, url, json=body, headers=w.api.as_(user).auth)


def test_the_rest_only_rows_do_what_they_offer(world: World) -> None:
    """The rows the page has no form for (recusal, replacement, parties, confidentiality,
    court confirmation): for every user x every case, REST offers a row exactly when its
    route lets the person past the table (a wrong version then answers the service's 409
    "conflict"); a row not offered is refused (404 out of reach, 403, or 409 not now),
    and the page runs none of them. Offered uploads reach the file check on both front
    ends. Nothing is written."""
    assert set(REST_ONLY) == {a.name for a in ACTIONS.values() if not a.page}
    wrong: list[str] = []
    for turn, user in enumerate(USERS):
        for index, (label, case) in enumerate(world.cases.items()):
            reach, offered = rest_view(world, user, case, page=False)
            if "attachments" in rest_view(world, user, case)[1]:
                answers = (
                    rest_post(world, user, case, "attachments"),
                    web_post(world, user, case, "attachments"),
                )
                if answers != (303, 303):
                    wrong.append(f"{user} upload on {label}: REST/web {answers}")
            if index % 2 != turn % 2:
                continue
            for action in REST_ONLY:
                stale = action in offered
                r = _rest_only_post(world, user, case, action, case.version + stale)
                code = r.json().get("code")
                expected = (
                    {"conflict"}
                    if stale
                    else {"not_found"}
                    if reach == 404
                    else {"forbidden", "invalid_transition", "guard_failed"}
                )
                if code not in expected:
                    wrong.append(f"{user} {action} on {label} (offered {stale}): {r.text[:120]}")
    assert not wrong, "\n".join(wrong)
    token, csrf = world.cookies["admin"]
    for verb in ("party_added", "marked_confidential", "mediator_recused"):
        page = world.api.client.post(
            f"/web/cases/{world.cases['assigned'].number}/actions/{verb}",
            data={"csrf_token": csrf, "reason": "r", "name": "n", "side": "respondent"},
            headers={"Cookie": f"tj_session={token}"},
            follow_redirects=False,
        )
        assert page.status_code == 404, verb
    with Session(world.api.engine) as s:
        for case in world.cases.values():
            stored = s.get(Case, case.id)
            assert stored is not None and stored.version == case.version, "a refusal wrote"
