"""The resident's side: the receipt at intake, the /r/{code} page, its actions and its
defences, through the HTTP app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlmodel import Session, select

from models import tracking
from models.event import CaseEvent
from tests.api.conftest import Api, make_api, web_cookie
from tests.api.test_cases_api import CASE
from tests.factories import NAME, PHONE
from tests.unit.test_resident import png


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


def test_the_receipt_names_the_address_people_use(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.settings import reset_settings

    case = _new_case(api)
    code = tracking.code_for(str(case["number"]))
    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["workerA"].id or 0))
    url = f"http://127.0.0.1:8123/web/cases/{case['number']}?created=1"
    receipt = api.client.get(url).text
    assert f"http://127.0.0.1:8123/r/{code}" in receipt  # the app's port
    received_by = re.search(r"受理单位</dt><dd>([^<]*)</dd>", receipt)
    assert received_by and received_by[1] == "桂花社区人民调解委员会"  # not its building
    monkeypatch.setenv("TIAOJIE_PUBLIC_URL", "https://tiaojie.jiangxin.example/")
    reset_settings()
    assert f"https://tiaojie.jiangxin.example/r/{code}" in api.client.get(url).text


# --- the phone check, the lock and what a refusal says -----------------------------------

MADE_UP = "7Q2M-9KXD-4HTR-VB3N"


def _code(case: dict[str, object]) -> str:
    return tracking.code_for(str(case["number"]))


def _check(api: Api, code: str, last4: str) -> httpx.Response:
    api.client.cookies.clear()
    answer: httpx.Response = api.client.post(f"/r/{code}", data={"last4": last4})
    return answer


def _open(api: Api, code: str, last4: str = PHONE[-4:]) -> httpx.Response:
    answer = _check(api, code, last4)
    assert answer.status_code == 303, answer.text
    api.client.cookies.set("tj_resident", answer.cookies["tj_resident"], path="/r/")
    page: httpx.Response = api.client.get(f"/r/{code}")
    return page


@pytest.fixture
def open_api() -> Iterator[Api]:
    yield from make_api(resident_per_minute=0)


def test_the_last_four_digits_open_the_status_page_without_staff_or_other_parties(
    open_api: Api,
) -> None:
    api = open_api
    case = _new_case(api)
    page = _open(api, _code(case))
    assert page.status_code == 200
    assert "正在研判分流" in page.text  # the next step, as the resident reads it
    assert str(case["number"]) in page.text
    for secret in (NAME, PHONE, "恒达电子厂", "workerA", api.city.staff["workerA"].display_name):
        assert secret not in page.text
    assert 'id="info"' in page.text  # the resident may add information


def test_twenty_wrong_checks_lock_a_code_and_never_tell_whether_it_exists(
    open_api: Api, vclock: object
) -> None:
    api = open_api
    real = _code(_new_case(api))

    def answers(code: str) -> list[tuple[int, str]]:
        out = []
        for _ in range(20):
            r = _check(api, code, "0000")
            assert "tj_resident" not in r.cookies
            body = r.text.replace(code, "CODE")
            out.append((r.status_code, body))
        return out

    for_real, for_made_up = answers(real), answers(MADE_UP)
    assert for_real == for_made_up
    assert {status for status, _ in for_real} == {403}
    assert "已暂时锁定" in for_real[-1][1] and "已暂时锁定" not in for_real[0][1]
    # Locked: even the right digits are refused, with the same answer as a made-up code.
    right = _check(api, real, PHONE[-4:])
    assert right.status_code == 403 and "tj_resident" not in right.cookies
    assert right.text.replace(real, "CODE") == for_made_up[-1][1]
    # Later the code opens again with the right digits.
    vclock.advance(timedelta(minutes=31))  # type: ignore[attr-defined]
    assert _check(api, real, PHONE[-4:]).status_code == 303


def test_a_session_on_one_case_opens_no_other(open_api: Api) -> None:
    api = open_api
    first, second = _code(_new_case(api)), _code(_new_case(api))
    _open(api, first)
    other = api.client.get(f"/r/{second}")
    assert other.status_code == 200 and 'name="last4"' in other.text
    assert 'id="status"' not in other.text
    acted = api.client.post(f"/r/{second}/info", data={"note": "补充一句", "csrf": "x"})
    assert acted.status_code == 403
    with Session(api.engine) as s:
        assert s.exec(select(CaseEvent).where(CaseEvent.verb == "resident_info_added")).all() == []


def test_requests_per_address_are_limited() -> None:
    for api in make_api(resident_per_minute=3):
        for _ in range(3):
            assert api.client.get(f"/r/{MADE_UP}").status_code == 200
        limited = api.client.get(f"/r/{MADE_UP}")
        assert limited.status_code == 429 and "Retry-After" in limited.headers


# --- the resident's actions through the page, and what staff see of them ------------------


def _assigned(api: Api) -> dict[str, object]:
    from models.case import Case
    from models.db import write_session
    from tests.factories import advance_to_assigned

    case = _new_case(api)
    with write_session(api.engine) as session:
        row = session.get(Case, case["id"])
        assert row is not None
        advance_to_assigned(session, row, api.city)
    return case


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_a_resident_adds_a_photo_and_consents_and_staff_see_both(open_api: Api) -> None:
    api = open_api
    case = _assigned(api)
    code = _code(case)
    page = _open(api, code)
    assert 'id="consent"' in page.text
    sent = api.client.post(
        f"/r/{code}/info",
        data={"note": "厂门口又贴了停工通知", "csrf": _csrf(page)},
        files=[("photos", ("notice.png", png(), "image/png"))],
    )
    assert sent.status_code == 303, sent.text
    page = api.client.get(sent.headers["location"])
    assert "已提交" in page.text
    consent = api.client.post(f"/r/{code}/consent", data={"agree": "yes", "csrf": _csrf(page)})
    assert consent.status_code == 303
    page = api.client.get(f"/r/{code}")
    assert "您已同意调解" in page.text and 'id="consent"' not in page.text

    api.client.cookies.clear()
    mediator = api.city.staff["mediatorA"].id or 0
    api.client.cookies.set("tj_session", web_cookie(api, mediator))
    staff_page = api.client.get(f"/web/cases/{case['number']}").text
    for seen in (
        "当事人补充材料",
        "厂门口又贴了停工通知",
        "记录调解同意",
        "当事人本人（查询页或短信链接）",
    ):
        assert seen in staff_page
    link = re.search(r'href="(/web/cases/[^"]+/photos/\d+)"', staff_page)
    assert link is not None
    photo = api.client.get(link.group(1))
    assert photo.status_code == 200 and photo.content == png()
    assert photo.headers["content-type"] == "image/png"
    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["workerB"].id or 0))
    assert api.client.get(link.group(1)).status_code == 404


def test_a_page_left_open_expires_and_a_forged_form_is_refused(
    open_api: Api, vclock: object
) -> None:
    api = open_api
    case = _assigned(api)
    code = _code(case)
    page = _open(api, code)
    forged = api.client.post(f"/r/{code}/consent", data={"agree": "yes", "csrf": "0" * 32})
    assert forged.status_code == 403
    vclock.advance(timedelta(minutes=21))  # type: ignore[attr-defined]
    late = api.client.post(f"/r/{code}/consent", data={"agree": "yes", "csrf": _csrf(page)})
    assert late.status_code == 403 and "手机号后四位" in late.text
    with Session(api.engine) as s:
        verbs = s.exec(select(CaseEvent.verb).where(CaseEvent.case_id == case["id"])).all()
    assert "consent_recorded" not in verbs
