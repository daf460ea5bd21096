"""The consent log names the newsletter a reader left from its own email's link.

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-29 17:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('consent_event') as batch:
        batch.add_column(sa.Column('newsletter_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(
            'fk_consent_event_newsletter', 'newsletter', ['newsletter_id'], ['id'],
            ondelete='SET NULL',
        )


def downgrade():
    with op.batch_alter_table('consent_event') as batch:
        batch.drop_constraint('fk_consent_event_newsletter', type_='foreignkey')
        batch.drop_column('newsletter_id')
