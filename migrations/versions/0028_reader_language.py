"""The reader's language: the one their browser asked for at sign-up (among those
we translate to), or their choice on the preferences page. NULL, as for everyone
who signed up before, means DEFAULT_LOCALE.

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-29 17:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('subscriber') as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('subscriber') as batch_op:
        batch_op.drop_column('locale')
