"""Staff REST: actions on a case (``POST /api/v1/cases/{case}/<action>``), one route per
row of :data:`models.actions.ACTIONS` (who may do what, and when, is written there).

Every body carries ``version`` (or send ``If-Match: <version>``): the case version the
caller last saw. A stale one answers 409 and changes nothing. Unknown or privileged
fields (status, unit, assignee, number, created_at ...) answer 422. Actions honour
``Idempotency-Key`` like every creating POST.
"""

# No ``from __future__ import annotations``: each route's body type is a value of the
# loop below, and FastAPI must see it as a type, not as a name to look up.

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import CaseInReach
from api.deps import Staff as StaffP
from api.v1.common import case_public, expected_version, load_case, run_write
from models import actions
from models.access import Principal
from models.case import Case, CasePublic

router = APIRouter(
    prefix="/cases/{case_ref}", tags=["case actions 办理"], dependencies=[CaseInReach]
)

CaseRef = Annotated[str, Path(max_length=32, description="case id or number")]
IdemKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, description="retry-safe key"),
]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=20, description="case version")]

RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Within reach, but not for your role"},
    404: {"description": "No such case, or out of reach"},
    409: {"description": "Stale version, or not possible in the case's state"},
    428: {"description": "No version sent"},
}


class ActionAnswer(BaseModel):
    case: CasePublic
    allowed_actions: list[str]
    record_id: int | None = None


def _done(
    session: Session, principal: Principal, case: Case, record_id: int | None
) -> tuple[int, Any]:
    """The answer to an action: the case as it is now and what this person may do next."""
    answer = ActionAnswer(
        case=case_public(session, case),
        allowed_actions=actions.allowed_names(principal, case),
        record_id=record_id,
    )
    return 200, answer.model_dump(mode="json")


def act(
    request: Request, principal: Principal, case_ref: str, name: str, body: BaseModel
) -> JSONResponse:
    """Run one action in one write transaction and answer the case as it is now."""
    version = expected_version(request, getattr(body, "version", None))
    body = body.model_copy(update={"version": version})

    def produce(session: Session) -> tuple[int, Any]:
        case = load_case(session, principal, case_ref)
        return _done(session, principal, case, actions.run(session, principal, case, name, body))

    return run_write(request, principal, body, produce)


def _add_route(action: actions.Action) -> None:
    example = {"example": {"summary": action.summary, "value": action.example}}

    def endpoint(
        request: Request,
        case_ref: CaseRef,
        body: Annotated[action.body, Body(openapi_examples=example)],  # type: ignore[name-defined]
        principal: StaffP,
        idempotency_key: IdemKey = None,
        if_match: IfMatch = None,
    ) -> JSONResponse:
        return act(request, principal, case_ref, action.name, body)

    router.add_api_route(
        f"/{action.name}",
        endpoint,
        methods=["POST"],
        name=action.operation,
        response_model=ActionAnswer,
        responses=RESPONSES,
        summary=action.summary,
        description=f"「{action.zh}」: {action.summary}. Who may, and when: `models/actions.py`.",
    )


for _action in actions.ACTIONS.values():
    if _action.routed:
        _add_route(_action)


# For the routes written by hand (path parameters): the same checks, then their service.
Version = actions.Version
_Body = actions.ActionBody
Act = Callable[[Session, Case, int], int | None]


def _act(
    request: Request, principal: Principal, case_ref: str, body: BaseModel, name: str, act: Act
) -> JSONResponse:
    version = expected_version(request, getattr(body, "version", None))

    def produce(session: Session) -> tuple[int, Any]:
        case = load_case(session, principal, case_ref)
        actions.check(session, principal, case, name)
        record_id = act(session, case, version)
        session.flush()
        return _done(session, principal, case, record_id)

    return run_write(request, principal, body, produce)
