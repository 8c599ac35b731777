"""cases.referred_by_id: who made the standing referral (they make its return visits)

Filled for the cases referred before this revision from their latest referral made by a
person.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN with its REFERENCES: alembic's batch mode would copy the whole
    # cases table on SQLite (minutes at a million cases), and dropping the old copy
    # fails while other tables' foreign keys point at it. SQLite takes REFERENCES in ADD
    # COLUMN for a column that defaults to NULL; alembic does not write it that way.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE cases ADD COLUMN referred_by_id INTEGER REFERENCES staff (id)")
    else:
        op.add_column(
            "cases",
            sa.Column("referred_by_id", sa.Integer(), sa.ForeignKey("staff.id"), nullable=True),
        )
    op.execute(
        "UPDATE cases SET referred_by_id = ("
        " SELECT r.referred_by_id FROM referral r"
        " WHERE r.case_id = cases.id AND r.referred_by_id IS NOT NULL"
        " ORDER BY r.id DESC LIMIT 1"
        ") WHERE referral_target IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_column("cases", "referred_by_id")
