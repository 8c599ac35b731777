"""case_event: one index on (verb, at) instead of verb alone

A period's events of one verb (the monthly report's escalations) are read as one range
of it; the index on verb alone, its first column, goes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 05:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_case_event_verb_at", "case_event", ["verb", "at"], unique=False)
    op.drop_index("ix_case_event_verb", table_name="case_event")


def downgrade() -> None:
    op.create_index("ix_case_event_verb", "case_event", ["verb"], unique=False)
    op.drop_index("ix_case_event_verb_at", table_name="case_event")
