"""Prefect tasks of machine triage: retrain the classifier, notify of danger and
warnings (thin wrappers over models.triage_learning and tasks.notifier)."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from models.classifier_train import load_corpus, sample
from models.db import read_session, write_session
from models.triage_learning import retrain_if_due, version_summary
from models.warning import mark_notified
from tasks.notifier import deliver, risk_messages
from tasks.notify import notify_task


def _retrain(sample_per_category: int) -> dict[str, Any]:
    corpus = load_corpus()
    if sample_per_category:
        corpus = sample(corpus, sample_per_category)
    with write_session() as session:
        outcome = retrain_if_due(session, corpus=corpus)
        if outcome.version is None:
            return {"due": False, "new_corrections": outcome.new_corrections}
        assert outcome.report is not None
        return {
            "due": True,
            "new_corrections": outcome.new_corrections,
            **version_summary(outcome.version),
            "labels": outcome.report.labels,
            "confusion": outcome.report.confusion,
        }


@task(name="retrain_triage", persist_result=False, cache_policy=NO_CACHE, retries=1)
async def retrain_triage(sample_per_category: int = 0) -> dict[str, Any]:
    """Retrain when enough corrections arrived; the summary has no personal data."""
    return await asyncio.to_thread(_retrain, sample_per_category)


def _notify_risk(case_id: int) -> list[str]:
    with read_session() as session:
        messages = risk_messages(session, case_id=case_id)
    sent = [m.key for m in messages if deliver(m) == "sent"]
    if any(m.kind == "risk_warning" for m in messages):
        with write_session() as session:
            mark_notified(session, case_id=case_id)
    return sent


@notify_task("notify_risk")
async def notify_risk(case_id: int) -> list[str]:
    """Send the emergency notices and the warning's notice a case owes (each once)."""
    return await asyncio.to_thread(_notify_risk, case_id)
