"""the full-text index of the cases' words (models.case_text)

SQLite: an FTS5 table over ``case_search`` and the triggers that keep it in step.
PostgreSQL: a GIN index on the words of ``case_search.terms``. Cases recorded before
this revision get their words here.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 17:30:00
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from models.case_text import INDEX_DDL, terms_of

    bind = op.get_bind()
    for sql in INDEX_DDL.get(bind.dialect.name, ()):
        op.execute(sql)
    missing = bind.execute(
        text(
            "SELECT id, description FROM cases "
            "WHERE id NOT IN (SELECT case_id FROM case_search) ORDER BY id"
        )
    ).all()
    for case_id, description in missing:
        bind.execute(
            text("INSERT INTO case_search (case_id, terms) VALUES (:id, :terms)"),
            {"id": case_id, "terms": terms_of(description)},
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("case_search_ai", "case_search_ad", "case_search_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS case_search_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_case_search_words")
