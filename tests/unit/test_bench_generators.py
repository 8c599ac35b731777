"""The bench's city generators write rows straight into the tables (bulk inserts, no
ORM), so a column the tables make required must be in their column lists, or the bench
sections built on them fail with an IntegrityError: the escalation and export sections
did, unnoticed, after cases gained ``held_for_assessment``, ``helper_ids`` and
``confidential``."""

from __future__ import annotations

from sqlalchemy import Engine

from bench import citygen, pagegen
from models.tables import metadata


def _required(table: str) -> set[str]:
    return {
        column.name
        for column in metadata.tables[table].columns
        if not column.nullable and column.server_default is None and not column.primary_key
    }


def test_the_escalation_city_writes_every_required_column() -> None:
    for table, columns in (("cases", citygen.CASE_COLUMNS), ("case_event", citygen.EVENT_COLUMNS)):
        assert _required(table) <= set(columns), table


def test_the_pages_city_writes_every_required_column(engine: Engine) -> None:
    assert pagegen.missing_columns(engine) == {}
