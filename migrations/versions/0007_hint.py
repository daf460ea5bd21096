"""Hints: at most one "send the due email jobs" hint on its way at a time.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 03:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    hint = op.create_table('hint',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('pending', sa.Boolean(), nullable=False),
    sa.Column('set_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.bulk_insert(hint, [{'name': 'email', 'pending': False, 'set_at': None}])


def downgrade():
    op.drop_table('hint')
