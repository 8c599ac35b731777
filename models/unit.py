"""The unit tree (city > district > street > community > compound > building) and
the paired agencies of communities."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, UniqueConstraint, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import JSON, Column, Field, Session, SQLModel, col, select

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


def column_by_code(session: Session, codes: set[str], column: Any) -> dict[str, Any]:
    """One column of the units with these codes, by code, in one statement (none when
    ``codes`` is empty: an empty ``IN ()`` is still a statement)."""
    if not codes:
        return {}
    return dict(session.exec(select(Unit.code, column).where(col(Unit.code).in_(codes))).all())


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


class _WithinPath(FunctionElement[bool]):
    """``path`` lies in a subtree; compiled per database (:func:`within_path`)."""

    type = Boolean()
    inherit_cache = True
    name = "within_path"
    _is_implicitly_boolean = True  # a condition: no "= 1" after it on SQLite


def within_path(column: Any, prefix: str) -> ColumnElement[bool]:
    """``column`` (a unit path) is ``prefix`` or under it.

    SQLite: a range, ``prefix <= path < prefix with its last character's successor``
    (paths end with ``/``, so the range is exactly the subtree), read from an index on
    the path; ``LIKE prefix || '%'`` is read from none (SQLite's LIKE ignores case).
    Elsewhere ``LIKE`` as before (PostgreSQL orders text by the database's collation,
    where such a range would not be the subtree)."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    pattern = prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
    return _WithinPath(column, literal(prefix), literal(upper), literal(pattern))


@compiles(_WithinPath)
def _within_like(element: _WithinPath, compiler: Any, **kw: Any) -> str:
    column, _prefix, _upper, pattern = element.clauses
    return f"({compiler.process(column, **kw)} LIKE {compiler.process(pattern, **kw)} ESCAPE '/')"


@compiles(_WithinPath, "sqlite")
def _within_range(element: _WithinPath, compiler: Any, **kw: Any) -> str:
    column, prefix, upper, _pattern = element.clauses
    path = compiler.process(column, **kw)
    return (
        f"({path} >= {compiler.process(prefix, **kw)} AND {path} < {compiler.process(upper, **kw)})"
    )
