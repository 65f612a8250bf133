"""SMS: contacts' opt-out, messages found by their provider id, MMS media waiting to be fetched

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contacts') as batch:
        # The default stays in the schema: processes of the previous release, still running
        # during an upgrade, insert contacts without this column.
        batch.add_column(sa.Column('sms_opted_out', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('attachments') as batch:
        batch.add_column(sa.Column('source_url', sa.String(length=2000), nullable=True))
    op.create_index(op.f('ix_messages_remote_id'), 'messages', ['remote_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_messages_remote_id'), table_name='messages')
    with op.batch_alter_table('attachments') as batch:
        batch.drop_column('source_url')
    with op.batch_alter_table('contacts') as batch:
        batch.drop_column('sms_opted_out')
