"""Signed webhook requests already taken, so that a copy of one is refused.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 15:15:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
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
