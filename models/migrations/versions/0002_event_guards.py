"""case events are append-only: refuse UPDATE and DELETE on case_event

The hash chain (models.lifecycle) makes tampering *visible* (``tiaojie audit verify``);
these triggers make the ordinary path *impossible*: any UPDATE or DELETE of a
``case_event`` row aborts its statement, on SQLite and on PostgreSQL alike.

Retention is unaffected: events hold ids, statuses, verbs, actors ("staff:12"), times
and short structured data (reasons, unit codes), never a party's name, phone, ID number
or address (those live only in ``party`` rows, encrypted, and it is those rows that the
retention rule anonymises). Free text put into event data is passed through
``pii.scrub_text`` by the state machine before it is hashed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 22:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "case events are append-only"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER IF NOT EXISTS case_event_no_{verb.lower()} "
                f"BEFORE {verb} ON case_event "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION case_event_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            f"RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation'; "
            "END; $$"
        )
        op.execute("DROP TRIGGER IF EXISTS case_event_append_only ON case_event")
        op.execute(
            "CREATE TRIGGER case_event_append_only BEFORE UPDATE OR DELETE ON case_event "
            "FOR EACH ROW EXECUTE FUNCTION case_event_append_only()"
        )
        # TRUNCATE bypasses row triggers: refuse it too.
        op.execute("DROP TRIGGER IF EXISTS case_event_no_truncate ON case_event")
        op.execute(
            "CREATE TRIGGER case_event_no_truncate BEFORE TRUNCATE ON case_event "
            "FOR EACH STATEMENT EXECUTE FUNCTION case_event_append_only()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS case_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS case_event_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS case_event_no_truncate ON case_event")
        op.execute("DROP TRIGGER IF EXISTS case_event_append_only ON case_event")
        op.execute("DROP FUNCTION IF EXISTS case_event_append_only()")
