"""The helpdesk's rules: SLA clocks, idle time, reminders, assignment, canned responses and
the scheduler's job ledger

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

from bot.store.models import UTCDateTime

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TICKET_TIMES = ('last_reply_at', 'awaiting_staff_since', 'idle_at', 'idle_flagged_at',
                'first_response_at', 'first_response_due_at', 'resolution_due_at', 'sla_paused_at',
                'sla_check_at', 'first_response_alerted_at', 'resolution_alerted_at',
                'first_response_escalated_at', 'resolution_escalated_at', 'follow_up_reminded_at',
                'action_required_reminded_at')


def upgrade() -> None:
    with op.batch_alter_table('tickets') as batch:
        for name in TICKET_TIMES:
            batch.add_column(sa.Column(name, UTCDateTime(), nullable=True))
        # Server defaults: processes of the previous release, still running during an
        # upgrade, insert rows without these columns.
        for name in ('first_response_paused_minutes', 'resolution_paused_minutes'):
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default='0'))
        batch.create_index('ix_tickets_sla_check_at', ['sla_check_at'])
        batch.create_index('ix_tickets_idle_at', ['idle_at'])
        batch.create_index('ix_tickets_status_resolved', ['status', 'resolved_at'])
        batch.create_index('ix_tickets_follow_up', ['follow_up_reminded_at', 'follow_up_at'])
        batch.create_index('ix_tickets_action_required', ['action_required_reminded_at', 'action_required_at'])
        batch.create_index('ix_tickets_lock_expiry', ['lock_expires_at'])
    # Tickets open before this release: the last reply as far as the ticket knows it.
    op.execute("UPDATE tickets SET last_reply_at = CASE WHEN last_staff_reply_at IS NULL "
               "OR last_customer_message_at > last_staff_reply_at THEN last_customer_message_at "
               "ELSE last_staff_reply_at END")
    with op.batch_alter_table('staff') as batch:
        batch.add_column(sa.Column('away', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('slack_away', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('last_assigned_at', UTCDateTime(), nullable=True))
    op.create_table(
        'canned_responses',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=75), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_canned_responses_staff_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_canned_responses')),
        sa.UniqueConstraint('name', name=op.f('uq_canned_responses_name')),
    )
    op.create_table(
        'scheduler_jobs',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('last_run_at', UTCDateTime(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_jobs')),
    )


def downgrade() -> None:
    op.drop_table('scheduler_jobs')
    op.drop_table('canned_responses')
    with op.batch_alter_table('staff') as batch:
        for name in ('last_assigned_at', 'slack_away', 'away'):
            batch.drop_column(name)
    with op.batch_alter_table('tickets') as batch:
        for index in ('ix_tickets_lock_expiry', 'ix_tickets_action_required', 'ix_tickets_follow_up',
                      'ix_tickets_status_resolved', 'ix_tickets_idle_at', 'ix_tickets_sla_check_at'):
            batch.drop_index(index)
        batch.drop_column('resolution_paused_minutes')
        batch.drop_column('first_response_paused_minutes')
        for name in reversed(TICKET_TIMES):
            batch.drop_column(name)
