"""Signed webhook requests already taken, so that a copy of one is refused.

Revision ID: 0019
Revises: 0017
Create Date: 2026-11-29 18:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'webhook_replay',
        sa.Column('provider', sa.String(length=16), primary_key=True),
        sa.Column('token', sa.String(length=64), primary_key=True),
        sa.Column('seen_at', sa.DateTime(), nullable=False),
    )
    op.create_index('ix_webhook_replay_seen_at', 'webhook_replay', ['seen_at'])


def downgrade():
    op.drop_index('ix_webhook_replay_seen_at', 'webhook_replay')
    op.drop_table('webhook_replay')
