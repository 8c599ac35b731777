"""The case page's action forms as a newcomer meets them: required inputs say 必填, an
error shows beside the input it concerns and in the form that was sent only."""

from __future__ import annotations

import re

from models.db import write_session
from tests.api.conftest import Api, web_cookie
from tests.factories import advance_to_assigned, make_case


def _assigned_case(api: Api) -> str:
    with write_session(api.engine) as session:
        case = advance_to_assigned(session, make_case(session), api.city)
        return case.number


def _post(api: Api, user: str, number: str, verb: str, form: dict[str, str]) -> str:
    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff[user].id or 0))
    page = api.client.get(f"/web/cases/{number}").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    version = re.search(r'name="version" value="(\d+)"', page)
    assert csrf and version
    body = {"csrf_token": csrf[1], "version": version[1], **form}
    answer = api.client.post(f"/web/cases/{number}/actions/{verb}", data=body)
    assert answer.status_code == 422, answer.status_code
    return answer.text


def _form(page: str, verb: str) -> str:
    start = page.index(f'id="action-{verb}"')
    return page[start : page.index("</form>", start)]


def test_required_inputs_are_marked_and_a_missing_one_is_told_in_its_form(api: Api) -> None:
    number = _assigned_case(api)
    page = _post(api, "supervisor", number, "withdrawn", {"reason": ""})
    withdraw = _form(page, "withdrawn")
    assert re.search(r"原因[^<]*<span class=\"req\">必填</span></label>", withdraw)
    assert withdraw.count('class="field-error"') == 1
    # Escalation's form has a "reason" too: the error is not repeated there.
    assert 'class="field-error"' not in _form(page, "escalated")


def test_a_form_wide_error_shows_in_the_form(api: Api) -> None:
    number = _assigned_case(api)
    page = _post(api, "supervisor", number, "reclassified", {})
    assert "请填写类别或紧急程度" in _form(page, "reclassified")


def test_reassign_names_an_unknown_username_beside_the_input(api: Api) -> None:
    number = _assigned_case(api)
    page = _post(api, "supervisor", number, "assigned", {"assignee": "nobody"})
    form = _form(page, "assigned")
    assert '改派给（用户名） <span class="req">必填</span>' in form
    error = form[form.index('name="assignee"') :]
    assert 'class="field-error"' in error and "nobody" in error


def test_the_mediators_offered_show_their_units(api: Api) -> None:
    number = _assigned_case(api)
    api.client.cookies.set("tj_session", web_cookie(api, api.city.staff["supervisor"].id or 0))
    form = _form(api.client.get(f"/web/cases/{number}").text, "mediators_named")
    assert re.search(r"mediatorA <span class=\"muted\">桂花社区</span>", form)
    assert re.search(r"street_mediator <span class=\"muted\">柳河街道</span>", form)
