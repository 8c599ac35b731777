"""The case page's People's Mediation Law parts: acceptance review and its guidance, the
named mediators, confidentiality, the documents to print (PDF) or edit (DOCX), and the
attachments (scans, photos). Documents and attachments are for readers entitled to the
case's personal data only (:func:`entitled`); their pages are in
:mod:`api.web.case_files`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from api.web.queries import CaseDetail
from models import actions, respondent
from models.acceptance import ROUTE_NAMES, latest_review
from models.access import Principal
from models.attachments import KINDS as ATTACHMENT_KINDS
from models.case import Case
from models.documents import render
from models.documents.context import records_of
from models.enums import NotAcceptedReason, StaffRole
from models.mediators import mediators_of
from models.settings import get_settings
from models.staff import Staff, display_names
from models.unit import Unit, within_path


def is_named(session: Session, user: Principal, case: Case) -> bool:
    return actions.is_named_mediator(session, user, case)


# One rule each, in the domain (the REST answers use the same).
details_visible = actions.details_visible
entitled = actions.personal_data_visible


def _candidates(session: Session, case: Case) -> list[tuple[Staff, Unit]]:
    """Active mediators the committee may name, each with their unit (a name alone does
    not tell the community's mediator from the street's): of the handling unit's branch
    (its subtree and the units above it), picked by the database: every mediator of the
    city with their unit, read to keep a few, was a tenth of the case page's time."""
    path = case.unit_path or ""
    if not path:
        return []
    above = [path[: i + 1] for i, ch in enumerate(path) if ch == "/"]
    return list(
        session.exec(
            select(Staff, Unit)
            .join(Unit, col(Unit.id) == col(Staff.unit_id))
            .where(Staff.role == StaffRole.MEDIATOR, col(Staff.active).is_(True))
            .where(or_(within_path(col(Unit.path), path), col(Unit.path).in_(above)))
            .order_by(col(Unit.path), col(Staff.id))
            .limit(50)
        ).all()
    )


def mediation_context(
    session: Session, user: Principal, case: Case, detail: CaseDetail
) -> dict[str, Any]:
    """The page's mediation parts, from the rows the page has read already (``detail``)
    and the few more they need."""
    assert case.id is not None
    review = latest_review(session, case_id=case.id)
    rows = mediators_of(session, case_id=case.id, serving=False)
    names = display_names(session, (m.staff_id for m in rows))
    allowed = entitled(session, user, case)
    records = (
        records_of(
            session,
            case,
            sessions=detail.sessions,
            latest=detail.agreement,
            follow_ups=detail.follow_ups,
            reviewed=review is not None,
        )
        if allowed
        else None
    )
    return {
        "review": review,
        "guidance": (review.guidance if review and not review.accepted else None)
        or (case.outcome_note if case.status.value in ("mediation_failed", "referred") else None),
        "mediators": [(m, names.get(m.staff_id, str(m.staff_id))) for m in rows],
        "mediator_candidates": _candidates(session, case),
        "not_accepted_reasons": list(NotAcceptedReason),
        "routes": ROUTE_NAMES,
        "details": details_visible(session, user, case),
        "documents": render.available(records) if records else [],
        "attachments": records.attachments if records else [],
        "attachment_kinds": ATTACHMENT_KINDS,
        "documents_allowed": allowed,
        "max_upload_mb": get_settings().attachment_max_bytes // (1024 * 1024),
        # What the parties answered through their own page or link (times, refusals).
        "party_answers": respondent.answers_of(detail.parties, detail.events),
        "mediation_blocked": respondent.blocked(case, detail.parties),
    }
