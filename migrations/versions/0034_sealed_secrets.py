"""Seal TOTP secrets and webhook signing secrets at rest (newsletter/secret_box.py):
the columns widen to hold a Fernet token, and the plaintext already there is sealed.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 18:40:00

"""
from alembic import op
import sqlalchemy as sa

from newsletter import secret_box


# revision identifiers, used by Alembic.
revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None

# Each sealed column: its table, the purpose its key is derived for, and its width
# before this revision.
COLUMNS = [
    ('admin', 'totp_secret', secret_box.TOTP, 32),
    ('webhook_endpoint', 'secret', secret_box.WEBHOOK, 100),
]


def upgrade():
    for table, column, purpose, width in COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                type_=sa.String(length=secret_box.SEALED_LENGTH),
                existing_type=sa.String(length=width),
            )
        _rewrite(table, column, lambda value, purpose=purpose: secret_box.seal(value, purpose))


def downgrade():
    for table, column, purpose, width in COLUMNS:
        _rewrite(
            table, column, lambda value, purpose=purpose: secret_box.open_sealed(value, purpose)
        )
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column,
                type_=sa.String(length=width),
                existing_type=sa.String(length=secret_box.SEALED_LENGTH),
            )


def _rewrite(table, column, change):
    """Every non-null value of the column, changed (sealed or opened) in place."""
    rows = sa.table(table, sa.column('id', sa.Integer), sa.column(column, sa.String))
    connection = op.get_bind()
    found = connection.execute(
        sa.select(rows.c.id, rows.c[column]).where(rows.c[column].is_not(None))
    ).all()
    for row_id, value in found:
        connection.execute(
            rows.update().where(rows.c.id == row_id).values({column: change(value)})
        )
