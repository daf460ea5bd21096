"""One inbound message row per message: its recipients, a few, in one text column.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 18:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('inbound_message') as batch:
        batch.alter_column(
            'rcpt_to', existing_type=sa.String(length=320), type_=sa.Text(), existing_nullable=False
        )


def downgrade():
    # Recipients past the old width are cut rather than refused: the row stays.
    op.execute(
        "UPDATE inbound_message SET rcpt_to = substr(rcpt_to, 1, 320) WHERE length(rcpt_to) > 320"
    )
    with op.batch_alter_table('inbound_message') as batch:
        batch.alter_column(
            'rcpt_to', existing_type=sa.Text(), type_=sa.String(length=320), existing_nullable=False
        )
