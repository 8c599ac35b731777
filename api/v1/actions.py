"""Staff REST: the actions on a case. Each takes the case ``version`` the caller last saw
(body field ``version`` or ``If-Match``); a stale one answers 409 and changes nothing.

Who may do what (beyond reach, and the state machine's own guards):

==============================  ===========================================
action                          roles
==============================  ===========================================
consent, mediation/start,       mediator, supervisor, admin, or the case's
mediation/extend, sessions,     assignee (recording sessions and signing: only a
agreement, failure, acceptance, mediator named on the case, see models.mediators)
mediators, court-confirmation
follow-ups, resolve, withdraw,  any staff role that may write (not
reopen, reassign, escalate,     instructor or volunteer)
refer, merge, contact, parties,
confidential, attachments,
classification, assessment
(held cases only)
follow-ups only                 return visitor (回访员)
==============================  ===========================================
"""

from __future__ import annotations

from api.security import Principal
from models.case import Case
from models.enums import StaffRole
from models.lifecycle import TRANSITIONS

# State-machine verb -> the action (path under /api/v1/cases/{id}/) that performs it.
VERB_ACTIONS: dict[str, str] = {
    "consent_recorded": "consent",
    "mediation_started": "mediation/start",
    "session_recorded": "sessions",
    "agreement_signed": "agreement",
    "mediation_failed": "failure",
    "follow_up_recorded": "follow-ups",
    "assigned": "reassign",
    "escalated": "escalate",
    "referred": "refer",
    "withdrawn": "withdraw",
    "reopened": "reopen",
    "follow_up_due": "resolve",
    "mediation_extended": "mediation/extend",
    "merged": "merge",
    "acceptance_reviewed": "acceptance",
    "not_accepted": "acceptance",
    "mediation_refused": "consent",
    "mediators_named": "mediators",
    "mediator_recused": "mediators/recuse",
    "mediator_replaced": "mediators/replace",
    "party_added": "parties",
    "marked_confidential": "confidential",
    "court_confirmation_recorded": "court-confirmation",
    "attachment_added": "attachments",
    "assessed": "assessment",
    "reclassified": "classification",
    "contacted": "contact",
}

MEDIATION_ACTIONS = frozenset(
    {
        "consent",
        "mediation/start",
        "mediation/extend",
        "sessions",
        "agreement",
        "failure",
        "acceptance",
        "mediators",
        "mediators/recuse",
        "mediators/replace",
        "court-confirmation",
    }
)
MEDIATION_ROLES = frozenset(
    {StaffRole.MEDIATOR.value, StaffRole.SUPERVISOR.value, StaffRole.ADMIN.value}
)


def may_act(principal: Principal, case: Case, action: str) -> bool:
    if not principal.can_write:
        return False
    if principal.role == StaffRole.RETURN_VISITOR.value:
        return action == "follow-ups"
    if action in MEDIATION_ACTIONS:
        return principal.role in MEDIATION_ROLES or (
            case.assignee_id is not None and case.assignee_id == principal.staff_id
        )
    return True


def allowed_actions(case: Case, principal: Principal) -> list[str]:
    """Actions the state machine allows from the case's status that this caller may
    take (guards such as "consent recorded" are checked when the action is sent)."""
    actions: list[str] = []
    for verb, transition in TRANSITIONS.items():
        action = VERB_ACTIONS.get(verb)
        if action is None or case.status not in transition.sources:
            continue
        if transition.roles and "staff" not in transition.roles:
            continue
        if action == "assessment" and not case.held_for_assessment:
            continue  # nothing to confirm: the case is not waiting for a person
        if verb == "follow_up_due" and case.status.value != "assigned":
            continue  # entering follow-up after an agreement or failure is the workflow's
        if may_act(principal, case, action) and action not in actions:
            actions.append(action)
    return actions
