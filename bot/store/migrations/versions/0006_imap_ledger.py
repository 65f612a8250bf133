"""IMAP door: the UID ledger per mailbox, where moved messages went, each ticket's door

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import bot.store.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'imap_mailboxes',
        sa.Column('account', sa.String(length=100), nullable=False),
        sa.Column('mailbox', sa.String(length=400), nullable=False),
        sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
        sa.Column('last_uid', sa.BigInteger(), nullable=False),
        sa.Column('waiting', sa.Integer(), nullable=False),
        sa.Column('left_behind', JSON, nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('last_error_at', bot.store.models.UTCDateTime(), nullable=True),
        sa.Column('synced_at', bot.store.models.UTCDateTime(), nullable=True),
        sa.Column('updated_at', bot.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('account', 'mailbox', name=op.f('pk_imap_mailboxes')),
    )
    op.create_table(
        'imap_placements',
        sa.Column('source_id', sa.String(length=998), nullable=False),
        sa.Column('account', sa.String(length=100), nullable=False),
        sa.Column('mailbox', sa.String(length=400), nullable=False),
        sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
        sa.Column('uid', sa.BigInteger(), nullable=False),
        sa.Column('filed_at', bot.store.models.UTCDateTime(), nullable=True),
        sa.Column('created_at', bot.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('source_id', name=op.f('pk_imap_placements')),
    )
    op.create_index(op.f('ix_imap_placements_account'), 'imap_placements', ['account'])
    with op.batch_alter_table('tickets') as batch:
        # The default stays in the schema: processes of the previous release, still running
        # during an upgrade, insert tickets without this column.
        batch.add_column(sa.Column('door', sa.String(length=100), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.drop_column('door')
    op.drop_index(op.f('ix_imap_placements_account'), table_name='imap_placements')
    op.drop_table('imap_placements')
    op.drop_table('imap_mailboxes')
