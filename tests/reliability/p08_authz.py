"""Promise 8: authorisation (OWASP API1 broken object level authorisation, API2 broken
authentication, API3 broken object property level authorisation).

The operations are read from the app's own OpenAPI schema, so an endpoint added later is
covered without touching this file: every staff operation with a case in its path, and
every listing. Each community role of community A tries each on community B's case and
the other way round (foreign reached: any 2xx or any new event; existence leaked: any
answer other than 404); lists must hold no foreign row. Forged tokens of every kind
are sent to every operation (refused: 401). A community worker sends privileged fields
(status, unit, assignee, version, created_at) on every creating and changing operation:
nothing of them may change the stored case.
"""

from __future__ import annotations

import base64
import json
import time
import warnings
from datetime import timedelta
from typing import Any

import jwt
from sqlalchemy import func
from sqlmodel import Session, select

from api.security import AUDIENCE, ISSUER, _signing_key, create_token
from models import clock, routing, triage
from models.case import Case
from models.db import write_session
from models.enums import StaffRole
from models.event import CaseEvent
from models.lifecycle import Actor
from tests.factories import add_staff
from tests.reliability.common import App, PromiseResult, Scale, http_app, sqlite_database

COMMUNITY_ROLES = ("worker", "grid", "mediator", "volunteer", "instructor")
CASE = {
    "category": "labour",
    "description": "电子厂拖欠二十名工人三个月工资，工人多次讨要未果。",
    "people_affected": 20,
    "parties": [
        {"side": "complainant", "kind": "person", "name": "王小明", "phone": "13800138000"},
        {"side": "respondent", "kind": "firm", "name": "江心市恒达电子厂"},
    ],
}
# Valid bodies of the case actions (a 422 before the reach check could hide a hole).
ACTION_BODIES: dict[str, dict[str, Any]] = {
    "consent": {},
    "mediation/start": {},
    "mediation/extend": {"until": "2027-01-31", "both_parties_consent": True},
    "sessions": {
        "held_at": "2026-11-30T10:00:00+08:00",
        "place": "调解室",
        "participants": "双方",
        "minutes": "记录",
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
PRIVILEGED = {
    "status": "closed",
    "unit_id": 1,
    "unit_code": "C",
    "unit_path": "/C/",
    "assignee_id": 1,
    "version": 999,
    "created_at": "2020-01-01T00:00:00+00:00",
    "escalation_level": 5,
    "closed_at": "2020-01-02T00:00:00+00:00",
}


def operations(app: App) -> tuple[list[tuple[str, str]], list[str]]:
    """(method, path template) with a case in the path; GET listings without one."""
    schema = app.client.get("/openapi.json").json()
    with_case: list[tuple[str, str]] = []
    listings: list[str] = []
    for path, methods in schema["paths"].items():
        if not path.startswith("/api/v1/") or path.startswith("/api/v1/auth"):
            continue
        for method in methods:
            if "{case_ref}" in path or "{case_id}" in path:
                with_case.append((method.upper(), path))
            elif method == "get" and "{" not in path and path != "/api/v1/units":
                # /units is the directory of the unit tree every staff member needs to
                # escalate and refer: it holds no case, so it is no foreign row.
                listings.append(path)
    return with_case, listings


def open_case(app: App, worker: str, place: str) -> dict[str, Any]:
    r = app.client.post(
        "/api/v1/cases", json={**CASE, "place_code": place}, headers=app.auth(worker)
    )
    assert r.status_code == 201, r.text
    case_id = r.json()["case"]["id"]
    with write_session(app.database.engine) as s:
        triage.triage_case(s, case_id=case_id, actor=Actor.system())
        routing.assign_case(s, case_id=case_id, actor=Actor.system())
    detail = app.client.get(f"/api/v1/cases/{case_id}", headers=app.auth("admin")).json()
    return dict(detail["case"])


def count(app: App, table: Any) -> int:
    with Session(app.database.engine) as s:
        return int(s.exec(select(func.count()).select_from(table)).one())


def call(app: App, method: str, path: str, headers: dict[str, str], version: int) -> Any:
    if method == "GET":
        return app.client.get(path, headers=headers)
    if method == "POST" and path.endswith("/attachments"):
        # The upload takes multipart (a JSON body is refused 415 by the transport before
        # any route, whoever asks): send a real file so the reach and token checks answer.
        pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
        files = {"file": ("scan.pdf", pdf, "application/pdf")}
        return app.client.post(path, files=files, data={"kind": "scan"}, headers=headers)
    action = path.rsplit("/cases/", 1)[-1].split("/", 1)[-1]
    body = {"version": version, **ACTION_BODIES.get(action, {})}
    return app.client.request(method, path, json=body, headers=headers)


def object_level(app: App, cases: dict[str, dict[str, Any]]) -> dict[str, int]:
    with_case, listings = operations(app)
    tried = reached = leaked = list_calls = foreign_rows = 0
    for mine, other in (("A", "B"), ("B", "A")):
        foreign = cases[other]
        for role in COMMUNITY_ROLES:
            headers = app.auth(f"{role}{mine}")
            for method, template in with_case:
                for ref in (foreign["id"], foreign["number"]):
                    path = template.replace("{case_ref}", str(ref)).replace("{case_id}", str(ref))
                    events = count(app, CaseEvent)
                    r = call(app, method, path, headers, foreign["version"])
                    tried += 1
                    if r.status_code < 300 or count(app, CaseEvent) != events:
                        reached += 1
                    if r.status_code != 404 or foreign["description"] in r.text:
                        leaked += 1
            for path in listings:
                for params in (
                    {},
                    {"unit": f"CM{other}"},
                    {"q": foreign["number"]},
                    {"page_size": 100},
                ):
                    r = app.client.get(path, params=params, headers=headers)
                    list_calls += 1
                    if r.status_code >= 500:
                        foreign_rows += 1
                        continue
                    if r.status_code != 200:
                        continue
                    text = r.text
                    if path.endswith("/metrics/overdue"):
                        # Both cases are overdue now: only the caller's own may be counted.
                        foreign_rows += sum(row["overdue"] for row in r.json()) > 1
                        continue
                    if (
                        f'"id":{foreign["id"]},' in text.replace(" ", "")
                        or foreign["number"] in text
                        or f'"unit_code":"CM{other}"' in text.replace(" ", "")
                        or f'"code":"CP{other}"' in text.replace(" ", "")
                    ):
                        foreign_rows += 1
    return {
        "operations_with_an_id": len(with_case),
        "listings": len(listings),
        "foreign_attempts": tried,
        "foreign_reached": reached,
        "existence_leaked": leaked,
        "list_calls": list_calls,
        "foreign_rows_in_lists": foreign_rows,
    }


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def forged_tokens(app: App) -> dict[str, str]:
    staff = app.database.city.staff["workerA"]
    now = int(time.time())
    valid = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(staff.id),
        "role": "community_worker",
        "unit": "CMA",
        "iat": now,
        "exp": now + 600,
    }
    key = _signing_key()
    real = create_token(subject=str(staff.id), role="community_worker", unit="CMA")
    head, _payload, sig = real.split(".")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the short-key warning: this token is a forgery
        hs512 = jwt.encode(valid, key, algorithm="HS512")
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({**valid, 'role': 'admin'})}.",
        "wrong key": jwt.encode(valid, b"not-the-key" * 4, algorithm="HS256"),
        "expired": jwt.encode({**valid, "exp": now - 3600}, key, algorithm="HS256"),
        "wrong audience": jwt.encode({**valid, "aud": "someone-else"}, key, algorithm="HS256"),
        "wrong issuer": jwt.encode({**valid, "iss": "evil"}, key, algorithm="HS256"),
        "missing role": jwt.encode(
            {k: v for k, v in valid.items() if k != "role"}, key, algorithm="HS256"
        ),
        "unknown role": jwt.encode({**valid, "role": "root"}, key, algorithm="HS256"),
        "role raised": jwt.encode({**valid, "role": "admin"}, key, algorithm="HS256"),
        "payload swapped": f"{head}.{_b64({**valid, 'role': 'admin'})}.{sig}",
        "HS512": hs512,
        "no such staff": jwt.encode({**valid, "sub": "99999"}, key, algorithm="HS256"),
        "no expiry": jwt.encode(
            {k: v for k, v in valid.items() if k != "exp"}, key, algorithm="HS256"
        ),
    }


def forged(app: App, case: dict[str, Any]) -> dict[str, int]:
    with_case, listings = operations(app)
    targets = [(m, t.replace("{case_ref}", str(case["id"]))) for m, t in with_case]
    targets += [("GET", p) for p in listings] + [("POST", "/api/v1/cases")]
    sent = refused = 0
    events = count(app, CaseEvent)
    for token in forged_tokens(app).values():
        headers = {"Authorization": f"Bearer {token}"}
        for method, path in targets:
            if path == "/api/v1/cases" and method == "POST":
                r = app.client.post(path, json={**CASE, "place_code": "BA1"}, headers=headers)
            else:
                r = call(app, method, path, headers, case["version"])
            sent += 1
            refused += r.status_code == 401
    return {
        "forged_kinds": len(forged_tokens(app)),
        "forged_requests": sent,
        "forged_refused_pct": round(100.0 * refused / sent, 2),
        "forged_changes": count(app, CaseEvent) - events,
    }


def privileged(app: App, own: dict[str, Any]) -> dict[str, int]:
    headers = app.auth("workerA")
    watched = (
        "status",
        "unit_id",
        "unit_path",
        "assignee_id",
        "version",
        "created_at",
        "escalation_level",
        "closed_at",
    )

    def snapshot() -> list[tuple[Any, ...]]:
        with Session(app.database.engine) as s:
            rows = s.exec(select(Case).order_by(Case.id)).all()  # type: ignore[arg-type]
            return [tuple(getattr(c, f) for f in watched) for c in rows]

    sent = changed = accepted_new = 0
    cases_before = count(app, Case)
    for field, value in PRIVILEGED.items():
        r = app.client.post(
            "/api/v1/cases", json={**CASE, "place_code": "BA1", field: value}, headers=headers
        )
        sent += 1
        if r.status_code < 300:
            case = r.json()["case"]
            bad = {
                "status": case["status"] != "submitted",
                "version": case["version"] != 1,
                "assignee_id": case["assignee_id"] is not None,
                "unit_code": case["unit_code"] is not None,
                "created_at": case["created_at"].startswith("2020"),
            }
            accepted_new += 1
            changed += any(bad.values())
    cases_after = count(app, Case)
    before = snapshot()
    for action, body in ACTION_BODIES.items():
        for field, value in PRIVILEGED.items():
            if field == "version":
                continue
            payload = {"version": own["version"], **body, field: value}
            app.client.post(f"/api/v1/cases/{own['id']}/{action}", json=payload, headers=headers)
            sent += 1
    after = snapshot()
    changed += sum(1 for b, a in zip(before, after, strict=True) if b != a)
    return {
        "privileged_requests": sent,
        "privileged_changed": changed,
        "create_with_privileged_accepted": accepted_new,
        "cases_created_by_them": cases_after - cases_before - accepted_new,
    }


def run(scale: Scale) -> PromiseResult:
    del scale  # the matrix is complete at both scales
    with sqlite_database() as database:
        with write_session(database.engine) as s:
            for tag in ("A", "B"):
                add_staff(s, database.city, f"volunteer{tag}", StaffRole.VOLUNTEER, f"CM{tag}")
                add_staff(s, database.city, f"instructor{tag}", StaffRole.INSTRUCTOR, f"CM{tag}")
        with http_app(database) as app:
            cases = {"A": open_case(app, "workerA", "BA1"), "B": open_case(app, "workerB", "BB2")}
            figures: dict[str, Any] = {}
            # Move past every deadline, so the overdue figures count both cases.
            previous = clock.get_clock()
            clock.set_clock(clock.VirtualClock(clock.now() + timedelta(days=60)))
            try:
                figures.update(object_level(app, cases))
            finally:
                clock.set_clock(previous)
            figures.update(forged(app, cases["A"]))
            own = app.client.post(
                "/api/v1/cases", json={**CASE, "place_code": "BA1"}, headers=app.auth("workerA")
            ).json()["case"]
            figures.update(privileged(app, own))
    passed = (
        figures["foreign_reached"] == 0
        and figures["existence_leaked"] == 0
        and figures["foreign_rows_in_lists"] == 0
        and figures["forged_refused_pct"] == 100.0
        and figures["forged_changes"] == 0
        and figures["privileged_changed"] == 0
        and figures["cases_created_by_them"] == 0
    )
    return PromiseResult(
        promise="8 Authorisation 权限",
        test="tests/reliability/p08_authz.py: operations read from /openapi.json; "
        "real JWTs and forged ones; the real app on SQLite",
        load=f"{len(COMMUNITY_ROLES)} community roles x 2 communities x every operation "
        "taking a case id (by id and by number) and every listing",
        faults="foreign ids, forged tokens (alg none, wrong key, expired, wrong audience/issuer,"
        " missing/unknown/raised role, swapped payload, HS512, unknown staff, no expiry), "
        "privileged fields in bodies",
        result=figures,
        passed=passed,
    )
