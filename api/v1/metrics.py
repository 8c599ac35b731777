"""Staff REST: the three rates per unit, backlog per unit and overdue cases per level,
always within the caller's subtree (admins: the whole city)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from fastapi import APIRouter

from api.deps import DBRead, Staff
from models import clock, metrics
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
    description="Cases created from `since` (inclusive) to `until` (inclusive), local dates; "
    "default: the last 30 days. At most 366 days.",
)
def rates(
    session: DBRead,
    principal: Staff,
    since: date | None = None,
    until: date | None = None,
    level: UnitLevel = UnitLevel.COMMUNITY,
) -> list[metrics.UnitRates]:
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


__all__ = ["router"]
