"""Digests say why sending stopped when the relay refused the message itself.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 08:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('digest') as batch_op:
        batch_op.add_column(sa.Column('paused_reason', sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table('digest') as batch_op:
        batch_op.drop_column('paused_reason')
