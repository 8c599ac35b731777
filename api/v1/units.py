"""Staff REST: the unit tree (and the paired agencies beside it)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, select

from api.deps import DBRead, Staff
from models.enums import UnitLevel
from models.unit import Unit, UnitPublic

router = APIRouter(tags=["units 单位"])


@router.get(
    "/units",
    response_model=list[UnitPublic],
    summary="单位树 The unit tree",
    description=(
        "Every unit as `code`, `name` (zh-CN), `name_en`, `level` (`city`, `district`, "
        "`street`, `community`, `compound`, `building`) and `parent_code`. Paired agencies "
        "(结对部门) are listed too, with level `agency` and the district they belong to as "
        "`parent_code`; filter with `level` to get only one level."
    ),
)
def list_units(
    session: DBRead, _principal: Staff, level: UnitLevel | None = None
) -> list[UnitPublic]:
    stmt = select(Unit).order_by(col(Unit.path))
    if level is not None:
        stmt = stmt.where(Unit.level == level)
    units = session.exec(stmt).all()
    by_id = {u.id: u.code for u in session.exec(select(Unit)).all()}
    return [
        UnitPublic(
            code=u.code,
            name=u.name_zh,
            name_en=u.name_en,
            level=u.level,
            parent_code=by_id.get(u.parent_id) if u.parent_id is not None else None,
        )
        for u in units
    ]
