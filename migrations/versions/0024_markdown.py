"""Markdown: hand-written posts keep their Markdown source, and digest intros are
Markdown from now on.

Intros written before were plain text: every ASCII punctuation character in them is
backslash-escaped, so that as Markdown they render exactly the words they showed
(archived digests do not change). Downgrading removes exactly those escapes.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-12 10:00:00

"""
import re
import string

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

PUNCTUATION = re.compile(f"([{re.escape(string.punctuation)}])")
ESCAPED = re.compile(f"\\\\([{re.escape(string.punctuation)}])")
digest = sa.table('digest', sa.column('id', sa.Integer), sa.column('intro', sa.Text))


def rewrite_intros(change):
    connection = op.get_bind()
    rows = connection.execute(sa.select(digest.c.id, digest.c.intro).where(digest.c.intro != ''))
    for digest_id, intro in rows.all():
        connection.execute(
            digest.update().where(digest.c.id == digest_id).values(intro=change(intro))
        )


def upgrade():
    op.add_column('post', sa.Column('summary_markdown', sa.Text(), nullable=True))
    rewrite_intros(lambda intro: PUNCTUATION.sub(r"\\\1", intro))


def downgrade():
    rewrite_intros(lambda intro: ESCAPED.sub(r"\1", intro))
    with op.batch_alter_table('post') as batch:
        batch.drop_column('summary_markdown')
