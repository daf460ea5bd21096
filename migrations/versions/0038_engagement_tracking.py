"""Engagement tracking (docs/engagement.md): each newsletter's tracking mode, a reader's
refusal, a tracked digest's links, the events of its pixel and links, and their totals.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-09 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0038'
down_revision = '0037'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN, no batch: rebuilding subscriber on SQLite would drop the
    # triggers that keep its tallies (0029).
    op.add_column(
        'newsletter',
        sa.Column('tracking', sa.String(length=16), server_default='off', nullable=False),
    )
    op.add_column(
        'subscriber',
        sa.Column('tracking_refused', sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_table(
        'digest_link',
        sa.Column('digest_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.ForeignKeyConstraint(['digest_id'], ['digest.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('digest_id', 'position'),
    )
    op.create_table(
        'engagement_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('digest_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('position', sa.Integer(), nullable=True),
        sa.Column('copy_key', sa.String(length=16), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=True),
        sa.Column('machine', sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(['digest_id'], ['digest.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_engagement_event_at', 'engagement_event', ['at'])
    op.create_index('ix_engagement_event_digest_id', 'engagement_event', ['digest_id'])
    op.create_index('ix_engagement_event_subscriber_id', 'engagement_event', ['subscriber_id'])
    op.create_table(
        'engagement_total',
        sa.Column('digest_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('human', sa.Integer(), nullable=False),
        sa.Column('machine', sa.Integer(), nullable=False),
        sa.Column('human_copies', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['digest_id'], ['digest.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('digest_id', 'kind', 'position'),
    )


def downgrade():
    op.drop_table('engagement_total')
    op.drop_index('ix_engagement_event_subscriber_id', table_name='engagement_event')
    op.drop_index('ix_engagement_event_digest_id', table_name='engagement_event')
    op.drop_index('ix_engagement_event_at', table_name='engagement_event')
    op.drop_table('engagement_event')
    op.drop_table('digest_link')
    op.drop_column('subscriber', 'tracking_refused')
    op.drop_column('newsletter', 'tracking')
