"""The consent log: every sign-up, confirmation, unsubscribe and erasure.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 12:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'consent_event',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column(
            'subscriber_id',
            sa.Integer(),
            sa.ForeignKey('subscriber.id', ondelete='CASCADE'),
            nullable=True,
        ),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.Column('ip', sa.String(length=45), nullable=True),
    )
    op.create_index('ix_consent_event_subscriber_id', 'consent_event', ['subscriber_id'])
    op.create_index('ix_consent_event_at', 'consent_event', ['at'])


def downgrade():
    op.drop_table('consent_event')
