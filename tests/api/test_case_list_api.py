"""The case list page and its exports through the app: reach, filters, bad filters, the
next page, and spreadsheets that open and hold only what the reader may see."""

from __future__ import annotations

import io

import openpyxl
from sqlmodel import Session, select

from models.admin_log import AdminEvent
from models.db import write_session
from tests.api.conftest import Api, web_cookie
from tests.factories import PHONE, advance_to_assigned, make_case


def _sign_in(api: Api, username: str) -> None:
    staff_id = api.city.staff[username].id
    assert staff_id is not None
    api.client.cookies.set("tj_session", web_cookie(api, staff_id))


def _cases(api: Api) -> tuple[str, str, str]:
    with write_session(api.engine) as session:
        mine = advance_to_assigned(session, make_case(session, place_code="BA1"), api.city)
        other = advance_to_assigned(
            session,
            make_case(session, place_code="BB1"),
            api.city,
            unit="CMB",
            assignee="mediatorB",
        )
        formula = make_case(session, place_code="BA2", description="=cmd|' /C calc'!A0 噪声扰民")
        return mine.number, other.number, formula.number


def test_the_list_shows_only_the_readers_reach_and_filters(api: Api) -> None:
    mine, other, formula = _cases(api)
    _sign_in(api, "workerA")
    page = api.client.get("/web/cases")
    assert page.status_code == 200
    assert mine in page.text and formula in page.text and other not in page.text
    assigned = api.client.get("/web/cases", params={"status": "assigned"})
    assert mine in assigned.text and formula not in assigned.text
    assert api.client.get("/web/cases", params={"q": formula}).text.count(formula) >= 1
    bad = api.client.get("/web/cases", params={"status": "nonsense", "unit": "NOPE"})
    assert bad.status_code == 400 and "NOPE" in bad.text
    _sign_in(api, "supervisor")
    everything = api.client.get("/web/cases", params={"sort": "number"})
    assert all(n in everything.text for n in (mine, other, formula))


def test_next_page_link_walks_the_list(api: Api) -> None:
    with write_session(api.engine) as session:
        numbers = {make_case(session, place_code="BA1").number for _ in range(55)}
    _sign_in(api, "workerA")
    first = api.client.get("/web/cases")
    assert "next-page" in first.text
    link = first.text.split('id="next-page" href="')[1].split('"')[0].replace("&amp;", "&")
    second = api.client.get(link)
    shown = {n for n in numbers if n in first.text} | {n for n in numbers if n in second.text}
    assert shown == numbers and "next-page" not in second.text


def test_exports_open_and_mask_for_readers_not_entitled(api: Api) -> None:
    mine, other, formula = _cases(api)
    _sign_in(api, "supervisor")
    answer = api.client.get("/web/export/cases.xlsx", params={"sort": "number"})
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith('attachment; filename="cases-')
    book = openpyxl.load_workbook(io.BytesIO(answer.content), read_only=True)
    values = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()
    assert [r[0] for r in values[1:]] == sorted([mine, other, formula])
    cells = [str(v) for r in values for v in r if v is not None]
    assert PHONE not in cells and any(c.startswith("'=cmd") for c in cells)

    _sign_in(api, "mediatorA")  # the assignee of `mine`: its phone in clear, no other
    text = api.client.get("/web/export/cases.csv").content.decode("utf-8-sig")
    lines = {line.split(",")[0]: line for line in text.splitlines()[1:]}
    assert PHONE in lines[mine] and other not in lines
    with Session(api.engine) as session:
        actions = [e.action for e in session.exec(select(AdminEvent)).all()]
    assert actions == ["export.cases.xlsx", "export.cases.csv"]
