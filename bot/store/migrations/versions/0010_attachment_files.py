"""Attachments shown to staff: the type their bytes show and the Content-ID they came with

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('attachments') as batch:
        batch.add_column(sa.Column('sniffed_type', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('content_id', sa.String(length=998), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('attachments') as batch:
        batch.drop_column('content_id')
        batch.drop_column('sniffed_type')
