"""Staff REST: early-warning assessment tasks (研判任务) of the streets in reach.

``GET /api/v1/risk-warnings`` lists them (open by default), most urgent first;
``POST /api/v1/risk-warnings/{id}/close`` records the assessment's conclusion (the
responsible leader, or a supervisor over the street).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlmodel import Session

from api.deps import DBRead, Staff
from api.v1.common import run_write
from models import clock
from models.access import Principal
from models.case import Case
from models.errors import NotFound
from models.triage_tables import RiskWarning
from models.unit import Unit
from models.warning import close_warning, warnings_within

router = APIRouter(prefix="/risk-warnings", tags=["early warning 预警研判"])


class WarningOut(BaseModel):
    id: int
    case_number: str
    level: str
    score: int
    reasons: list[str]
    street_code: str
    leader_id: int | None
    due_at: datetime
    overdue: bool
    status: str
    conclusion: str | None
    notified_at: datetime | None


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conclusion: Literal["resolved", "monitoring", "escalated"]


def _out(warning: RiskWarning, case: Case, street: Unit) -> dict[str, Any]:
    assert warning.id is not None
    due = clock.ensure_utc(warning.due_at)
    return WarningOut(
        id=warning.id,
        case_number=case.number,
        level=warning.level,
        score=warning.score,
        reasons=list(warning.reasons),
        street_code=street.code,
        leader_id=warning.leader_id,
        due_at=due,
        overdue=warning.status == "open" and due <= clock.now(),
        status=warning.status,
        conclusion=warning.conclusion,
        notified_at=warning.notified_at,
    ).model_dump(mode="json")


def _within(principal: Principal) -> str | None:
    return None if principal.is_admin else (principal.unit_path or "\0")


@router.get("", response_model=list[WarningOut], summary="预警研判任务 Assessment tasks")
def list_warnings(
    principal: Staff, session: DBRead, status: Literal["open", "closed", "all"] = "open"
) -> list[dict[str, Any]]:
    rows = warnings_within(
        session, path=_within(principal), status=None if status == "all" else status
    )
    return [_out(w, c, u) for w, c, u in rows]


@router.post(
    "/{warning_id}/close", response_model=WarningOut, summary="研判办结 Record the conclusion"
)
def close(
    request: Request,
    principal: Staff,
    body: CloseIn,
    warning_id: int = Path(ge=1, le=2**31 - 1),
) -> JSONResponse:
    def produce(session: Session) -> tuple[int, Any]:
        found = {
            w.id: (w, c, u)
            for w, c, u in warnings_within(session, path=_within(principal), status=None)
        }
        if warning_id not in found:
            raise NotFound(f"no early warning {warning_id}", f"预警 {warning_id} 不存在")
        warning = close_warning(
            session, warning_id=warning_id, actor=principal, conclusion=body.conclusion
        )
        _, case, street = found[warning_id]
        return 200, _out(warning, case, street)

    return run_write(request, principal, body, produce)
