"""Imports every table so that ``SQLModel.metadata`` is complete (Alembic, tests)."""

from __future__ import annotations

from sqlmodel import SQLModel

from models.case import Case, CaseLink, CaseNumberCounter
from models.event import CaseEvent, Outbox
from models.follow_up import FollowUp
from models.idempotency import IdempotencyRecord
from models.mediation import Agreement, AgreementTerm, MediationSession
from models.notification import Notification
from models.party import Party
from models.policy import TimeLimitPolicy
from models.staff import Staff
from models.triage_tables import (
    RiskWarning,
    TriageCorrection,
    TriageModelVersion,
    TriageSuggestion,
)
from models.unit import Pairing, Unit

metadata = SQLModel.metadata

__all__ = [
    "Agreement",
    "AgreementTerm",
    "Case",
    "CaseEvent",
    "CaseLink",
    "CaseNumberCounter",
    "FollowUp",
    "IdempotencyRecord",
    "MediationSession",
    "Notification",
    "Outbox",
    "Pairing",
    "Party",
    "RiskWarning",
    "Staff",
    "TimeLimitPolicy",
    "TriageCorrection",
    "TriageModelVersion",
    "TriageSuggestion",
    "Unit",
    "metadata",
]
