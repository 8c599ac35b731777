"""Staff lent by an agency paired with a community (结对共建), added as a helper (协办) to one
case there: they see that case, and only that case, over REST and on the web pages, may
record their own tasks on it and nothing else, and lose it (404 again) when the help ends
with the case (withdrawn)."""

from __future__ import annotations

from sqlmodel import Session

from api.web.auth import issue_session
from models.case import Case
from models.db import write_session
from models.enums import StaffRole
from tests.api.conftest import Api
from tests.api.test_case_life_api import act, created_and_assigned
from tests.factories import add_staff


def _seen(api: Api, cookie: str, case_id: int) -> tuple[int, int]:
    """REST and web answers of the lent helper for one case."""
    with Session(api.engine) as s:
        case = s.get(Case, case_id)
        assert case is not None
        number = case.number
    rest = api.as_("labour_lent").get(f"/api/v1/cases/{case_id}").status_code
    web = api.client.get(f"/web/cases/{number}", headers={"Cookie": f"tj_session={cookie}"})
    return rest, web.status_code


def test_a_lent_helper_sees_the_case_they_help_with_and_only_while_it_lasts(api: Api) -> None:
    with write_session(api.engine) as s:
        lent = add_staff(s, api.city, "labour_lent", StaffRole.MEDIATOR, "AG-LAB")
        assert lent.id is not None
    with write_session(api.engine) as s:
        cookie = issue_session(s, lent.id)[0]
    helped, handler = created_and_assigned(api)
    other, _ = created_and_assigned(api)  # the same community, not helped with
    assert _seen(api, cookie, helped) == (404, 404)

    act(handler, helped, "helpers", {"staff_id": lent.id, "role": "legal_education"})
    assert _seen(api, cookie, helped) == (200, 200)
    assert _seen(api, cookie, other) == (404, 404)
    listed = api.as_("labour_lent").get("/api/v1/cases").json()
    assert [c["id"] for c in listed["items"]] == [helped]
    me = api.as_("labour_lent")
    detail = me.get(f"/api/v1/cases/{helped}").json()
    assert detail["allowed_actions"] == ["helper-tasks"]  # a mediator by role, lent to help
    act(me, helped, "withdraw", {"reason": "撤回"}, status=403)
    act(me, helped, "helper-tasks", {"kind": "legal_talk", "note": "向双方讲解劳动法"})

    act(handler, helped, "withdraw", {"reason": "当事人撤回申请"})
    assert _seen(api, cookie, helped) == (404, 404)
    assert api.as_("labour_lent").get("/api/v1/cases").json()["items"] == []
