"""Prefect tasks that read the supervisors' figures (no personal data in any of them)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterable
from datetime import date, datetime
from enum import Enum
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from models import metrics
from models.db import read_session
from models.month_problem import get_month_problem


def as_row(item: Any) -> dict[str, Any]:
    """A metrics result (dataclass, pydantic model or tuple) as a flat, printable row."""
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        raw: dict[str, Any] = dataclasses.asdict(item)
    elif isinstance(item, BaseModel):
        raw = item.model_dump()
    elif isinstance(item, dict):
        raw = dict(item)
    else:
        raw = {"value": item}
    row: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, float):
            value = round(value, 4)
        elif isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        row[key] = value
    return row


def _read_rows(query: Callable[..., Iterable[Any]], **when: Any) -> list[dict[str, Any]]:
    """``query(session, **when)`` in a read-only session, each result as a row."""
    with read_session() as session:
        return [as_row(r) for r in query(session, **when)]


@task(name="read_monthly_ranking", persist_result=False, cache_policy=NO_CACHE)
async def read_monthly_ranking(month_start: date) -> list[dict[str, Any]]:
    """月度排名: communities and paired agencies of the calendar month, ranked."""
    return await asyncio.to_thread(_read_rows, metrics.monthly_ranking, month=month_start)


@task(name="read_overdue_by_level", persist_result=False, cache_policy=NO_CACHE)
async def read_overdue_by_level(now: datetime) -> list[dict[str, Any]]:
    return await asyncio.to_thread(_read_rows, metrics.overdue_by_level, now=now)


@task(name="read_clusters", persist_result=False, cache_policy=NO_CACHE)
async def read_clusters(since: datetime) -> list[dict[str, Any]]:
    return await asyncio.to_thread(_read_rows, metrics.clusters, since=since)


@task(name="read_problem_of_the_month", persist_result=False, cache_policy=NO_CACHE)
async def read_problem_of_the_month(month_start: date) -> dict[str, Any] | None:
    def run() -> dict[str, Any] | None:
        with read_session() as session:
            found = metrics.problem_of_the_month(session, month_start=month_start)
            decided = get_month_problem(session, month=f"{month_start:%Y-%m}")
            row: dict[str, Any] = as_row(found) if found is not None else {}
            if decided is not None:
                row |= {
                    "decided_title": decided.title,
                    "lead_unit": decided.lead_unit_name,
                    "plan": decided.plan,
                }
            return row or None

    return await asyncio.to_thread(run)


@task(name="write_monthly_report", persist_result=False, cache_policy=NO_CACHE, retries=2)
async def write_monthly_report(month: str) -> str:
    """Build the city-wide monthly report of ``month`` (YYYY-MM) and keep it; answers the
    file's name (no personal data anywhere in it)."""
    from models import clock, monthly_report

    def run() -> str:
        with read_session() as session:
            report = monthly_report.build(session, monthly_report.month_of(month), now=clock.now())
        return monthly_report.store(monthly_report.to_xlsx(report), month).name

    return await asyncio.to_thread(run)
