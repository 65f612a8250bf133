"""Manager digests: the ledger of digest emails sent, the indexes that read a period, and the
link to what the outbox delivered (a Slack card's permalink)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

from bot.store.models import UTCDateTime

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

TICKET_INDEXES = {
    'ix_tickets_group_created': ['group_id', 'created_at'],
    'ix_tickets_first_response': ['first_response_at'],
    'ix_tickets_first_response_due': ['first_response_due_at'],
    'ix_tickets_resolution_due': ['resolution_due_at'],
}


def upgrade() -> None:
    op.create_table(
        'digest_sends',
        sa.Column('digest', sa.String(length=100), nullable=False),
        sa.Column('group', sa.String(length=100), nullable=False),
        sa.Column('period_start', UTCDateTime(), nullable=False),
        sa.Column('recipient', sa.String(length=320), nullable=False),
        sa.Column('times', sa.Integer(), nullable=False),
        sa.Column('outbox_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], name=op.f('fk_digest_sends_outbox_id_outbox')),
        sa.PrimaryKeyConstraint('digest', 'group', 'period_start', 'recipient', name=op.f('pk_digest_sends')),
    )
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('remote_link', sa.String(length=1000), nullable=True))
    for name, columns in TICKET_INDEXES.items():
        op.create_index(name, 'tickets', columns)
    op.create_index('ix_events_kind_created', 'events', ['kind', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_events_kind_created', table_name='events')
    for name in TICKET_INDEXES:
        op.drop_index(name, table_name='tickets')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('remote_link')
    op.drop_table('digest_sends')
