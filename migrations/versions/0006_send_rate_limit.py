"""Settings: a limit on digest messages per second, kept by all workers together.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 03:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('settings') as batch_op:
        batch_op.add_column(
            sa.Column('send_rate_limit', sa.Integer(), nullable=False, server_default='0')
        )
        batch_op.add_column(sa.Column('send_clock', sa.Float(), nullable=False, server_default='0'))


def downgrade():
    with op.batch_alter_table('settings') as batch_op:
        batch_op.drop_column('send_clock')
        batch_op.drop_column('send_rate_limit')
