"""Two-factor login for admins: a TOTP secret, the last time step accepted, and
single-use recovery codes kept as hashes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 13:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('admin') as batch_op:
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.Integer(), nullable=True))
    op.create_table(
        'recovery_code',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column(
            'admin_id',
            sa.Integer(),
            sa.ForeignKey('admin.id', ondelete='CASCADE'),
            nullable=False,
        ),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_recovery_code_admin_id', 'recovery_code', ['admin_id'])


def downgrade():
    op.drop_table('recovery_code')
    with op.batch_alter_table('admin') as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_secret')
