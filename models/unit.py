"""The unit tree (city > district > street > community > compound > building) and
the paired agencies of communities."""

from __future__ import annotations

from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import JSON, Column, Field, Session, SQLModel, select

from models.enums import Category, UnitLevel
from models.types import enum_type


class UnitBase(SQLModel):
    code: str = Field(max_length=32, index=True, unique=True)
    name_zh: str = Field(max_length=100)
    name_en: str = Field(max_length=100)
    level: UnitLevel = Field(index=True, sa_type=enum_type(UnitLevel))
    address: str | None = Field(default=None, max_length=200)
    lat: float | None = None
    lon: float | None = None


class Unit(UnitBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    parent_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    # Materialised path of codes ("/C/D1/S1/CM01/"), so a subtree is one LIKE prefix.
    path: str = Field(max_length=255, index=True)
    # GeoJSON Polygon or MultiPolygon of the unit's area, when the district has one.
    boundary: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )


def unit_by_code(session: Session, code: str) -> Unit | None:
    """The unit with this code (codes are unique), or None: the one look-up of a unit by
    its code, for every service and front end that is given a code; each says in its
    own words what a missing unit means to its caller."""
    return session.exec(select(Unit).where(Unit.code == code)).first()


class UnitPublic(SQLModel):
    code: str
    name: str
    name_en: str
    level: UnitLevel
    parent_code: str | None


class Pairing(SQLModel, table=True):
    """A community paired with a government agency (结对共建) for one category."""

    __table_args__ = (UniqueConstraint("community_id", "category"),)

    id: int | None = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="unit.id", index=True)
    agency_id: int = Field(foreign_key="unit.id", index=True)
    category: Category = Field(sa_type=enum_type(Category))
