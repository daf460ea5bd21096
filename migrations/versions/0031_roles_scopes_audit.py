"""Admin roles, API-key scopes and expiry, and the audit log.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 18:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('admin') as batch:
        batch.add_column(
            sa.Column('role', sa.String(length=16), nullable=False, server_default='owner')
        )
    with op.batch_alter_table('api_key') as batch:
        batch.add_column(sa.Column('scopes', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
    op.create_table(
        'audit_entry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('actor_kind', sa.String(length=16), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('actor', sa.String(length=320), nullable=False),
        sa.Column('action', sa.String(length=48), nullable=False),
        sa.Column('target', sa.String(length=320), nullable=True),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('ip', sa.String(length=45), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_entry_at', 'audit_entry', ['at'])
    op.create_index('ix_audit_entry_action', 'audit_entry', ['action'])


def downgrade():
    op.drop_index('ix_audit_entry_action', table_name='audit_entry')
    op.drop_index('ix_audit_entry_at', table_name='audit_entry')
    op.drop_table('audit_entry')
    with op.batch_alter_table('api_key') as batch:
        batch.drop_column('expires_at')
        batch.drop_column('scopes')
    with op.batch_alter_table('admin') as batch:
        batch.drop_column('role')
