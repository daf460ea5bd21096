"""What comes back about sent mail: feedback events (bounces, complaints, unsubscribes
by mail), when a reader's soft bounces were cleared, and why an address is suppressed.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 15:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'feedback_event',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column(
            'subscriber_id', sa.Integer(),
            sa.ForeignKey('subscriber.id', ondelete='CASCADE'), nullable=True,
        ),
        sa.Column(
            'digest_id', sa.Integer(),
            sa.ForeignKey('digest.id', ondelete='SET NULL'), nullable=True,
        ),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=True),
        sa.Column('detail', sa.String(length=500), nullable=True),
        sa.Column('reference', sa.String(length=200), nullable=True),
        sa.Column('changed_status', sa.Boolean(), nullable=False),
        sa.UniqueConstraint('source', 'reference'),
    )
    op.create_index('ix_feedback_event_at', 'feedback_event', ['at'])
    op.create_index('ix_feedback_event_subscriber_id', 'feedback_event', ['subscriber_id'])
    op.create_index('ix_feedback_event_digest_id', 'feedback_event', ['digest_id'])
    with op.batch_alter_table('subscriber') as batch:
        batch.add_column(sa.Column('soft_bounces_cleared_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('suppressed_address') as batch:
        batch.add_column(
            sa.Column('reason', sa.String(length=16), nullable=False, server_default='erased')
        )


def downgrade():
    with op.batch_alter_table('suppressed_address') as batch:
        batch.drop_column('reason')
    with op.batch_alter_table('subscriber') as batch:
        batch.drop_column('soft_bounces_cleared_at')
    op.drop_index('ix_feedback_event_digest_id', 'feedback_event')
    op.drop_index('ix_feedback_event_subscriber_id', 'feedback_event')
    op.drop_index('ix_feedback_event_at', 'feedback_event')
    op.drop_table('feedback_event')
