"""Settings: the welcome email and the periodic digest.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 16:24:20.359118

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('welcome_enabled', sa.Boolean(), nullable=False),
    sa.Column('welcome_subject', sa.String(length=200), nullable=False),
    sa.Column('welcome_intro', sa.Text(), nullable=False),
    sa.Column('periodic_enabled', sa.Boolean(), nullable=False),
    sa.Column('periodic_weekday', sa.Integer(), nullable=False),
    sa.Column('periodic_hour', sa.Integer(), nullable=False),
    sa.Column('periodic_last_run_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade():
    op.drop_table('settings')
