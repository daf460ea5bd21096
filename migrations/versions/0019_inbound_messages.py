"""Inbound messages: what the inbound listener accepted, kept as it came until
processed into feedback (or ignored, with the reason).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29 15:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'inbound_message',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('mail_from', sa.String(length=320), nullable=False),
        sa.Column('rcpt_to', sa.String(length=320), nullable=False),
        sa.Column('raw', sa.LargeBinary(), nullable=False),
        sa.Column('processed_at', sa.DateTime(), nullable=True),
        sa.Column('outcome', sa.Text(), nullable=True),
    )
    op.create_index('ix_inbound_message_processed_at', 'inbound_message', ['processed_at'])


def downgrade():
    op.drop_index('ix_inbound_message_processed_at', 'inbound_message')
    op.drop_table('inbound_message')
