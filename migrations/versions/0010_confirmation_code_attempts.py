"""Wrong confirmation codes are counted, so that guessing one is bounded.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 11:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('subscriber') as batch_op:
        batch_op.add_column(
            sa.Column('code_attempts', sa.Integer(), nullable=False, server_default='0')
        )


def downgrade():
    with op.batch_alter_table('subscriber') as batch_op:
        batch_op.drop_column('code_attempts')
