"""Retention tasks (PIPL): anonymise the cases that ended before the retention period,
one committed batch at a time, and prune the sign-in audit (:mod:`models.retention`)."""

from __future__ import annotations

import asyncio

from prefect import task
from prefect.cache_policies import NO_CACHE

from models import clock, retention
from models.db import get_engine, write_session
from models.settings import get_settings


def _anonymise_all() -> int:
    return retention.anonymise_in_batches(
        get_engine(), older_than_days=get_settings().retention_days, now=clock.now()
    )


def _prune_sign_ins() -> int:
    with write_session() as session:
        return retention.prune_sign_in_attempts(
            session, older_than_days=get_settings().sign_in_audit_days, now=clock.now()
        )


@task(name="anonymise_expired_cases", persist_result=False, cache_policy=NO_CACHE, retries=2)
async def anonymise_expired_cases() -> int:
    """How many cases were anonymised (each batch committed: a retry goes on from there)."""
    return await asyncio.to_thread(_anonymise_all)


@task(name="prune_sign_in_audit", persist_result=False, cache_policy=NO_CACHE, retries=2)
async def prune_sign_in_audit() -> int:
    """How many sign-in attempts were deleted."""
    return await asyncio.to_thread(_prune_sign_ins)
