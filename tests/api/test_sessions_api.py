"""Finding 6: sessions end for real (logout, deactivation, a new password), and a
made-up X-Forwarded-For does not change who the app thinks is calling."""

from __future__ import annotations

import re

import pytest

from api.client import client_address
from models.db import write_session
from models.passwords import hash_password
from models.settings import reset_settings
from models.staff import Staff
from models.web_sessions import revoke_sessions
from tests.api.conftest import Api
from tests.factories import case_data

PASSWORD = "correct horse battery staple"


def sign_in(api: Api, username: str) -> dict[str, str]:
    """Sign in through the form; answers the session cookie as a header."""
    with write_session(api.engine) as session:
        staff = session.get(Staff, api.city.staff[username].id)
        assert staff is not None
        staff.password_hash = hash_password(PASSWORD)
    api.client.cookies.clear()
    form = api.client.get("/web/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf, form.text
    answer = api.client.post(
        "/web/login",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf.group(1)},
    )
    assert answer.status_code == 303, answer.text
    cookie = {"Cookie": f"tj_session={api.client.cookies['tj_session']}"}
    api.client.cookies.clear()
    return cookie


def opens_inbox(api: Api, cookie: dict[str, str]) -> bool:
    api.client.cookies.clear()
    answer = api.client.get("/web/inbox", headers=cookie)
    api.client.cookies.clear()
    return answer.status_code == 200


def test_logout_ends_the_session_even_for_a_copied_cookie(api: Api) -> None:
    cookies = sign_in(api, "workerA")
    copied = dict(cookies)
    assert opens_inbox(api, cookies)
    page = api.client.get("/web/inbox", headers=cookies).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    out = api.client.post("/web/logout", data={"csrf_token": csrf.group(1)}, headers=cookies)
    assert out.status_code == 303
    assert not opens_inbox(api, copied)


def test_signing_in_again_in_a_browser_ends_the_session_it_had(api: Api) -> None:
    """A shared workstation: the next person signs in over the last one's session. That
    session stayed alive (a copy of its cookie kept working until it expired); now the
    sign-in ends it, as signing out would have."""
    before = sign_in(api, "workerB")
    with write_session(api.engine) as session:
        staff = session.get(Staff, api.city.staff["workerA"].id)
        assert staff is not None
        staff.password_hash = hash_password(PASSWORD)
    form = api.client.get("/web/login", headers=before)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf, form.text
    answer = api.client.post(
        "/web/login",
        data={"username": "workerA", "password": PASSWORD, "csrf_token": csrf.group(1)},
        headers={"Cookie": f"{before['Cookie']}; tj_csrf={api.client.cookies['tj_csrf']}"},
    )
    assert answer.status_code == 303, answer.text
    after = {"Cookie": f"tj_session={answer.cookies['tj_session']}"}
    assert opens_inbox(api, after) and not opens_inbox(api, before)


def test_deactivation_and_a_new_password_end_every_session(api: Api) -> None:
    first, second = sign_in(api, "workerA"), sign_in(api, "workerA")
    assert opens_inbox(api, first) and opens_inbox(api, second)
    with write_session(api.engine) as session:
        assert revoke_sessions(session, api.city.staff["workerA"].id or 0, why="deactivated") == 2
    assert not opens_inbox(api, first) and not opens_inbox(api, second)

    from models.sign_in import issue_link, redeem

    third = sign_in(api, "workerA")
    with write_session(api.engine) as session:
        staff = session.get(Staff, api.city.staff["workerA"].id)
        assert staff is not None
        link = issue_link(session, staff.id or 0)
        redeem(session, link, password="another long password", repeat="another long password")
    assert not opens_inbox(api, third)


def test_a_tampered_or_expired_cookie_is_sent_to_sign_in(api: Api) -> None:
    import jwt

    from api.web import auth

    cookie = sign_in(api, "workerA")
    token = cookie["Cookie"].removeprefix("tj_session=")
    claims = auth.read_session(token)
    assert claims is not None
    page = api.client.get("/web/inbox", headers=cookie)
    assert page.status_code == 200
    # The page's forms carry the CSRF token of the cookie the request came with.
    assert f'name="csrf_token" value="{claims["csrf"]}"' in page.text
    header, body, signature = token.split(".")
    expired = jwt.encode({**claims, "exp": 1}, auth._key(), algorithm="HS256")
    for bad in (f"{header}.{body}.{signature[::-1]}", expired):
        answer = api.client.get("/web/inbox", headers={"Cookie": f"tj_session={bad}"})
        assert answer.status_code == 303 and "/web/login" in answer.headers["location"]
    api.client.cookies.clear()


def test_forwarded_for_is_believed_only_from_named_proxies() -> None:
    from starlette.requests import Request

    def request(peer: str, forwarded: str | None) -> Request:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return Request({"type": "http", "client": (peer, 5000), "headers": headers})

    import os

    reset_settings()
    assert client_address(request("127.0.0.1", "203.0.113.9")) == "127.0.0.1"
    os.environ["TIAOJIE_TRUSTED_PROXIES"] = "10.0.0.2"
    try:
        reset_settings()
        assert client_address(request("127.0.0.1", "203.0.113.9")) == "127.0.0.1"
        assert client_address(request("10.0.0.2", "198.51.100.1, 203.0.113.9")) == "203.0.113.9"
        assert client_address(request("10.0.0.2", "203.0.113.9, 10.0.0.2")) == "203.0.113.9"
    finally:
        del os.environ["TIAOJIE_TRUSTED_PROXIES"]
        reset_settings()


def test_a_made_up_forwarded_for_does_not_reset_the_open311_limit(api: Api) -> None:
    limiter = api.app.state.open311_ip_limiter
    limiter.per_minute = 5
    codes = [
        api.client.get(
            "/open311/v2/services.json", headers={"X-Forwarded-For": f"198.51.100.{i}"}
        ).status_code
        for i in range(8)
    ]
    assert codes[:5] == [200] * 5 and set(codes[5:]) == {429}


@pytest.mark.parametrize(("field", "value"), [("version", "abc"), ("version", "²")])
def test_page_action_numbers_are_parsed_never_a_500(
    api: Api, field: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    created = api.as_("workerA").post("/api/v1/cases", json=case_data().model_dump(mode="json"))
    number = created.json()["case"]["number"]
    cookie = sign_in(api, "workerA")
    page = api.client.get(f"/web/cases/{number}", headers=cookie).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    form = {"csrf_token": csrf.group(1), "version": "1", "reason": "申请人撤回", field: value}
    answer = api.client.post(f"/web/cases/{number}/actions/withdrawn", data=form, headers=cookie)
    assert answer.status_code == 422, answer.status_code
    assert "Traceback" not in caplog.text and value not in caplog.text


def test_the_web_form_refuses_the_public_channel(api: Api) -> None:
    cookie = sign_in(api, "workerA")
    page = api.client.get("/web/cases/new", headers=cookie).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    form = {
        "csrf_token": csrf.group(1),
        "category": "neighbour",
        "priority": "normal",
        "channel": "open311",
        "description": "楼上漏水，多次协商未果。",
        "place_code": "BA1",
        "complainant_name": "王小明",
        "people_affected": "1",
    }
    answer = api.client.post("/web/cases/new", data=form, headers=cookie)
    assert answer.status_code == 422
    listed = api.as_("admin").get("/api/v1/cases").json()
    assert listed["total"] == 0


def test_the_case_page_shows_numbers_from_the_text_to_entitled_readers_only(api: Api) -> None:
    from sqlalchemy import update

    from models.case import Case

    body = case_data(description="申请人电话 138 0013 8000，请回电。").model_dump(mode="json")
    # Recorded by workerA (who sees it); gridA reaches it but is not entitled until assigned.
    created = api.as_("workerA").post("/api/v1/cases", json=body).json()["case"]
    cookie = sign_in(api, "gridA")
    page = api.client.get(f"/web/cases/{created['number']}", headers=cookie).text
    assert "138****8000" in page and "13800138000" not in page
    with write_session(api.engine) as session:
        session.connection().execute(
            update(Case)
            .where(Case.id == created["id"])  # type: ignore[arg-type]
            .values(assignee_id=api.city.staff["gridA"].id)
        )
    page = api.client.get(f"/web/cases/{created['number']}", headers=cookie).text
    assert "13800138000" in page  # the assignee may see it


def test_a_new_or_reset_password_ends_the_bearer_tokens_issued_before(api: Api) -> None:
    """REST tokens follow the web sessions: a password set through a sign-in link or
    reset by an administrator refuses every token issued before (they no longer live on
    until they expire), and a token asked for afterwards works."""
    from api.cache import TTLCache
    from models.admin import reset_password
    from models.sign_in import issue_link, redeem

    api.app.state.principal_cache = TTLCache(0)  # no grace: each request asks the database

    def token() -> dict[str, str]:
        answer = api.client.post(
            "/api/v1/auth/token", json={"username": "workerA", "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def works(headers: dict[str, str]) -> bool:
        return api.client.get("/api/v1/cases", headers=headers).status_code == 200

    sign_in(api, "workerA")  # sets PASSWORD
    before_reset = token()
    assert works(before_reset)
    with write_session(api.engine) as session:
        reset_password(session, api.city.staff["workerA"].username, actor="admin")
    refused = api.client.get("/api/v1/cases", headers=before_reset)
    assert refused.status_code == 401
    assert "sign in again" in refused.text and "请重新登录" in refused.text

    sign_in(api, "workerA")
    before_new_password = token()
    with write_session(api.engine) as session:
        link = issue_link(session, api.city.staff["workerA"].id or 0)
        redeem(session, link, password=PASSWORD, repeat=PASSWORD)
    assert not works(before_new_password)
    assert works(token())
