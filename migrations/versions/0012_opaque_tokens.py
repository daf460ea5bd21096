"""Links name a subscription by its random nonce, not its row id: the nonce is unique.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 12:30:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_subscriber_token_nonce', 'subscriber', ['token_nonce'], unique=True)


def downgrade():
    op.drop_index('ix_subscriber_token_nonce', table_name='subscriber')
