"""N+1 guard: the SQL statements a page sends do not grow with the rows it shows.

Each page is read with a few cases (or a short timeline) and again with many; the
statements are counted on the app's engine (SQLAlchemy ``before_cursor_execute``). A
page that loads something per row shown sends more statements the second time."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import select

from models import clock, lifecycle
from models.case import Case
from models.db import write_session
from models.lifecycle import Actor
from tests.api.conftest import Api, web_cookie
from tests.factories import advance_to_assigned, make_case


@contextmanager
def counted(api: Api) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(api.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(api.engine, "before_cursor_execute", record)


def _sign_in(api: Api, username: str) -> None:
    staff_id = api.city.staff[username].id
    assert staff_id is not None
    api.client.cookies.set("tj_session", web_cookie(api, staff_id))


def _add_cases(api: Api, count: int) -> Case:
    """``count`` cases in workerA's reach, assigned to mediatorA and overdue (they show
    in the inbox, the case list and the dashboard's lists); returns the last."""
    long_ago = clock.now() - timedelta(days=40)
    with write_session(api.engine) as session:
        for i in range(count):
            case = make_case(session, place_code="BA1" if i % 2 else "BA2", at=long_ago)
            case = advance_to_assigned(session, case, api.city)
        return case


def _add_events(api: Api, number: str, count: int) -> None:
    """``count`` more events on the case's timeline (reminders)."""
    with write_session(api.engine) as session:
        case = session.exec(select(Case).where(Case.number == number)).one()
        for _ in range(count):
            lifecycle.apply(
                session, case=case, verb="reminded", actor=Actor.system(), data={"level": 1}
            )


def _statements(api: Api, url: str) -> tuple[int, int]:
    """The statements the page sent, and how many case numbers it shows."""
    with counted(api) as statements:
        page = api.client.get(url)
    assert page.status_code == 200, page.text[:300]
    assert statements, "the listener saw no statement: not the app's engine"
    return len(statements), len(set(re.findall(r"JX-\d{4}-\d{6}", page.text)))


PAGES: dict[str, tuple[str, Callable[[str], str]]] = {
    "inbox": ("mediatorA", lambda _: "/web/inbox"),
    "case list": ("workerA", lambda _: "/web/cases"),
    "case list filtered": ("workerA", lambda _: "/web/cases?status=assigned&place=BA1"),
    "dashboard": ("supervisor", lambda _: "/web/dashboard"),
    "dashboard by street": ("supervisor", lambda _: "/web/dashboard?level=street"),
    # Whether each row's personal data may be shown is decided for a batch at once.
    "export": ("supervisor", lambda _: "/web/export/cases.csv"),
    "export by a mediator": ("mediatorA", lambda _: "/web/export/cases.csv"),
}


@pytest.mark.parametrize("page", list(PAGES))
def test_a_page_sends_as_many_statements_for_many_rows_as_for_few(api: Api, page: str) -> None:
    username, url = PAGES[page]
    last = _add_cases(api, 3)
    _sign_in(api, username)
    few, shown_few = _statements(api, url(last.number))
    _add_cases(api, 30)
    many, shown_many = _statements(api, url(last.number))
    assert shown_many > shown_few >= 1  # the page shows the added cases
    assert many == few, f"{page}: {few} statements for 3 cases, {many} for 33"


def test_a_case_page_sends_as_many_statements_for_a_long_timeline(api: Api) -> None:
    case = _add_cases(api, 1)
    _sign_in(api, "mediatorA")
    url = f"/web/cases/{case.number}"
    _add_events(api, case.number, 2)
    few, _ = _statements(api, url)
    _add_events(api, case.number, 40)
    many, _ = _statements(api, url)
    assert api.client.get(url).text.count("催办") >= 42  # the long timeline is shown
    assert many == few, f"case page: {few} statements for a short timeline, {many} for a long"


def test_the_rest_case_list_sends_as_many_statements_for_many_rows_as_for_few(
    api: Api,
) -> None:
    """Each row's unit codes and "may this reader see its details" are asked for the
    page at once (they were asked per row)."""
    _add_cases(api, 3)
    supervisor = api.as_("supervisor")

    def statements() -> tuple[int, int]:
        with counted(api) as sent:
            answer = supervisor.get("/api/v1/cases", params={"page_size": 100})
        assert answer.status_code == 200, answer.text[:300]
        return len(sent), len(answer.json()["items"])

    statements()  # the token's principal is then cached
    few, shown_few = statements()
    _add_cases(api, 30)
    many, shown_many = statements()
    assert shown_many > shown_few >= 3
    assert many == few, f"REST list: {few} statements for {shown_few} cases, {many} for more"


def test_the_statements_header_counts_each_statement_once_however_many_apps() -> None:
    """``X-SQL-Statements`` (the benchmarks' figure) equals the statements the engine
    sent, also when a second app is made on the same database in the process."""
    from api.app import create_app
    from models.settings import Settings
    from tests.api.conftest import make_api

    for api in make_api(bench_sql_count=True):
        cookie = {"Cookie": f"tj_session={web_cookie(api, api.city.staff['workerA'].id or 0)}"}
        create_app(Settings(database_url=str(api.engine.url), bench_sql_count=True))
        with counted(api) as statements:
            answer = api.client.get("/web/inbox", headers=cookie)
        assert answer.status_code == 200
        assert int(answer.headers["X-SQL-Statements"]) == len(statements) > 0
