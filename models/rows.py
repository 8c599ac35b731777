"""The rows that hang off one parent (a case's contacts, breaches, visits, an agreement's
terms), in the order a page lists them: one query shape written once."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import inspect as sa_inspect
from sqlmodel import Session, SQLModel, col, select

M = TypeVar("M", bound=SQLModel)


def rows_of(session: Session, model: type[M], where: Any, *order: Any) -> list[M]:
    """Every ``model`` row that ``where`` picks, sorted by the ``order`` columns and then
    by the primary key, so that rows of the same moment keep the order they were
    written in."""
    last = sa_inspect(model).primary_key
    return list(session.exec(select(model).where(where).order_by(*map(col, order), *last)).all())
