"""Outgoing webhooks: the endpoints admins add, and each event owed to each of them.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'webhook_endpoint',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('events', sa.String(length=200), nullable=False),
        sa.Column('secret', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('last_status', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('last_delivery_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_webhook_endpoint_active', 'webhook_endpoint', ['active'])
    op.create_table(
        'webhook_delivery',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column(
            'endpoint_id',
            sa.Integer(),
            sa.ForeignKey('webhook_endpoint.id', ondelete='CASCADE'),
            nullable=False,
        ),
        sa.Column('event', sa.String(length=40), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('webhook_id', sa.String(length=40), nullable=False, unique=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=True),
    )
    op.create_index('ix_webhook_delivery_endpoint_id', 'webhook_delivery', ['endpoint_id'])
    op.create_index('ix_webhook_delivery_status_due_at', 'webhook_delivery', ['status', 'due_at'])


def downgrade():
    op.drop_index('ix_webhook_delivery_status_due_at', 'webhook_delivery')
    op.drop_index('ix_webhook_delivery_endpoint_id', 'webhook_delivery')
    op.drop_table('webhook_delivery')
    op.drop_index('ix_webhook_endpoint_active', 'webhook_endpoint')
    op.drop_table('webhook_endpoint')
