"""A digest's copies are written in chunks while it sends: the digest says how far.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 11:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('digest') as batch_op:
        batch_op.add_column(sa.Column('owed_through', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('digest') as batch_op:
        batch_op.drop_column('owed_through')
