"""One overdue rule on every screen: the dashboard's list of overdue cases and its counts
per level agree, and so does ``GET /api/v1/cases?overdue=true``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import Session

from api.app import create_app
from api.security import create_token
from models import clock
from models.db import build_engine
from models.mediating import resolve_directly
from models.passwords import hash_password
from models.settings import Settings
from tests.api.conftest import SyncASGITransport
from tests.factories import advance_to_assigned, build_city, make_case, staff_actor
from tests.migrated import migrated_sqlite


def _csrf(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


@pytest.fixture
def site(
    tmp_path: Path, vclock: clock.VirtualClock
) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """Three cases past their resolution limit: one still being handled (overdue), one in
    follow-up whose return visit is past due (overdue), one in follow-up whose visit is
    tomorrow (on time: its resolution limit no longer counts)."""
    url = migrated_sqlite(tmp_path / "web.db")
    engine = build_engine(url)
    numbers: dict[str, str] = {}
    with Session(engine, expire_on_commit=False) as session:
        city = build_city(session)
        city.staff["admin"].password_hash = hash_password("pw-admin")
        session.add(city.staff["admin"])
        worker = staff_actor(city, "mediatorA")
        cases = {k: make_case(session) for k in ("handling", "visit_late", "visit_tomorrow")}
        for row in cases.values():
            advance_to_assigned(session, row, city)
        vclock.advance(timedelta(days=20))  # past every resolution limit
        for key in ("visit_late", "visit_tomorrow"):
            if key == "visit_tomorrow":
                vclock.advance(timedelta(days=7))  # the other visit is now past due
            row = cases[key]
            assert row.id is not None
            resolve_directly(
                session,
                case_id=row.id,
                resolution="已当场解答",
                actor=worker,
                expected_version=None,
            )
        numbers = {k: c.number for k, c in cases.items()}
        session.commit()
        admin_token = create_token(subject=str(city.staff["admin"].id), role="admin", unit="C")
    app: FastAPI = create_app(Settings(database_url=url))
    app.state.engine = engine
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        httpx.Client(
            transport=SyncASGITransport(app, portal), base_url="https://testserver", timeout=30
        ) as client,
    ):
        page = client.get("/web/login")
        signed = client.post(
            "/web/login",
            data={"username": "admin", "password": "pw-admin", "csrf_token": _csrf(page.text)},
            follow_redirects=False,
        )
        assert signed.status_code == 303
        numbers["token"] = admin_token
        yield client, numbers
    engine.dispose()


def _section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    return html[start : html.index("</section>", start)]


def test_dashboard_list_and_count_agree(site: tuple[httpx.Client, dict[str, str]]) -> None:
    client, numbers = site
    html = client.get("/web/dashboard").text
    listed = set(re.findall(r'href="/web/cases/([^"]+)"', _section(html, "overdue-list")))
    counted = sum(
        int(n)
        for n in re.findall(
            r'class="num overdue-count[^"]*">(\d+)<', _section(html, "overdue-levels")
        )
    )
    assert listed == {numbers["handling"], numbers["visit_late"]}
    assert counted == len(listed)

    answer = client.get(
        "/api/v1/cases",
        params={"overdue": "true"},
        headers={"Authorization": f"Bearer {numbers['token']}"},
    )
    assert answer.status_code == 200
    assert {c["number"] for c in answer.json()["items"]} == listed


def test_the_dashboard_asks_at_the_moment_it_is_read(
    site: tuple[httpx.Client, dict[str, str]], vclock: clock.VirtualClock
) -> None:
    """The dashboard's statements are built once and kept, the moment given to each
    reading: two days on, the visit that was due tomorrow is late in the list, in the
    counts by level and in the backlog."""
    client, numbers = site

    def read() -> tuple[set[str], int, str]:
        html = client.get("/web/dashboard").text
        listed = set(re.findall(r'href="/web/cases/([^"]+)"', _section(html, "overdue-list")))
        counts = re.findall(
            r'class="num overdue-count[^"]*">(\d+)<', _section(html, "overdue-levels")
        )
        late = re.findall(r'class="num late">(\d+)<', _section(html, "backlog"))
        return listed, sum(int(n) for n in counts), "+".join(late)

    assert read() == ({numbers["handling"], numbers["visit_late"]}, 2, "2")
    vclock.advance(timedelta(days=2))
    assert read() == (set(numbers[k] for k in ("handling", "visit_late", "visit_tomorrow")), 3, "3")
