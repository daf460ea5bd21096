"""Abuse controls: the admins' blocked domains, and solved ALTCHA challenges kept until
they expire so that none counts twice.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 14:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'blocked_domain',
        sa.Column('domain', sa.String(length=253), primary_key=True),
        sa.Column('added_at', sa.DateTime(), nullable=False),
    )
    op.create_table(
        'spent_challenge',
        sa.Column('signature', sa.String(length=128), primary_key=True),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
    )
    op.create_index('ix_spent_challenge_expires_at', 'spent_challenge', ['expires_at'])


def downgrade():
    op.drop_table('spent_challenge')
    op.drop_table('blocked_domain')
