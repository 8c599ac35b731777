"""Confidential cases (不公开, 人民调解法 第二十三条、第二十四条): who may read their details.

A case is confidential when it is a family or marriage dispute (from intake, and when
triage moves it there), or when a party asks for it (recorded by staff with the reason).
Of a confidential case:

* the public (Open311 and every public answer) sees at most its category and status:
  it is absent from every listing, and its own page carries no description;
* staff outside the case's unit see no details (description, parties, minutes,
  agreement, documents): only the handling unit's own staff, the assignee, the named
  mediators and the worker who recorded it read them.

Marking is one-way: once a party asked, nothing un-marks a case.
"""

from __future__ import annotations

from sqlmodel import Session

from models import lifecycle
from models.access import AccessFacts
from models.case import Case
from models.enums import Category
from models.errors import ConflictError, FieldProblem, ValidationError
from models.lifecycle import Actor

CONFIDENTIAL_CATEGORIES = frozenset({Category.FAMILY})
HIDDEN_ZH = "（不公开）"
HIDDEN_EN = "(confidential)"
HIDDEN = f"{HIDDEN_ZH} {HIDDEN_EN}"


def confidential_by_default(category: Category) -> bool:
    return category in CONFIDENTIAL_CATEGORIES


def public_may_see_details(case: Case) -> bool:
    """Whether a public answer may carry the case's description and place."""
    return not case.confidential


def staff_may_see_details(
    case: AccessFacts,
    *,
    staff_id: int | None,
    unit_id: int | None,
    is_named_mediator: bool = False,
) -> bool:
    """Whether a staff member may read a case's details (always, unless confidential)."""
    if not case.confidential:
        return True
    if staff_id is None:
        return False
    if is_named_mediator or staff_id in (case.assignee_id, case.created_by_id):
        return True
    return unit_id is not None and unit_id == case.unit_id


def mark_confidential(
    session: Session,
    *,
    case_id: int,
    reason: str,
    actor: Actor,
    expected_version: int | None,
) -> Case:
    """Mark a case confidential (a party asked for it); the reason goes on the timeline."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    lifecycle.require_staff(actor, "marking a case confidential", "设置不公开")
    text = (reason or "").strip()
    if not text or len(text) > 500:
        raise ValidationError(
            "reason: say who asked and why (1 to 500 characters)",
            "原因：请写明谁提出及理由（1 至 500 字）",
            problems=[FieldProblem("reason", "请填写原因（500 字以内）", "1 to 500 characters")],
        )
    if case.confidential:
        raise ConflictError(
            f"case {case.number} is already confidential", f"案件 {case.number} 已设为不公开"
        )
    case.confidential = True
    step.record("marked_confidential", {"reason": text})
    return case
