"""Recipient domains that asked us to slow down, with the pace every worker keeps.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 15:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'domain_pace',
        sa.Column('domain', sa.String(length=255), primary_key=True),
        sa.Column('interval_seconds', sa.Float(), nullable=False),
        sa.Column('next_at', sa.Float(), nullable=False),
    )


def downgrade():
    op.drop_table('domain_pace')
