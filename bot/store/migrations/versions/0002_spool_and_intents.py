"""spool states, message defects, outbox intents by remote id, rate counters

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

import bot.store.models

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# Intents replace Slack-shaped rows: queued rows of the old kinds cannot be sent by the new
# senders, so they are ended; a ticket whose card never went out gets a new card with the
# next change to it (``core.intents.update_card``).
OLD_KINDS = {"slack.card": "ticket.card", "slack.card_update": "ticket.card_update",
             "slack.thread": "ticket.thread", "slack.notice": "notice",
             "slack.quarantine": "quarantine.notice"}


def upgrade() -> None:
    with op.batch_alter_table('raw_messages') as batch:
        batch.add_column(sa.Column('message_key', sa.String(length=998), nullable=True))
        batch.add_column(sa.Column('state', sa.String(length=8), nullable=False, server_default='done'))
        batch.add_column(sa.Column('sender_key', sa.String(length=400), nullable=False, server_default=''))
        batch.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('last_error', sa.Text(), nullable=True))
        batch.add_column(sa.Column('processed_at', bot.store.models.UTCDateTime(), nullable=True))
    # Rows stored before the spool were keyed by their Message-ID (or hash) already; the ones
    # in quarantine are held (``deskbell reprocess`` queues them again).
    op.execute("UPDATE raw_messages SET message_key = source_id")
    op.execute("UPDATE raw_messages SET state = 'held' WHERE id IN "
               "(SELECT raw_message_id FROM quarantine WHERE status = 'held')")
    with op.batch_alter_table('raw_messages') as batch:
        batch.alter_column('state', server_default=None)
        batch.alter_column('sender_key', server_default=None)
        batch.alter_column('attempts', server_default=None)
        batch.create_unique_constraint('uq_raw_messages_message_key', ['channel', 'message_key'])
        batch.create_index('ix_raw_messages_queue', ['state', 'id'], unique=False)
        batch.create_index('ix_raw_messages_sender', ['sender_key', 'state'], unique=False)
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('defects', sa.JSON(), nullable=True))
    with op.batch_alter_table('outbox') as batch:
        batch.create_index('ix_outbox_remote', ['remote_id'], unique=False)
    for old, new in OLD_KINDS.items():
        op.execute(sa.text("UPDATE outbox SET kind = :new WHERE kind = :old").bindparams(old=old, new=new))
    op.execute("UPDATE outbox SET status = 'dead', last_error = 'queued before the upgrade to intents' "
               "WHERE status IN ('pending', 'sending') AND channel = 'slack'")
    op.execute("UPDATE outbox SET kind = 'customer.message' WHERE kind LIKE 'email.%'")
    op.execute("UPDATE outbox SET status = 'dead', last_error = 'queued before the upgrade to intents' "
               "WHERE status IN ('pending', 'sending') AND channel = 'email'")
    op.create_table('rate_counters',
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.Column('window_start', bot.store.models.UTCDateTime(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key', 'window_start', name=op.f('pk_rate_counters'))
    )


def downgrade() -> None:
    op.drop_table('rate_counters')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_index('ix_outbox_remote')
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('defects')
    with op.batch_alter_table('raw_messages') as batch:
        batch.drop_index('ix_raw_messages_sender')
        batch.drop_index('ix_raw_messages_queue')
        batch.drop_constraint('uq_raw_messages_message_key', type_='unique')
        for column in ('processed_at', 'last_error', 'attempts', 'sender_key', 'state', 'message_key'):
            batch.drop_column(column)
