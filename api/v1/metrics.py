"""Staff REST: the three rates per unit and the monthly ranking, backlog per unit,
overdue cases per level and the problem of the month, always within the caller's
subtree (admins: the whole city). Definitions: :mod:`models.metrics`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from api.deps import DBRead, Staff, Writer
from api.v1.common import run_write
from models import clock, metrics, month_problem, monthly_report
from models.access import Principal
from models.enums import UnitLevel
from models.errors import ValidationError

router = APIRouter(prefix="/metrics", tags=["metrics 三率与积压"])

LEVELS = frozenset(
    {
        UnitLevel.DISTRICT,
        UnitLevel.STREET,
        UnitLevel.COMMUNITY,
        UnitLevel.COMPOUND,
        UnitLevel.AGENCY,
    }
)


def _within(principal: Principal) -> str | None:
    return None if principal.is_admin else principal.unit_path


def _local_midnight(day: date) -> datetime:
    return clock.ensure_utc(datetime.combine(day, time(0), tzinfo=clock.SHANGHAI))


def _level(level: UnitLevel) -> UnitLevel:
    if level not in LEVELS:
        raise ValidationError(
            f"level: one of {', '.join(sorted(v.value for v in LEVELS))}",
            "level：应为区、街道、社区、小区或结对部门",
        )
    return level


@router.get(
    "/rates",
    response_model=list[metrics.UnitRates],
    summary="三率 Response, resolution and satisfaction rates per unit",
    description="Cases decided from `since` (inclusive) to `until` (inclusive), local dates; "
    "default: the last 30 days, at most 366 days; or a calendar `month` (YYYY-MM). Each "
    "rate comes with the number of cases it was worked out from.",
)
def rates(
    session: DBRead,
    principal: Staff,
    since: clock.Day | None = None,
    until: clock.Day | None = None,
    level: UnitLevel = UnitLevel.COMMUNITY,
    month: str | None = None,
) -> list[metrics.UnitRates]:
    if month is not None:
        start, following = metrics.month_range(_month(month))
        return metrics.unit_rates(
            session,
            since=start,
            until=following,
            level=_level(level),
            within_path=_within(principal),
        )
    today = clock.to_local(clock.now()).date()
    last = until or today
    first = since or (last - timedelta(days=29))
    if first > last or (last - first).days > 366:
        raise ValidationError(
            "since must not be after until, and at most 366 days before it",
            "since 不能晚于 until，且相隔不超过 366 天",
        )
    return metrics.unit_rates(
        session,
        since=_local_midnight(first),
        until=_local_midnight(last + timedelta(days=1)),
        level=_level(level),
        within_path=_within(principal),
    )


@router.get(
    "/backlog",
    response_model=list[metrics.UnitBacklog],
    summary="积压 Open, in-mediation, follow-up and overdue cases per unit",
)
def backlog(
    session: DBRead, principal: Staff, level: UnitLevel = UnitLevel.COMMUNITY
) -> list[metrics.UnitBacklog]:
    return metrics.backlog_by_unit(
        session, within_path=_within(principal), level=_level(level), now=clock.now()
    )


@router.get(
    "/overdue",
    response_model=list[metrics.LevelCount],
    summary="超期 Overdue open cases per level",
)
def overdue(session: DBRead, principal: Staff) -> list[metrics.LevelCount]:
    return metrics.overdue_by_level(session, now=clock.now(), within_path=_within(principal))


def _month(value: str) -> date:
    return monthly_report.month_of(value)


def _this_month() -> str:
    return clock.to_local(clock.now()).strftime("%Y-%m")


@router.get(
    "/ranking",
    response_model=list[metrics.UnitRates],
    summary="月度排名 Monthly ranking of communities and paired agencies",
    description="The calendar month's three rates of every community and paired agency in "
    "reach, ranked together on the composite score (weights in the settings).",
)
def ranking(session: DBRead, principal: Staff, month: str | None = None) -> list[metrics.UnitRates]:
    return metrics.monthly_ranking(
        session, month=_month(month or _this_month()), within_path=_within(principal)
    )


@router.get(
    "/problem-of-the-month",
    summary="每月一题 The problem of the month: the candidate and the decision",
)
def problem_of_the_month(
    session: DBRead, principal: Staff, month: str | None = None
) -> dict[str, Any]:
    chosen = month or _this_month()
    candidate = metrics.problem_of_the_month(
        session, month_start=_month(chosen), within_path=_within(principal)
    )
    decided = month_problem.get_month_problem(session, month=chosen)
    return {
        "month": chosen,
        "candidate": candidate,
        "decided": decided.model_dump(mode="json") if decided else None,
    }


@router.put(
    "/problem-of-the-month",
    response_model=month_problem.MonthProblemPublic,
    summary="确定每月一题 Set the problem of the month (supervisors)",
    description="Name the month's problem, the lead unit (牵头单位) and the action plan. "
    "Supervisors and administrators; a second call for the same month replaces the first.",
)
def set_problem_of_the_month(
    request: Request, body: month_problem.MonthProblemSet, principal: Writer
) -> JSONResponse:
    def produce(session: Session) -> tuple[int, Any]:
        candidate = metrics.problem_of_the_month(
            session, month_start=_month(body.month), within_path=_within(principal)
        )
        count = candidate.count if candidate and candidate.category == body.category else 0
        row = month_problem.set_month_problem(session, data=body, actor=principal, case_count=count)
        return 200, row.model_dump(mode="json")

    return run_write(request, principal, body, produce)


__all__ = ["router"]
