"""Machine triage of a case, and a person's word on it.

* :func:`classify_case` (called by triage) — the active model's reading of the text is
  kept as the case's :class:`TriageSuggestion`. A category or priority a person chose
  (``*_locked``) stands on every channel; where the model disagrees with a staff
  member's choice, that is recorded as a correction. Below
  ``settings.triage_confidence_threshold`` the case is held for a person (研判) unless
  it is an emergency (danger is never left waiting on a queue).
* :func:`assess_risk` (called by triage once the case has its unit) — the early-warning
  level from the text, people, related cases, repeat complainants and spread; a
  warning opens the street's assessment task (models.warning).
* :func:`set_classification` — a person sets the category or priority of a case
  (confirming a held case releases it to routing); a change from the machine's
  suggestion is a correction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from models import clock, lifecycle, risk
from models.assessment import Assessment, assess_with
from models.case import Case
from models.deadlines import compute_deadlines
from models.enums import Category, Channel, Priority, UnitLevel
from models.errors import GuardFailed
from models.lifecycle import Actor
from models.routing import Directory
from models.settings import get_settings
from models.triage_learning import active_model, record_correction
from models.triage_tables import RiskWarning, TriageSuggestion
from models.unit import Unit
from models.warning import open_warning, warning_context


def _staff_or_machine(
    session: Session, case: Case, field: str, machine_value: str, staff_choice: bool
) -> bool | None:
    """Where staff locked ``field`` (category or priority) their choice stands: answers
    whether the model disagrees, and keeps a staff choice as a correction to learn from.
    Unlocked, the model's value is taken and the answer is None."""
    if not getattr(case, f"{field}_locked"):
        setattr(case, field, type(getattr(case, field))(machine_value))
        return None
    assert case.id is not None
    chosen = getattr(case, field).value
    if staff_choice:
        record_correction(
            session,
            case_id=case.id,
            field=field,
            machine_value=machine_value,
            chosen_value=chosen,
            source="intake",
            staff_id=case.created_by_id,
        )
    return bool(chosen != machine_value)


def classify_case(session: Session, *, case: Case) -> Assessment:
    assert case.id is not None
    found = assess_with(
        active_model(session), case.description, people_affected=case.people_affected
    )
    suggestion = session.get(TriageSuggestion, case.id) or TriageSuggestion(
        case_id=case.id,
        category=Category(found.category),
        priority=Priority(found.priority),
        confidence=0.0,
        created_at=clock.now(),
    )
    suggestion.category = Category(found.category)
    suggestion.priority = Priority(found.priority)
    suggestion.confidence = round(found.confidence, 4)
    suggestion.top = [{"category": c, "probability": round(p, 4)} for c, p in found.top]
    suggestion.risk = found.risk.value
    suggestion.reasons = list(found.reasons)
    suggestion.model_version = found.model_version
    staff_choice = case.created_by_id is not None and case.channel != Channel.OPEN311
    category = _staff_or_machine(session, case, "category", found.category, staff_choice)
    priority = _staff_or_machine(session, case, "priority", found.priority, staff_choice)
    if category is not None:
        suggestion.disagrees = category
    suggestion.disagrees = suggestion.disagrees or bool(priority)
    case.held_for_assessment = (
        not case.category_locked
        and found.confidence < get_settings().triage_confidence_threshold
        and case.priority != Priority.EMERGENCY
    )
    session.add(suggestion)
    return found


def intake_desk(directory: Directory, place: Unit, unit: Unit) -> Unit:
    """Where a held case waits: the community of its place (its intake staff)."""
    return directory.ancestor_at(place, UnitLevel.COMMUNITY) or unit


@dataclass(frozen=True)
class RiskOutcome:
    level: risk.WarningLevel
    warning: RiskWarning | None


def assess_risk(
    session: Session, *, case: Case, found: Assessment, cluster_warning: bool
) -> RiskOutcome:
    context = warning_context(session, case=case)
    people = max(case.people_affected, risk.people_mentioned(case.description))
    warning = risk.warning_level(
        list(found.unrest),
        people=people,
        related_recent=context.related_recent,
        repeat_complainant=context.repeat_complainant,
        communities=context.communities,
    )
    if cluster_warning and warning.level == risk.WarningLevel.NONE:
        # Many complaints against one source within the window: at least a yellow.
        warning = risk.Warning(
            risk.WarningLevel.YELLOW,
            warning.score,
            (*warning.reasons, "同源投诉聚集 / a cluster of complaints against one source"),
        )
    case.risk_level = None if warning.level == risk.WarningLevel.NONE else warning.level.value
    return RiskOutcome(warning.level, open_warning(session, case=case, warning=warning))


def set_classification(
    session: Session,
    *,
    case_id: int,
    actor: Actor,
    category: Category | None = None,
    priority: Priority | None = None,
    expected_version: int | None = None,
) -> Case:
    """A person's category and/or priority for a case; they stand from now on. A case
    held for assessment is released: routed again for its category, then assigned."""
    step = lifecycle.step(session, case_id=case_id, actor=actor, expected_version=expected_version)
    case = step.case
    assert case.id is not None
    if category is None and priority is None and not case.held_for_assessment:
        raise GuardFailed("nothing to change", "没有需要修改的内容")
    if not case.is_open:
        raise GuardFailed(f"case {case.number} is closed", f"案件 {case.number} 已结束")
    suggestion = session.get(TriageSuggestion, case.id)
    source = "assessment" if case.held_for_assessment else "reclassified"
    before = {"category": case.category.value, "priority": case.priority.value}
    if category is not None:
        case.category, case.category_locked = category, True
    if priority is not None:
        case.priority, case.priority_locked = priority, True
    if suggestion is not None:
        for field, value in (("category", category), ("priority", priority)):
            if value is not None:
                record_correction(
                    session,
                    case_id=case.id,
                    field=field,
                    machine_value=getattr(suggestion, field).value,
                    chosen_value=value.value,
                    source=source,
                    staff_id=actor.staff_id,
                )
        suggestion.disagrees = (
            suggestion.category != case.category or suggestion.priority != case.priority
        )
        session.add(suggestion)
    released = case.held_for_assessment
    if released:
        _route_for_category(session, case)
        case.held_for_assessment = False
    step.record(
        "assessed" if released else "reclassified",
        {
            "category": case.category.value,
            "priority": case.priority.value,
            "before": before,
            "released": released,
        },
    )
    return case


def _route_for_category(session: Session, case: Case) -> None:
    """The handling unit and time limits for the category a person confirmed (limits
    counted from receipt, as at triage)."""
    place_id = case.place_unit_id or case.unit_id
    place = session.get(Unit, place_id) if place_id else None
    if place is None:
        return
    directory = Directory.load_branch(session, place)
    unit = directory.handling_unit_for(place, case.category, group=case.is_group)
    policy = directory.policy(category=case.category, priority=case.priority, level=unit.level)
    received = case.received_at or case.created_at
    deadlines = compute_deadlines(policy, start=clock.ensure_utc(received))
    case.set_handling_unit(unit)
    case.set_time_limits(deadlines)
