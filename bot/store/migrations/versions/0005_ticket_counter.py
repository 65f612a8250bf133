"""ticket numbers from a counter, gap-free on PostgreSQL

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'counters',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_counters')),
    )
    # The next ticket gets the number after the highest one given so far.
    op.execute("INSERT INTO counters (name, value) SELECT 'ticket', coalesce(max(id), 0) FROM tickets")


def downgrade() -> None:
    op.drop_table('counters')
