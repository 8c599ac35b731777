"""One-use links through the HTTP app (/r/link/{token}): the respondent accepts with
times or declines, the complainant answers by link; a used, expired, tampered or
other-case link gets one calm page and changes nothing; staff see every answer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlmodel import Session, col, select

from models import clock, resident_links, tracking
from models.case import Case
from models.db import write_session
from models.event import CaseEvent
from models.resident_tables import ResidentLink
from tests.api.conftest import Api, make_api, web_cookie
from tests.api.test_cases_api import CASE
from tests.factories import NAME, PHONE, accept_for_mediation, advance_to_assigned
from tests.unit.test_resident import _agreed

FIRM_PHONE = "13912345678"


@pytest.fixture
def open_api() -> Iterator[Api]:
    yield from make_api(resident_per_minute=0)


def _assigned_case(api: Api) -> dict[str, object]:
    body = {**CASE, "parties": [CASE["parties"][0], {  # type: ignore[index]
        "side": "respondent", "kind": "firm", "name": "江心市恒达电子厂", "phone": FIRM_PHONE,
    }]}  # fmt: skip
    answer = api.as_("workerA").post("/api/v1/cases", json=body)
    assert answer.status_code == 201, answer.text
    case: dict[str, object] = answer.json()["case"]
    with write_session(api.engine) as session:
        row = session.get(Case, case["id"])
        assert row is not None
        advance_to_assigned(session, row, api.city)
        accept_for_mediation(session, row, api.city)
    return case


def _tokens(api: Api, case: dict[str, object]) -> dict[str, str]:
    """What the notify step sends: the links the case owes (issued once)."""
    with write_session(api.engine) as session:
        row = session.get(Case, case["id"])
        assert row is not None
        links = resident_links.issue(session, case=row, purposes=("consent", "respondent"))
        return {k.purpose: resident_links.token_of(k) for k in links}


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return found.group(1)


def _days(*ahead: int) -> list[str]:
    today = clock.to_local(clock.now()).date()
    return [(today + timedelta(days=d)).isoformat() for d in ahead]


def _events(api: Api, case: dict[str, object]) -> list[tuple[str, str]]:
    with Session(api.engine) as s:
        rows = s.exec(
            select(CaseEvent).where(CaseEvent.case_id == case["id"]).order_by(col(CaseEvent.seq))
        ).all()
        return [(e.verb, e.actor) for e in rows]


def _staff_page(api: Api, case: dict[str, object]) -> str:
    api.client.cookies.clear()
    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["mediatorA"].id or 0))
    page = api.client.get(f"/web/cases/{case['number']}")
    api.client.cookies.clear()
    assert page.status_code == 200
    return page.text


def test_the_respondent_accepts_with_times_and_the_mediator_sees_them(open_api: Api) -> None:
    api = open_api
    case = _assigned_case(api)
    token = _tokens(api, case)["respondent"]
    page = api.client.get(f"/r/link/{token}")
    assert page.status_code == 200 and "调解邀请" in page.text and "江心市恒达电子厂" in page.text
    code = tracking.code_for(str(case["number"]))
    for secret in (NAME, PHONE, code, "拖欠二十名工人", "workerA"):
        assert secret not in page.text  # nothing of the complainant, nor the account
    days = _days(2, 4)
    sent = api.client.post(
        f"/r/link/{token}",
        data={
            "csrf": _csrf(page),
            "answer": "accept",
            "slot_day": [days[0], days[1], ""],
            "slot_part": ["am", "eve", "am"],
            "note": "",
        },
    )
    assert sent.status_code == 303, sent.text
    done = api.client.get(sent.headers["location"])
    assert "同意调解" in done.text and "此链接已使用" in done.text
    verbs = [v for v, _ in _events(api, case)][-2:]
    assert verbs == ["consent_recorded", "times_proposed"]
    staff = _staff_page(api, case)
    assert 'class="party-answer accepted"' in staff and "当事人提出调解时间" in staff
    day = clock.to_local(clock.now()).date() + timedelta(days=2)
    assert f"{day.month}月{day.day}日 上午" in staff and "晚上（19:00–21:00）" in staff
    rest = api.as_("mediatorA").get(f"/api/v1/cases/{case['number']}").json()["mediation"]
    [answer] = rest["party_answers"]
    assert answer["accepted"] and answer["side"] == "respondent"
    assert answer["slots"] == [{"day": days[0], "part": "am"}, {"day": days[1], "part": "eve"}]
    assert rest["blocked_by_refusal"] is False


def _refusal(api: Api, token: str, csrf: str = "") -> tuple[int, str]:
    got = api.client.get(f"/r/link/{token}")
    posted = api.client.post(f"/r/link/{token}", data={"csrf": csrf, "answer": "decline"})
    assert (got.status_code, got.text) == (posted.status_code, posted.text)
    return got.status_code, got.text


def test_used_expired_tampered_and_other_case_links_get_the_same_page(
    open_api: Api, vclock: clock.VirtualClock
) -> None:
    api = open_api
    a, b = _assigned_case(api), _assigned_case(api)
    tokens_a, tokens_b = _tokens(api, a), _tokens(api, b)
    token = tokens_a["respondent"]
    page = api.client.get(f"/r/link/{token}")
    declined = api.client.post(
        f"/r/link/{token}", data={"csrf": _csrf(page), "answer": "decline", "note": "不需要"}
    )
    assert declined.status_code == 303
    before_a, before_b = _events(api, a), _events(api, b)
    nonce = resident_links.NONCE_CHARS
    answers = {
        "used": _refusal(api, token),
        "tampered": _refusal(api, token[:-1] + ("a" if token[-1] != "a" else "b")),
        "other case": _refusal(api, tokens_a["consent"][:nonce] + tokens_b["consent"][nonce:]),
        "made up": _refusal(api, "x" * 32),
    }
    vclock.advance(timedelta(days=8))
    answers["expired"] = _refusal(api, tokens_b["respondent"])
    assert len(set(answers.values())) == 1, answers.keys()
    status, text = answers["used"]
    assert status == 403 and "此链接已使用、已过期或无效" in text
    assert "调解邀请" not in text and str(b["number"]) not in text
    assert _events(api, a) == before_a and _events(api, b) == before_b
    with Session(api.engine) as s:
        used = s.exec(select(ResidentLink).where(col(ResidentLink.used_at).is_not(None))).all()
    assert len(used) == 1


def test_a_refused_answer_leaves_the_link_usable(open_api: Api) -> None:
    api = open_api
    case = _assigned_case(api)
    token = _tokens(api, case)["respondent"]
    page = api.client.get(f"/r/link/{token}")
    bad = api.client.post(
        f"/r/link/{token}",
        data={"csrf": _csrf(page), "answer": "accept", "slot_day": ["2020-01-01"], "slot_part": ["am"]},
    )  # fmt: skip
    assert bad.status_code == 422 and "明天起" in bad.text and 'id="accept"' in bad.text
    forged = api.client.post(f"/r/link/{token}", data={"csrf": "0" * 32, "answer": "decline"})
    assert forged.status_code == 403
    assert [v for v, _ in _events(api, case)][-1] != "resident_consent_refused"
    assert api.client.get(f"/r/link/{token}").status_code == 200  # still unused


def test_a_declined_invitation_stops_mediation_and_the_case_page_says_so(open_api: Api) -> None:
    api = open_api
    case = _assigned_case(api)
    token = _tokens(api, case)["respondent"]
    page = api.client.get(f"/r/link/{token}")
    api.client.post(f"/r/link/{token}", data={"csrf": _csrf(page), "answer": "decline"})
    staff = _staff_page(api, case)
    assert 'id="declined"' in staff and "人民调解法第十七条" in staff
    rest = api.as_("mediatorA").get(f"/api/v1/cases/{case['number']}").json()["mediation"]
    assert rest["blocked_by_refusal"] is True and not rest["party_answers"][0]["accepted"]
    assert "当事人不同意调解（本人答复）" in staff
    # Even with every consent recorded by staff for the complainant, start is refused.
    mediator = api.as_("mediatorA")
    with Session(api.engine) as s:
        row = s.get(Case, case["id"])
        assert row is not None
        version = row.version
    started = mediator.post(
        f"/api/v1/cases/{case['number']}/mediation/start", json={"version": version}
    )
    assert started.status_code == 409 and "第十七条" in started.text


def test_the_complainant_answers_consent_by_link(open_api: Api) -> None:
    api = open_api
    case = _assigned_case(api)
    token = _tokens(api, case)["consent"]
    page = api.client.get(f"/r/link/{token}")
    assert page.status_code == 200 and 'id="consent"' in page.text
    assert str(case["number"]) in page.text and "江心市恒达电子厂" not in page.text
    sent = api.client.post(f"/r/link/{token}", data={"csrf": _csrf(page), "agree": "yes"})
    assert sent.status_code == 303
    assert _events(api, case)[-1][0] == "consent_recorded"
    assert _events(api, case)[-1][1].startswith("resident:")


def test_at_the_return_visit_the_complainant_confirms_terms_and_answers_by_links(
    open_api: Api, vclock: clock.VirtualClock
) -> None:
    api = open_api
    with write_session(api.engine) as session:
        case = _agreed(session, api.city)
        vclock.advance(timedelta(days=2))  # the visit is due
        links = resident_links.issue(session, case=case, purposes=("terms", "visit"))
        tokens = {k.purpose: resident_links.token_of(k) for k in links}
        number = case.number
    assert set(tokens) == {"terms", "visit"}
    page = api.client.get(f"/r/link/{tokens['terms']}")
    assert 'id="terms"' in page.text and "一次付清" in page.text and 'id="visit"' not in page.text
    sent = api.client.post(
        f"/r/link/{tokens['terms']}", data={"csrf": _csrf(page), "carried_out": "yes"}
    )
    assert sent.status_code == 303
    page = api.client.get(f"/r/link/{tokens['visit']}")
    unanswered = api.client.post(f"/r/link/{tokens['visit']}", data={"csrf": _csrf(page)})
    assert unanswered.status_code == 422 and "是否满意" in unanswered.text
    sent = api.client.post(
        f"/r/link/{tokens['visit']}",
        data={"csrf": _csrf(page), "resolved": "resolved", "satisfied": "satisfied"},
    )
    assert sent.status_code == 303
    staff = _staff_page(api, {"number": number})
    assert "当事人确认履行情况" in staff and "已解决 · 满意" in staff
    assert api.client.get(f"/r/link/{tokens['visit']}").status_code == 403
