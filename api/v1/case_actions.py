"""Staff REST: actions on a case (``POST /api/v1/cases/{case}/<action>``), one route per
row of :data:`models.actions.ACTIONS` (who may do what, and when, is written there).

Every body carries ``version`` (or send ``If-Match: <version>``): the case version the
caller last saw. A stale one answers 409 and changes nothing. Unknown or privileged
fields (status, unit, assignee, number, created_at ...) answer 422. Actions honour
``Idempotency-Key`` like every creating POST. A row may take path parameters (the id of
a mediator or a party of the case: ``mediators/{staff_id}/recuse``), another method
(``PATCH parties/{party_id}``) or a file (multipart ``file`` with the body's fields as
form fields: ``attachments``, which checks no version).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Header, Path, Request, UploadFile
from fastapi.openapi.models import Example
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import CaseInReach, RowId
from api.deps import Staff as StaffP
from api.v1.common import case_public, expected_version, load_case, run_write
from api.v1.documents import AttachmentInfo, attachment_info
from models import actions
from models.access import Principal
from models.attachments import Attachment
from models.case import Case, CasePublic
from models.settings import get_settings

router = APIRouter(
    prefix="/cases/{case_ref}", tags=["case actions 办理"], dependencies=[CaseInReach]
)

CaseRef = Annotated[str, Path(max_length=32, description="case id or number")]
IdemKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=200, description="retry-safe key"),
]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=20, description="case version")]
FileIn = Annotated[UploadFile, File(description="PDF, JPEG or PNG")]

RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Within reach, but not for your role"},
    404: {"description": "No such case, or out of reach"},
    409: {"description": "Stale version, or not possible in the case's state"},
    428: {"description": "No version sent"},
}
UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "Too large"},
    415: {"description": "Not PDF/JPEG/PNG"},
}


class ActionAnswer(BaseModel):
    case: CasePublic
    allowed_actions: list[str]
    record_id: int | None = None


class AttachmentAnswer(AttachmentInfo, ActionAnswer):
    """An upload's answer: the attachment stored, and the case as it is now."""


# Rows that create a resource of their own answer it beside the case (and 201).
CREATED: dict[str, tuple[type[ActionAnswer], Callable[[Session, int], BaseModel]]] = {
    "attachments": (AttachmentAnswer, lambda s, i: attachment_info(s.get_one(Attachment, i))),
}


def _done(
    session: Session,
    principal: Principal,
    case: Case,
    action: actions.Action,
    record_id: int | None,
) -> tuple[int, Any]:
    """The answer to an action: the case as it is now and what this person may do next."""
    answer = ActionAnswer(
        case=case_public(session, case),
        allowed_actions=actions.allowed_names(session, principal, case),
        record_id=record_id,
    ).model_dump(mode="json")
    if action.name in CREATED and record_id is not None:
        answer |= CREATED[action.name][1](session, record_id).model_dump(mode="json")
    return action.status, answer


def act(
    request: Request,
    principal: Principal,
    case_ref: str,
    action: actions.Action,
    body: BaseModel,
    extras: dict[str, Any],
) -> JSONResponse:
    """Run one action in one write transaction and answer the case as it is now."""
    if not action.upload:
        version = expected_version(request, getattr(body, "version", None))
        body = body.model_copy(update={"version": version})

    def produce(session: Session) -> tuple[int, Any]:
        case = load_case(session, principal, case_ref)
        record_id = actions.run(session, principal, case, action.name, body, **extras)
        return _done(session, principal, case, action, record_id)

    file = extras.get("file")
    sent = body if not isinstance(file, actions.Upload) else _Sent.of(body, file)
    return run_write(request, principal, sent, produce)


class _Sent(BaseModel):
    """What an upload's ``Idempotency-Key`` is bound to: its fields and the file's digest
    (a retry with the same key and another file is refused, not answered as the first)."""

    fields: dict[str, Any]
    sha256: str

    @classmethod
    def of(cls, body: BaseModel, file: actions.Upload) -> _Sent:
        digest = hashlib.sha256(file.content).hexdigest()
        return cls(fields=body.model_dump(mode="json"), sha256=digest)


def _upload(file: UploadFile) -> actions.Upload:
    """The file as sent, read up to one byte past the limit (the domain refuses more)."""
    content = file.file.read(get_settings().attachment_max_bytes + 1)
    return actions.Upload(filename=file.filename or "", content=content)


def _parameters(action: actions.Action) -> list[inspect.Parameter]:
    """The route's parameters, as FastAPI reads them from its signature."""

    def param(name: str, kind: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
        return inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default
        )

    found = [param("request", Request), param("case_ref", CaseRef)]
    found += [param(name, RowId) for name in action.params]
    if action.upload:
        found.append(param("file", FileIn))
        found += [  # the body's fields, each a form field of its own beside the file
            param(
                name,
                Annotated[(info.annotation, *info.metadata, Form(description=info.description))],
                info.default,
            )
            for name, info in action.body.model_fields.items()
        ]
    else:
        example: dict[str, Example] = {
            "example": {"summary": action.summary, "value": action.example}
        }
        found.append(param("body", Annotated[action.body, Body(openapi_examples=example)]))
    return [
        *found,
        param("principal", StaffP),
        param("idempotency_key", IdemKey, None),
        param("if_match", IfMatch, None),
    ]


def _add_route(action: actions.Action) -> None:
    def endpoint(**given: Any) -> JSONResponse:
        extras = {name: given[name] for name in action.params}
        if action.upload:
            extras["file"] = _upload(given["file"])
            body = action.body.model_validate({n: given[n] for n in action.body.model_fields})
        else:
            body = given["body"]
        return act(given["request"], given["principal"], given["case_ref"], action, body, extras)

    endpoint.__signature__ = inspect.Signature(_parameters(action))  # type: ignore[attr-defined]
    answer, responses = ActionAnswer, RESPONSES
    if action.name in CREATED:
        answer = CREATED[action.name][0]
    if action.upload:
        responses = {**RESPONSES, **UPLOAD_RESPONSES}
    router.add_api_route(
        f"/{action.rest_path}",
        endpoint,
        methods=[action.method],
        name=action.operation,
        status_code=action.status,
        response_model=answer,
        responses=responses,
        summary=action.summary,
        description=f"「{action.zh}」: {action.summary}. Who may, and when: `models/actions.py`.",
    )


for _action in actions.ACTIONS.values():
    _add_route(_action)
