"""The last failure to open a session with each relay, for /healthz.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 18:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'relay_failure',
        sa.Column('relay', sa.String(length=300), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('relay'),
    )


def downgrade():
    op.drop_table('relay_failure')
