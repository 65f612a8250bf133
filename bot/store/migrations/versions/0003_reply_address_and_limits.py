"""ticket reply address, sender authentication results, withheld attachments

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(sa.Column('reply_to', sa.String(length=320), nullable=True))
        batch.add_column(sa.Column('proposed_reply_to', sa.String(length=320), nullable=True))
    # Existing tickets keep answering where their first message asked to be answered.
    op.execute("UPDATE tickets SET reply_to = (SELECT messages.reply_to FROM messages "
               "WHERE messages.ticket_id = tickets.id AND messages.kind = 'inbound' "
               "ORDER BY messages.id LIMIT 1)")
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('authentication', sa.JSON(), nullable=True))
    with op.batch_alter_table('attachments') as batch:
        batch.add_column(sa.Column('withheld', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.alter_column('sha256', existing_type=sa.String(length=64), nullable=True)
    with op.batch_alter_table('attachments') as batch:
        batch.alter_column('withheld', server_default=None)
    # A sent or failed mail finds the thread post that follows its delivery.
    op.create_index('ix_outbox_message_id', 'outbox', ['message_id'])


def downgrade() -> None:
    op.drop_index('ix_outbox_message_id', table_name='outbox')
    op.execute("DELETE FROM attachments WHERE sha256 IS NULL")
    with op.batch_alter_table('attachments') as batch:
        batch.alter_column('sha256', existing_type=sa.String(length=64), nullable=False)
        batch.drop_column('withheld')
    with op.batch_alter_table('messages') as batch:
        batch.drop_column('authentication')
    with op.batch_alter_table('tickets') as batch:
        batch.drop_column('proposed_reply_to')
        batch.drop_column('reply_to')
