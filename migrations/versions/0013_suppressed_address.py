"""Erased addresses are kept only as keyed hashes, so that nothing adds them again.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 12:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'suppressed_address',
        sa.Column('address_hash', sa.String(length=64), primary_key=True),
        sa.Column('erased_at', sa.DateTime(), nullable=False),
    )


def downgrade():
    op.drop_table('suppressed_address')
