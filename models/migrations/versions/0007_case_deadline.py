"""cases.deadline_at: the deadline that counts now, kept on the case

Overdue becomes a range of a small partial index (the open cases with a limit running)
instead of the rule worked out for every open case on each read; the open cases' index
by place carries status and deadline, so that a subtree's backlog is read from it. Filled here for the
cases of an existing database by the rule itself (models.overdue.refresh_deadlines), the
one that keeps it from now on.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 11:40:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import models.types
from models.overdue import refresh_deadlines

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PARTIAL: dict[str, Any] = {
    "sqlite_where": sa.text("deadline_at IS NOT NULL"),
    "postgresql_where": sa.text("deadline_at IS NOT NULL"),
}


def upgrade() -> None:
    # A plain ADD COLUMN: alembic's batch mode would copy the whole cases table on
    # SQLite (minutes at a million cases).
    op.add_column("cases", sa.Column("deadline_at", models.types.UTCDateTime(), nullable=True))
    refresh_deadlines(op.get_bind())
    op.create_index("ix_case_deadline", "cases", ["deadline_at"], unique=False, **_PARTIAL)
    op.create_index(
        "ix_case_path_deadline",
        "cases",
        ["unit_path", "deadline_at", "unit_id"],
        unique=False,
        **_PARTIAL,
    )
    op.drop_index("ix_case_open_path", table_name="cases")
    op.create_index("ix_case_open_path", "cases", ["is_open", "unit_path", "status", "deadline_at"])


def downgrade() -> None:
    op.drop_index("ix_case_open_path", table_name="cases")
    op.create_index("ix_case_open_path", "cases", ["is_open", "unit_path"])
    op.drop_index("ix_case_path_deadline", table_name="cases", **_PARTIAL)
    op.drop_index("ix_case_deadline", table_name="cases", **_PARTIAL)
    op.drop_column("cases", "deadline_at")
