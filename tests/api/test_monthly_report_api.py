"""The monthly report's numbers are the dashboard's: the same month through the metrics
API (the figures the dashboard draws) and through the .xlsx, sheet by sheet."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import openpyxl

from models import clock, lifecycle
from models.breaches import record_breaches
from models.contact import ContactCreate, record_contact
from models.db import write_session
from models.enums import ContactMethod
from models.lifecycle import Actor
from tests.api.conftest import Api, web_cookie
from tests.conftest import T0
from tests.factories import advance_to_assigned, make_case, staff_actor


def _month_of_cases(api: Api) -> None:
    with write_session(api.engine) as session:
        for n in range(6):
            at = T0 - timedelta(days=3 + 3 * n)  # all in November, some past their limits
            case = make_case(session, place_code="BA1" if n % 2 else "BB1", at=at)
            unit, who = ("CMA", "mediatorA") if n % 2 else ("CMB", "mediatorB")
            advance_to_assigned(session, case, api.city, unit=unit, assignee=who)
            if n % 3 == 0:  # phoned within the hour: responded in time
                record_contact(
                    session,
                    case_id=case.id or 0,
                    data=ContactCreate(method=ContactMethod.PHONE, at=at + timedelta(hours=1)),
                    actor=staff_actor(api.city, who),
                    expected_version=None,
                )
        late = make_case(session, place_code="BA2", at=T0 - timedelta(days=25))
        advance_to_assigned(session, late, api.city)
        lifecycle.apply(
            session,
            case=late,
            verb="escalated",
            actor=Actor.system(),
            data={"from_unit": "CMA", "to_unit": "S1", "level": 1},
        )
        # What the escalation sweep writes first: every limit that has passed, where.
        record_breaches(session, now=T0)


def _sheet(book: Any, prefix: str) -> list[tuple[Any, ...]]:
    sheet = next(ws for ws in book.worksheets if ws.title.startswith(prefix))
    return list(sheet.iter_rows(values_only=True))[1:]


def test_the_monthly_report_equals_the_dashboards_figures(
    api: Api, vclock: clock.VirtualClock
) -> None:
    _month_of_cases(api)
    supervisor = api.as_("supervisor")
    params = {"since": "2026-11-01", "until": "2026-11-30"}
    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["supervisor"].id or 0))
    answer = api.client.get("/web/reports/monthly/2026-11.xlsx")
    assert answer.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(answer.content), read_only=True)

    for level, prefix in (("community", "社区"), ("street", "街道")):
        expected = supervisor.get("/api/v1/metrics/rates", params={**params, "level": level}).json()
        shown = {row[1]: row for row in _sheet(book, prefix)}
        assert set(shown) == {r["unit_code"] for r in expected}
        for r in expected:
            row = shown[r["unit_code"]]
            assert (row[0], row[3], row[4], row[5], row[7], row[8], row[10], row[11]) == (
                r["rank"],
                r["cases"],
                r["response_cases"],
                r["responded_in_time"],
                r["resolution_cases"],
                r["resolved"],
                r["rated"],
                r["satisfied"],
            )
            for got, want in ((row[6], r["response_rate"]), (row[9], r["resolution_rate"])):
                assert got == want or abs(got - want) < 1e-9
    assert sum(r[3] for r in _sheet(book, "社区")) == 7

    overdue = {r["level"]: r["overdue"] for r in supervisor.get("/api/v1/metrics/overdue").json()}
    shown_overdue = {row[0].split()[-1].lower(): row[1] for row in _sheet(book, "逾期")}
    assert overdue == {k: shown_overdue[k] for k in overdue} and sum(overdue.values()) > 0
    escalations = dict(_sheet(book, "提级"))
    assert escalations["街道 Street"] == 1 and sum(escalations.values()) == 1
    book.close()

    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["workerA"].id or 0))
    worker = api.client.get("/web/reports/monthly/2026-11.xlsx")
    assert worker.status_code == 403
    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["supervisor"].id or 0))
    for month in ("2026-13", "abc", "2026-1"):
        # A malformed month is told how a month is written, in both languages.
        bad = api.client.get(f"/web/reports/monthly/{month}.xlsx")
        assert bad.status_code == 422 and "YYYY-MM" in bad.text
        assert "格式不正确" in bad.text and "is not a month" in bad.text
    rest = supervisor.get("/api/v1/metrics/ranking", params={"month": "2026-13"})
    assert rest.status_code == 422 and "格式不正确" in rest.json()["message"]
