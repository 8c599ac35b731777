"""Imports every table so that ``SQLModel.metadata`` is complete (Alembic, tests)."""

from __future__ import annotations

from sqlmodel import SQLModel

from models.acceptance import AcceptanceReview
from models.admin_log import AdminEvent
from models.attachments import Attachment
from models.breaches import LimitBreach
from models.case import Case, CaseLink, CaseNumberCounter
from models.case_text import CaseSearch
from models.contact import CaseContact
from models.decisions import RateDecision
from models.documents.audit import DocumentDownload
from models.event import CaseEvent, Outbox
from models.extension import Extension
from models.follow_up import FollowUp
from models.helper import CaseHelper, HelperTask
from models.idempotency import IdempotencyRecord
from models.login import SignInAttempt
from models.mediation import Agreement, AgreementTerm, MediationSession
from models.mediators import CaseMediator
from models.month_problem import MonthProblem
from models.notification import Notification
from models.party import Party, PartyConsent
from models.policy import PolicySet, TimeLimitPolicy
from models.referral import Referral
from models.resident_tables import ResidentLink, ResidentLock, ResidentPhoto, ResidentSession
from models.sign_in import SignInLink
from models.simulation_run import SimulationRun
from models.staff import Staff
from models.text_numbers import CaseTextNumber
from models.triage_tables import (
    RiskWarning,
    TriageCorrection,
    TriageModelVersion,
    TriageSuggestion,
)
from models.unit import Pairing, Unit
from models.web_sessions import WebSession

metadata = SQLModel.metadata

__all__ = [
    "AcceptanceReview",
    "AdminEvent",
    "Agreement",
    "AgreementTerm",
    "Attachment",
    "Case",
    "CaseContact",
    "CaseEvent",
    "CaseHelper",
    "CaseLink",
    "CaseMediator",
    "CaseNumberCounter",
    "CaseSearch",
    "CaseTextNumber",
    "DocumentDownload",
    "Extension",
    "FollowUp",
    "HelperTask",
    "IdempotencyRecord",
    "LimitBreach",
    "MediationSession",
    "MonthProblem",
    "Notification",
    "Outbox",
    "Pairing",
    "Party",
    "PartyConsent",
    "PolicySet",
    "RateDecision",
    "Referral",
    "ResidentLink",
    "ResidentLock",
    "ResidentPhoto",
    "ResidentSession",
    "RiskWarning",
    "SignInAttempt",
    "SignInLink",
    "SimulationRun",
    "Staff",
    "TimeLimitPolicy",
    "TriageCorrection",
    "TriageModelVersion",
    "TriageSuggestion",
    "Unit",
    "WebSession",
    "metadata",
]
