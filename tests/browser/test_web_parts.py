"""The parts of the web pages that need no browser: the SVG chart, the session cookie,
CSRF and sign-in redirects, the intake form's field-level messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import anyio
import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from api.web import auth, mount
from api.web.charts import RateRow, rates_chart
from api.web.routes import _safe_next
from models.case import Case
from models.db import build_engine
from models.migrate import upgrade
from models.passwords import hash_password
from tests.api.conftest import SyncASGITransport
from tests.factories import build_city

SVG = "{http://www.w3.org/2000/svg}"


def test_chart_draws_three_bars_per_unit_with_escaped_chinese_labels() -> None:
    rows = [
        RateRow("桂花社区", 0.9, 0.5, None, cases=10),
        RateRow("<script>竹园社区</script>", 1.0, 0.0, 0.75, cases=4),
    ]
    svg = rates_chart(rows, lang="zh", title="各社区三率")
    root = ET.fromstring(svg)  # well-formed: the label was escaped, not injected
    assert "<script>" not in svg
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 5  # satisfaction of the first unit has nothing rated: no bar
    texts = [
        (t.find(f"{SVG}title").tail if t.find(f"{SVG}title") is not None else t.text) or ""  # type: ignore[union-attr]
        for t in root.iter(f"{SVG}text")
    ]
    assert "桂花社区" in texts and "90%" in texts and "75%" in texts
    assert {"响应率", "解决率", "满意率"} <= set(texts)
    widths = {r.find(f"{SVG}title").text: float(r.get("width", 0)) for r in bars}  # type: ignore[union-attr]
    assert widths["桂花社区 响应率 90%"] == pytest.approx(
        0.9 * widths["<script>竹园社区</script> 响应率 100%"], abs=0.2
    )
    english = rates_chart(rows, lang="en", width=360)
    assert "Response" in english and "chart-narrow" in english


def test_session_cookie_is_signed_and_expires(session: Session) -> None:
    staff_id = build_city(session).staff["workerA"].id
    assert staff_id is not None
    token, csrf = auth.issue_session(session, staff_id)
    claims = auth.read_session(token)
    assert claims is not None and claims["sub"] == str(staff_id) and claims["csrf"] == csrf
    header, body, signature = token.split(".")
    assert auth.read_session(f"{header}.{body}.{signature[::-1]}") is None
    forged = jwt.encode(
        {"sub": "1", "aud": auth.AUDIENCE, "exp": 2**31, "csrf": "x"},
        "a-guessed-key-that-is-long-enough-for-hs256",
    )
    assert auth.read_session(forged) is None
    unsigned = jwt.encode(
        {"sub": "1", "aud": auth.AUDIENCE, "exp": 2**31, "csrf": "x"}, None, algorithm="none"
    )
    assert auth.read_session(unsigned) is None
    expired = jwt.encode(
        {"sub": str(staff_id), "aud": auth.AUDIENCE, "exp": 1, "csrf": "x", "sid": claims["sid"]},
        auth._key(),
        algorithm="HS256",
    )
    assert auth.read_session(expired) is None
    assert auth.csrf_ok(csrf, csrf) and not auth.csrf_ok(csrf, csrf[:-1] + "x")
    assert not auth.csrf_ok(csrf, "") and not auth.csrf_ok(None, csrf)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/web/cases/JX-2026-000001", "/web/cases/JX-2026-000001"),
        ("https://evil.example/web/", "/web/inbox"),
        ("//evil.example/web/", "/web/inbox"),
        ("/api/v1/cases", "/web/inbox"),
        (None, "/web/inbox"),
    ],
)
def test_sign_in_only_returns_to_own_pages(target: str | None, expected: str) -> None:
    assert _safe_next(target) == expected


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[httpx.Client, Engine]]:
    engine = build_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade(engine)
    with Session(engine) as session:
        city = build_city(session)
        city.staff["workerA"].password_hash = hash_password("pw-workerA")
        session.add(city.staff["workerA"])
        session.commit()
    app = FastAPI()
    app.state.engine = engine
    mount(app)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        httpx.Client(
            transport=SyncASGITransport(app, portal), base_url="https://testserver", timeout=30
        ) as client,
    ):
        yield client, engine
    engine.dispose()


def _csrf(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def _sign_in(client: httpx.Client) -> Any:
    page = client.get("/web/login")
    return client.post(
        "/web/login",
        data={
            "username": "workerA",
            "password": "pw-workerA",
            "csrf_token": _csrf(page.text),
            "next": "/web/cases/new",
        },
        follow_redirects=False,
    )


def test_sign_in_sets_a_secure_httponly_cookie_and_forms_need_the_token(
    web: tuple[httpx.Client, Engine],
) -> None:
    client, engine = web
    assert (
        client.get("/web/inbox", follow_redirects=False)
        .headers["location"]
        .startswith("/web/login?next=")
    )
    # The sign-in form itself is CSRF-protected (double submit).
    refused = client.post(
        "/web/login", data={"username": "workerA", "password": "pw-workerA", "csrf_token": "x"}
    )
    assert refused.status_code == 403 and "tj_session" not in client.cookies
    answer = _sign_in(client)
    assert answer.status_code == 303 and answer.headers["location"] == "/web/cases/new"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    assert "Max-Age=" in cookie

    form = client.get("/web/cases/new")
    assert form.status_code == 200 and "Server-Timing" in form.headers
    fields = {
        "category": "labour",
        "place_code": "BA1",
        "description": "电子厂拖欠工资，工人代表电话13912345678",
        "complainant_name": "王小明",
        "complainant_phone": "１３８００１３８０００",  # full-width digits: refused
        "respondent_name": "江心市恒达电子厂",
    }
    with Session(engine) as session:
        before = session.exec(select(func.count()).select_from(Case)).one()
    forged = client.post("/web/cases/new", data={**fields, "csrf_token": "forged"})
    assert forged.status_code == 403
    bad = client.post("/web/cases/new", data={**fields, "csrf_token": _csrf(form.text)})
    assert bad.status_code == 422
    assert "请使用半角数字" in bad.text and 'id="complainant_phone-error"' in bad.text
    outside = client.post(
        "/web/cases/new",
        data={
            **fields,
            "complainant_phone": "13800138000",
            "place_code": "BB1",
            "csrf_token": _csrf(form.text),
        },
    )
    assert outside.status_code == 422 and "不在您负责的范围内" in outside.text
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Case)).one() == before
    good = client.post(
        "/web/cases/new",
        data={**fields, "complainant_phone": "13800138000", "csrf_token": _csrf(form.text)},
        follow_redirects=False,
    )
    assert good.status_code == 303 and "/web/cases/JX-" in good.headers["location"]
    page = client.get(good.headers["location"])
    # A community worker sees the phone typed into the description masked, like parties'.
    # The worker who recorded the complaint is the one who calls the complainant back, so
    # the contact they typed, and the number typed into the description, are shown to them
    # in clear (models/access.py); the stored description holds only the mask.
    assert "13912345678" in page.text and "13800138000" in page.text
