"""The security test's findings 2 to 4, replayed against the app: numbers recovered by
search, masking bypassed by separators, and what the public may see."""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from sqlmodel import Session, select

from api.security import create_open311_key
from models import pii
from models.case import Case
from models.party import Party
from tests.api.conftest import Api
from tests.factories import case_data

BASE = "/open311/v2"
PHONE = "13800138000"
PHONE_2 = "13900139000"
ID_NUMBER = "36990119850101002X"
# How finding 3 typed them: separators, spaces, full-width digits, Chinese digit words.
VARIANTS = [
    "138.0013.8000",
    "1 3 9 0 0 1 3 9 0 0 0",
    "3699 0119 8501 0100 2X",
    "１３８００１３８０００",
    "幺三九零零幺三九零零零",
    "+86 138-0013-8000",
]
CLEAR = [PHONE, PHONE_2, ID_NUMBER]


def digits_of(text: str) -> str:
    return re.sub(r"[^0-9X]", "", text)


def leaks(text: str) -> list[str]:
    """Which clear numbers a text gives away, in any of the ways they were typed."""
    squeezed = digits_of(text)
    found = [n for n in CLEAR if n in squeezed]
    found += [v for v in VARIANTS if v in text]
    return found


def db_dump(api: Api) -> str:
    path = str(api.engine.url.database)
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


@pytest.fixture
def key() -> str:
    return create_open311_key(client="security-test")


def open311_form(key: str, **extra: str) -> dict[str, str]:
    return {
        "api_key": key,
        "service_code": "environment",
        "lat": "30.123456",
        "long": "120.654321",
        "description": "夜间施工扰民。联系 " + "；".join(VARIANTS),
        **extra,
    }


def test_separator_variants_are_masked_in_json_xml_and_the_database(api: Api, key: str) -> None:
    filed = api.client.post(f"{BASE}/requests.json", data=open311_form(key))
    assert filed.status_code == 200, filed.text
    number = filed.json()[0]["service_request_id"]
    as_json = api.client.get(f"{BASE}/requests/{number}.json")
    as_xml = api.client.get(f"{BASE}/requests/{number}.xml")
    description = as_json.json()[0]["description"]
    assert leaks(description) == [] and leaks(as_xml.text) == []
    assert "138****8000" in description and "139****9000" in description
    assert "369901********002X" in (ET.fromstring(as_xml.content).findtext(".//description") or "")
    assert leaks(db_dump(api)) == []
    from models.text_numbers import CaseTextNumber

    with Session(api.engine) as session:
        kept = session.exec(select(CaseTextNumber)).all()
        assert sorted(pii.decrypt(row.value_enc or "") for row in kept) == sorted(
            [PHONE, PHONE_2, ID_NUMBER, PHONE, PHONE_2, PHONE]
        )


def test_digit_by_digit_search_recovers_nothing(api: Api) -> None:
    """Finding 2: grow a query one digit at a time while the search still finds the case."""
    body = case_data(
        description=f"邻居噪音纠纷，申请人电话 {PHONE}，身份证 {ID_NUMBER}。"
    ).model_dump(mode="json")
    created = api.as_("workerA").post("/api/v1/cases", json=body)
    assert created.status_code == 201, created.text
    attacker = api.as_("supervisor")  # reaches the case, may not see personal data
    queries = 0

    def hits(q: str) -> bool:
        nonlocal queries
        queries += 1
        answer = attacker.get("/api/v1/cases", params={"q": q})
        assert answer.status_code == 200
        return int(answer.json()["total"]) > 0

    def grow(prefix: str, length: int, alphabet: str) -> str:
        while len(prefix) < length:
            for ch in alphabet:
                if hits(prefix + ch):
                    prefix += ch
                    break
            else:
                return prefix
        return prefix

    phone = grow("138", 11, "0123456789")
    id_number = grow("369901", 18, "0123456789X")
    # Nothing beyond what the mask itself shows (138****8000, 369901********002X).
    assert phone == "138" and id_number == "369901"
    assert queries <= 2 * 11
    assert leaks(str(attacker.get("/api/v1/cases", params={"q": "138"}).json())) == []
    # The numbers are kept (encrypted) for those who may see them.
    case_id = created.json()["case"]["id"]
    masked = attacker.get(f"/api/v1/cases/{case_id}").json()["text_numbers"]
    assert [n["value"] for n in masked] == ["138****8000", "369901********002X"]


def test_staff_cannot_choose_the_public_channel(api: Api) -> None:
    body = case_data().model_dump(mode="json") | {"channel": "open311"}
    answer = api.as_("workerA").post("/api/v1/cases", json=body)
    assert answer.status_code in (400, 422), answer.text
    assert "open311" in answer.text
    with Session(api.engine) as session:
        assert session.exec(select(Case)).first() is None


def test_a_person_named_as_respondent_is_personal_data(api: Api, key: str) -> None:
    filed = api.client.post(
        f"{BASE}/requests.json",
        data=open311_form(
            key,
            description="丈夫张伟经常打人，张伟不让我出门",
            **{"attribute[respondent]": "张伟"},
        ),
    )
    assert filed.status_code == 200, filed.text
    shown = api.client.get(f"{BASE}/requests.json").json()[0]["description"]
    assert "张伟" not in shown and "张*" in shown
    with Session(api.engine) as session:
        party = session.exec(select(Party)).one()
        assert party.org_name is None and party.name_masked == "张*"
    admin = api.as_("admin")  # reaches every case, may not see personal data
    listed: Any = admin.get("/api/v1/cases").json()["items"]
    detail = admin.get(f"/api/v1/cases/{listed[0]['id']}").json()
    assert "张伟" not in str(listed) + str(detail) and "张*" in str(detail)
    firm = api.client.post(
        f"{BASE}/requests.json",
        data=open311_form(
            key,
            **{"attribute[respondent]": "某建筑公司", "attribute[respondent_type]": "firm"},
        ),
    )
    assert firm.status_code == 200, firm.text


def test_public_coordinates_are_rounded_to_the_compound(api: Api, key: str) -> None:
    filed = api.client.post(f"{BASE}/requests.json", data=open311_form(key))
    number = filed.json()[0]["service_request_id"]
    row = api.client.get(f"{BASE}/requests/{number}.json").json()[0]
    assert (row["lat"], row["long"]) == (30.123, 120.654)


@pytest.mark.parametrize(
    ("path", "csp_has"),
    [
        ("/healthz", "default-src 'none'"),
        ("/api/v1/cases", "default-src 'none'"),
        ("/open311/v2/services.xml", "default-src 'none'"),
        ("/web/login", "script-src 'self';"),
        ("/docs", "script-src 'self' 'unsafe-inline'"),
        ("/no-such-page", "default-src 'none'"),
    ],
)
def test_security_headers_on_every_answer(api: Api, path: str, csp_has: str) -> None:
    answer = api.client.get(path)
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert csp_has in answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    if path.startswith(("/api/", "/web")):
        assert answer.headers["cache-control"] == "no-store"


def test_api_docs_are_served_from_the_package_not_a_cdn(api: Api) -> None:
    for page in ("/docs", "/redoc"):
        html = api.client.get(page)
        assert html.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert sources and all(s.startswith("/") for s in sources), sources
        for source in sources:
            if source.startswith("/docs-assets/"):
                assert api.client.get(source).status_code == 200, source
    assert "cdn" not in api.client.get("/docs").text.lower()


def test_the_servers_report_of_an_error_carries_no_input(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Finding 7: uvicorn logs what Starlette re-raises; the message (which may hold
    what was typed) stays out, the frames stay in."""
    import logging

    try:
        int("13800138000-abc")
    except ValueError as exc:
        logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=exc)
    assert "ValueError at" in caplog.text and "test_security_api.py" in caplog.text
    assert "13800138000" not in caplog.text


# Dates at the ends of the calendar: year 1 ahead of UTC, year 9999 behind it, and days
# whose neighbour (the day after, the month after) is outside the calendar.
EDGE_MOMENTS = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00")


def test_dates_at_the_ends_of_the_calendar_are_refused_not_a_500(api: Api, key: str) -> None:
    """Typed by anyone (the public included), such a date answered 500 (an overflow when
    turned to UTC or moved a day on) on every front end; now it is refused as input."""
    from tests.api.conftest import web_cookie
    from tests.api.test_authz_matrix_api import open_case

    for moment in EDGE_MOMENTS:
        for name in ("start_date", "end_date"):
            for path in ("requests.json", "servicerequestupdates.xml"):
                answer = api.client.get(f"{BASE}/{path}", params={name: moment})
                assert answer.status_code == 400, (path, name, moment, answer.text)
    worker = api.as_("workerA")
    case = open_case(api, "workerA", "BA1")
    before = api.count(Case)
    for moment in EDGE_MOMENTS:
        body = case_data().model_dump(mode="json") | {"received_at": moment}
        answer = worker.post("/api/v1/cases", json=body)
        assert answer.status_code == 422 and "received_at" in answer.text, answer.text
        contact = {"version": case["version"], "method": "phone", "at": moment}
        answer = worker.post(f"/api/v1/cases/{case['id']}/contact", json=contact)
        assert answer.status_code == 422 and "at" in answer.text, answer.text
    assert api.count(Case) == before
    supervisor = api.as_("supervisor")
    for params in ({"month": "9999-12"}, {"since": "0001-01-01"}, {"until": "9999-12-31"}):
        assert supervisor.get("/api/v1/metrics/rates", params=params).status_code == 422, params
    for path in ("ranking", "problem-of-the-month"):
        answer = supervisor.get(f"/api/v1/metrics/{path}", params={"month": "9999-12"})
        assert answer.status_code == 422, path
    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["supervisor"].id))
    for page in (
        "/web/cases?from=0001-01-01",
        "/web/cases?to=9999-12-31",
        "/web/export/cases.csv?to=9999-12-31",
    ):
        assert api.client.get(page).status_code == 400, page
    # The report page reads its month as the REST metrics do (models.monthly_report.month_of).
    assert api.client.get("/web/reports/monthly/9999-12.xlsx").status_code == 422
    for month in ("9999-12", "0001-01"):  # an unreadable month shows the current one
        assert api.client.get("/web/dashboard", params={"month": month}).status_code == 200
    far = base64.urlsafe_b64encode(json.dumps([EDGE_MOMENTS[0], 2**70]).encode()).decode()
    assert worker.get("/api/v1/cases", params={"after": far}).status_code == 200


def test_an_id_too_large_for_the_database_is_a_4xx_on_the_pages(api: Api) -> None:
    """A row id in a page's path (a photo, an attachment, a simulation) beyond what the
    database holds answered 500; now it is refused like any id out of range."""
    from tests.api.conftest import web_cookie
    from tests.api.test_authz_matrix_api import open_case

    number = open_case(api, "workerA", "BA1")["number"]
    huge = str(2**70)
    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["workerA"].id))
    for page in (f"/web/cases/{number}/photos/{huge}", f"/web/cases/{number}/attachments/{huge}"):
        assert api.client.get(page).status_code in (404, 422), page
    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["supervisor"].id))
    for page in (f"/web/simulations/{huge}/report.html", f"/web/simulations/{huge}/summary.json"):
        assert api.client.get(page).status_code in (404, 422), page


def test_the_export_log_keeps_no_search_text(api: Api) -> None:
    """The administration log is kept for good (hash-chained): what a worker typed into
    the search (a resident's phone, a name) stayed in it in clear, and a long query
    overflowed its 200-character target."""
    from models.admin_log import AdminEvent
    from tests.api.conftest import web_cookie

    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["workerA"].id))
    typed = f"张伟 {PHONE} " + "吵" * 90
    params = {"q": typed, "category": "labour", "handler": "w" * 100, "sort": "number"}
    assert api.client.get("/web/export/cases.csv", params=params).status_code == 200
    with Session(api.engine) as session:
        (entry,) = session.exec(select(AdminEvent)).all()
    assert PHONE not in entry.target and "张伟" not in entry.target
    assert "category=labour" in entry.target and len(entry.target) <= 200


def test_open311_keys_issued_before_a_cut_off_are_refused() -> None:
    """An Open311 api_key lives a year and could not be taken back: a leaked one filed
    reports until it expired (rotating the token key would also have signed every
    member of staff out and broken every public request token). Now the installation
    names a moment (TIAOJIE_OPEN311_KEYS_SINCE) before which keys are refused."""
    import time
    from datetime import UTC, datetime

    import jwt

    from api.security import AUDIENCE, ISSUER, _signing_key
    from tests.api.conftest import make_api

    now = int(time.time())
    leaked = jwt.encode(
        {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "street-a",
            "role": "open311",
            "iat": now - 3600,
            "exp": now + 86400,
            "unit": None,
        },
        _signing_key(),
        algorithm="HS256",
    )
    since = datetime.fromtimestamp(now - 60, UTC)
    for api in make_api(open311_keys_since=since):
        refused = api.client.post(f"{BASE}/requests.json", data=open311_form(leaked))
        assert refused.status_code == 403, refused.text
        assert api.count(Case) == 0
        fresh = api.client.post(f"{BASE}/requests.json", data=open311_form(create_open311_key()))
        assert fresh.status_code == 200, fresh.text


def test_public_updates_carry_no_internal_ids(api: Api, key: str) -> None:
    """update_id was the event's row id: counting from one update to the next told the
    public how much happened in between on every case, the staff's own included."""
    from models import routing, triage
    from models.db import write_session
    from models.lifecycle import Actor

    filed = api.client.post(f"{BASE}/requests.json", data=open311_form(key))
    number = filed.json()[0]["service_request_id"]
    with Session(api.engine) as session:
        case_id = session.exec(select(Case.id).where(Case.number == number)).one()
    with write_session(api.engine) as session:
        triage.triage_case(session, case_id=case_id, actor=Actor.system())
        routing.assign_case(session, case_id=case_id, actor=Actor.system())
    updates = api.client.get(f"{BASE}/servicerequestupdates.json").json()
    assert updates
    for update in updates:
        assert update["update_id"].startswith(number + "-"), update
        assert update["update_id"].removeprefix(number + "-").isdigit()


def test_a_link_cannot_put_its_own_words_on_a_page() -> None:
    """The case page showed whatever an upload_error parameter said, and the dashboard a
    problem_error, under the app's own address: a link sent to a worker could tell them,
    in the app's red error box, to call a number or type their password somewhere. Now
    the page shows only a message it signed for that session when it sent them there."""
    from tests.api.conftest import make_api, web_cookie
    from tests.api.test_authz_matrix_api import open_case

    for api in make_api():
        number = open_case(api, "workerA", "BA1")["number"]
        bait = "账号异常，请致电 400-000-0000 核实"
        api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["workerA"].id))
        for sig in ("", "签名", "0" * 32):
            params = {"upload_error": bait, "upload_error_sig": sig}
            page = api.client.get(f"/web/cases/{number}", params=params)
            assert page.status_code == 200 and "账号异常" not in page.text
        # The page's own refusal still shows.
        form = api.client.get(f"/web/cases/{number}").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf
        refused = api.client.post(
            f"/web/cases/{number}/attachments",
            data={"csrf_token": csrf.group(1), "kind": "scan"},
            files={"file": ("a.exe", b"MZ not a scan", "application/octet-stream")},
            follow_redirects=True,
        )
        assert refused.status_code == 200 and "上传失败" in refused.text, refused.text[-500:]
        api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["supervisor"].id))
        page = api.client.get("/web/dashboard", params={"problem_error": bait})
        assert page.status_code == 200 and "账号异常" not in page.text


def test_a_request_token_in_other_digits_is_not_found_not_a_500(api: Api) -> None:
    """\\d also matches Arabic-Indic and full-width digits: a token such as t١-… passed
    the shape check and its comparison with the real one raised (a public 500)."""
    for token in ("t\u0661-0123456789abcdef0123", "t\uff11-0123456789abcdef0123"):
        answer = api.client.get(f"{BASE}/tokens/{token}.json")
        assert answer.status_code == 404, answer.text


def test_the_access_log_keeps_no_link_keys_and_no_query(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn's access log (on unless --no-access-log, as in the deployment's own
    command) wrote every path and query: the keys of residents' SMS links and of staff
    sign-in links (each opens a form with no other check), tracking codes, and what was
    searched for (phones, names). Now it keeps the route's shape without them."""
    import logging

    secrets_ = {
        "/r/link/Zx9kLinkKey123": "Zx9kLinkKey123",
        "/web/welcome/WelcomeKey456": "WelcomeKey456",
        "/r/TRACK789/info": "TRACK789",
        f"/web/cases?q={PHONE}": PHONE,
        f"{BASE}/tokens/t12-0123456789abcdef0123.json": "0123456789abcdef0123",
    }
    access = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        for path in secrets_:
            access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", path, "1.1", 200)
    for path, secret in secrets_.items():
        assert secret not in caplog.text, path
    assert '"GET /r/link/… HTTP/1.1" 200' in caplog.text and "/web/cases?…" in caplog.text
