"""Admins' sessions can be ended: a token each session's id carries, replaced at logout
and with a new password.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 12:20:00

"""
import secrets

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('admin') as batch_op:
        batch_op.add_column(sa.Column('session_token', sa.String(length=32), nullable=True))
    admin = sa.table('admin', sa.column('id', sa.Integer), sa.column('session_token', sa.String))
    connection = op.get_bind()
    for (admin_id,) in connection.execute(sa.select(admin.c.id)).all():
        connection.execute(
            admin.update().where(admin.c.id == admin_id).values(session_token=secrets.token_hex(8))
        )
    with op.batch_alter_table('admin') as batch_op:
        batch_op.alter_column('session_token', existing_type=sa.String(length=32), nullable=False)


def downgrade():
    with op.batch_alter_table('admin') as batch_op:
        batch_op.drop_column('session_token')
