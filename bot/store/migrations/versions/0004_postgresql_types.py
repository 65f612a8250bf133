"""PostgreSQL: timestamps with time zone, jsonb

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

A database made by earlier code has ``timestamp without time zone`` columns holding UTC and
``json`` columns. Each timestamp becomes ``timestamp with time zone``, read as UTC (``AT TIME
ZONE 'UTC'``, so the session's TimeZone plays no part), and each ``json`` becomes ``jsonb``.
Columns already of the new type are left alone: a database created after the models changed
gets ``timestamptz`` from 0001 already. Nothing to do on SQLite, which has neither type.
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# The tables as of this revision; other tables sharing the schema are none of our business.
TABLES = ('attachments', 'blobs', 'contacts', 'events', 'handler_groups', 'messages', 'outbox',
          'processed_keys', 'quarantine', 'rate_counters', 'raw_messages', 'staff', 'ticket_links',
          'tickets')

# (data_type found, new type, how a value is converted)
UPGRADE = (
    ('timestamp without time zone', 'timestamp with time zone', "{col} AT TIME ZONE 'UTC'"),
    ('json', 'jsonb', '{col}::jsonb'),
)
DOWNGRADE = (
    ('timestamp with time zone', 'timestamp without time zone', "{col} AT TIME ZONE 'UTC'"),
    ('jsonb', 'json', '{col}::json'),
)


def _columns(data_type: str) -> list[tuple[str, str]]:
    rows = op.get_bind().execute(sa.text(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type = :data_type "
        "AND table_name = ANY(:tables) ORDER BY table_name, ordinal_position"),
        {"data_type": data_type, "tables": list(TABLES)})
    return [(table, column) for table, column in rows]


def _convert(steps: tuple[tuple[str, str, str], ...]) -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    clauses: dict[str, list[str]] = {}
    for found, new_type, using in steps:
        for table, column in _columns(found):
            col = f'"{column}"'
            clauses.setdefault(table, []).append(
                f'ALTER COLUMN {col} TYPE {new_type} USING {using.format(col=col)}')
    # One statement per table: PostgreSQL rewrites a table once however many columns change.
    for table, changes in sorted(clauses.items()):
        op.execute(f'ALTER TABLE "{table}" ' + ', '.join(changes))


def upgrade() -> None:
    _convert(UPGRADE)


def downgrade() -> None:
    _convert(DOWNGRADE)
