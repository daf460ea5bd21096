"""Email templates that admins edit: one row per template part; no row, the file.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-14 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'email_template',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('part', sa.String(length=8), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name', 'part'),
    )


def downgrade():
    op.drop_table('email_template')
