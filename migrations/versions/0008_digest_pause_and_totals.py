"""Digests say why sending stopped by itself, and keep their totals once their
delivery rows are folded away.

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
        batch_op.add_column(sa.Column('sent_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('failed_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('skipped_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('folded_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('digest') as batch_op:
        batch_op.drop_column('folded_at')
        batch_op.drop_column('skipped_count')
        batch_op.drop_column('failed_count')
        batch_op.drop_column('sent_count')
        batch_op.drop_column('paused_reason')
