"""How many openings of a session with each relay failed in a row: the mail waits
longer after each.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07 18:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0037'
# relay_failure is made by 0033, before 0036: this revision needs that table.
down_revision = '0036'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('relay_failure') as batch_op:
        batch_op.add_column(
            sa.Column('failures', sa.Integer(), server_default='1', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('relay_failure') as batch_op:
        batch_op.drop_column('failures')
