"""The resident's side: the receipt at intake, the /r/{code} page, its actions and its
defences, through the HTTP app."""

from __future__ import annotations

from models import tracking
from tests.api.conftest import Api, web_cookie
from tests.api.test_cases_api import CASE


def _new_case(api: Api, body: dict[str, object] | None = None) -> dict[str, object]:
    answer = api.as_("workerA").post("/api/v1/cases", json=body or CASE)
    assert answer.status_code == 201, answer.text
    case: dict[str, object] = answer.json()["case"]
    return case


def test_the_case_page_shows_a_printable_receipt_after_intake(api: Api) -> None:
    case = _new_case(api)
    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["workerA"].id or 0))
    page = api.client.get(f"/web/cases/{case['number']}?created=1")
    assert page.status_code == 200
    code = tracking.code_for(str(case["number"]))
    assert 'id="receipt"' in page.text and code in page.text
    assert f"/r/{code}" in page.text and "手机号的后四位" in page.text
    later = api.client.get(f"/web/cases/{case['number']}")
    assert 'id="receipt"' not in later.text and code in later.text
