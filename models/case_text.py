"""Full-text search of the cases' words (案情检索) without a search server.

A case's description is cut into words by jieba (the triage classifier's dictionary and
domain words, search mode: long words and the shorter words inside them) and the words
are kept, space-separated, in ``case_search.terms``. The text is masked first
(:func:`models.pii.scrub_text`): a phone or ID number typed into the description is
indexed as ``138****8000``, so searching for the number finds nothing.

The index behind the terms is the database's own:

* SQLite: an FTS5 table ``case_search_fts`` over ``case_search`` (external content,
  kept in step by triggers; migration 0003). FTS5's ``unicode61`` tokenizer splits on
  the spaces and keeps each Chinese word whole. The ``trigram`` tokenizer was the
  alternative; it was not chosen because it cannot use its index for a query shorter
  than three characters, and most Chinese words (噪音, 欠薪, 漏水) are two.
* PostgreSQL: a GIN index on ``string_to_array(terms, ' ')``; a query is array
  containment (every word of the query among the case's words). No text-search
  configuration or locale is involved, so Chinese words are compared exactly as jieba
  cut them.

**One writer**: :func:`write`, in the transaction that records or changes the text.
Intake inserts cases with one Core statement (``models.cases.create_case``) and calls it
there; the mapper listeners below call it when a case inserted through the ORM or a
change to a description (retention's anonymisation, anything else) is flushed. Bulk
loaders that bypass both (the benchmark's city) store :func:`terms_of` themselves.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ARRAY,
    DDL,
    ColumnElement,
    Integer,
    Text,
    bindparam,
    column,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapper, attributes
from sqlalchemy.sql import Subquery
from sqlalchemy.sql.selectable import TextualSelect
from sqlmodel import Field, SQLModel, col

from models import pii
from models.case import Case

MAX_QUERY_WORDS = 8


class CaseSearch(SQLModel, table=True):
    """The words of one case's masked description (see the module docstring)."""

    __tablename__ = "case_search"

    case_id: int = Field(foreign_key="cases.id", primary_key=True)
    terms: str = Field(default="", sa_type=Text)


# The index behind ``case_search``, per dialect: run by migration 0003 and, for
# databases made from the tables (tests), right after ``case_search`` is created.
INDEX_DDL: dict[str, tuple[str, ...]] = {
    "sqlite": (
        "CREATE VIRTUAL TABLE IF NOT EXISTS case_search_fts USING fts5("
        "terms, content='case_search', content_rowid='case_id', tokenize='unicode61')",
        "CREATE TRIGGER IF NOT EXISTS case_search_ai AFTER INSERT ON case_search BEGIN "
        "INSERT INTO case_search_fts(rowid, terms) VALUES (new.case_id, new.terms); END",
        "CREATE TRIGGER IF NOT EXISTS case_search_ad AFTER DELETE ON case_search BEGIN "
        "INSERT INTO case_search_fts(case_search_fts, rowid, terms) "
        "VALUES ('delete', old.case_id, old.terms); END",
        "CREATE TRIGGER IF NOT EXISTS case_search_au AFTER UPDATE ON case_search BEGIN "
        "INSERT INTO case_search_fts(case_search_fts, rowid, terms) "
        "VALUES ('delete', old.case_id, old.terms); "
        "INSERT INTO case_search_fts(rowid, terms) VALUES (new.case_id, new.terms); END",
    ),
    "postgresql": (
        "CREATE INDEX IF NOT EXISTS ix_case_search_words ON case_search "
        "USING gin ((string_to_array(terms, ' ')))",
    ),
}
# The tables FTS5 makes for ``case_search_fts`` (not in the metadata: not SQLModel's).
FTS_TABLE_PREFIX = "case_search_fts"
# PostgreSQL's GIN index above: an expression index the metadata does not declare.
PG_WORDS_INDEX = "ix_case_search_words"

for _dialect, _statements in INDEX_DDL.items():
    for _sql in _statements:
        event.listen(
            CaseSearch.__table__,  # type: ignore[attr-defined]
            "after_create",
            DDL(_sql).execute_if(dialect=_dialect),  # type: ignore[no-untyped-call]
        )


def terms_of(description: str | None) -> str:
    """The indexed words of a description: masked, cut, lower case, space-separated."""
    from models.classifier import search_words

    words = search_words(pii.scrub_text(description or ""))
    return " ".join(dict.fromkeys(w.replace('"', "") for w in words))


def query_words(query: str) -> list[tuple[str, ...]]:
    """The words of a search, each with its alternative: the shorter words inside it (a
    description may hold 拖欠 … 工资 where the search says 拖欠工资). The query is *not*
    masked: a phone number stays one word, which no masked description contains."""
    from models.classifier import search_words, words

    out: list[tuple[str, ...]] = []
    for word in dict.fromkeys(w.replace('"', "") for w in words(query)):
        if not word:
            continue
        inner = tuple(w for w in dict.fromkeys(search_words(word)) if w != word)
        out.append((word, *inner))
    return out[:MAX_QUERY_WORDS]


def matching_clause(query: str, dialect: str, scan: bool = False) -> ColumnElement[bool] | None:
    """``Case.id IN (cases holding every word of the query, or the shorter words inside
    it)``; None when the query has no words. ``scan`` (SQLite): written so that the
    database checks the matches while reading the cases in another index's order
    rather than starting from every match (for words in many cases)."""
    found = query_words(query)
    if not found:
        return None
    if dialect == "postgresql":
        return col(Case.id).in_(_pg_ids(found))
    case_id = (col(Case.id) + 0) if scan else col(Case.id)  # + 0: not the id's index
    return case_id.in_(_fts_ids(found))


def matching_rows(query: str, dialect: str) -> Subquery | None:
    """SQLite: the ids of the cases holding the words of ``query`` as a table to join the
    cases to (column ``id``); None on PostgreSQL or when the query has no words.

    Joined, the database reads the matches off the index one at a time and stops at the
    statement's LIMIT; ``Case.id IN (…)`` collects every match first. Counting 1,001 of
    a district's cases holding a word found in 83,000 of 1,000,000 cases: 30 to 80 ms
    through ``IN``, 1 to 2 ms joined."""
    found = query_words(query)
    if not found or dialect == "postgresql":
        return None
    return _fts_ids(found).subquery("words")


def match_count(session: Any, query: str, dialect: str, cap: int) -> int:
    """How many cases hold the words of ``query`` (whoever may see them), counting no
    further than ``cap + 1``; 0 on PostgreSQL, whose planner chooses from its own
    statistics. (Uncapped, counting a word in 83,000 cases took 4 to 16 ms.)"""
    found = query_words(query)
    if not found or dialect == "postgresql":
        return 0
    sql = text(
        "SELECT count(*) FROM (SELECT rowid FROM case_search_fts "
        "WHERE case_search_fts MATCH :match LIMIT :cap)"
    )
    return int(session.execute(sql, {"match": fts_expression(found), "cap": cap + 1}).scalar_one())


def _fts_ids(found: list[tuple[str, ...]]) -> TextualSelect:
    ids = text("SELECT rowid AS id FROM case_search_fts WHERE case_search_fts MATCH :match")
    return ids.bindparams(match=fts_expression(found)).columns(column("id", Integer))


def fts_expression(found: list[tuple[str, ...]]) -> str:
    """The FTS5 query of :func:`query_words`' words: every word, or all of its inner
    words. Each word quoted: FTS5 reads it as a literal (no operators, no prefixes)."""
    return " AND ".join(_fts_either(word, inner) for word, *inner in found)


def _fts_either(word: str, inner: list[str]) -> str:
    if not inner:
        return f'"{word}"'
    return f'("{word}" OR ({" AND ".join(f"{chr(34)}{w}{chr(34)}" for w in inner)}))'


def _pg_ids(found: list[tuple[str, ...]]) -> Any:
    words = "string_to_array(terms, ' ')"
    conditions, binds = [], []
    for i, (word, *inner) in enumerate(found):
        either = [f"{words} @> :w{i}"]
        binds.append(bindparam(f"w{i}", value=[word], type_=ARRAY(Text)))
        if inner:
            either.append(f"{words} @> :s{i}")
            binds.append(bindparam(f"s{i}", value=list(inner), type_=ARRAY(Text)))
        conditions.append("(" + " OR ".join(either) + ")")
    sql = "SELECT case_id FROM case_search WHERE " + " AND ".join(conditions)
    return text(sql).bindparams(*binds).columns(column("case_id", Integer))


def write(connection: Any, case_id: int, description: str | None) -> None:
    """Record the words of the case's description (insert or replace)."""
    values = {"case_id": case_id, "terms": terms_of(description)}
    table = CaseSearch.__table__  # type: ignore[attr-defined]
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).values(**values)
    connection.execute(
        stmt.on_conflict_do_update(index_elements=["case_id"], set_={"terms": values["terms"]})
    )


@event.listens_for(Case, "after_insert")
def _case_inserted(_mapper: Mapper[Any], connection: Any, target: Case) -> None:
    assert target.id is not None
    write(connection, target.id, target.description)


@event.listens_for(Case, "after_update")
def _case_updated(_mapper: Mapper[Any], connection: Any, target: Case) -> None:
    if target.id is not None and attributes.get_history(target, "description").has_changes():
        write(connection, target.id, target.description)
