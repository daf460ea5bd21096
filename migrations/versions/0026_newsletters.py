"""Several newsletters readers choose from: newsletter, subscription (a reader's
choice of one), and each digest's newsletter. Everyone and every digest move to a
first newsletter, so nothing is lost and nobody's mail changes.

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-29 16:00:00

"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade():
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    op.create_table(
        'newsletter',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('slug', sa.String(length=64), nullable=False, unique=True),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('default_on', sa.Boolean(), nullable=False),
        sa.Column('public', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )
    op.create_table(
        'subscription',
        sa.Column(
            'subscriber_id', sa.Integer(),
            sa.ForeignKey('subscriber.id', ondelete='CASCADE'), primary_key=True,
        ),
        sa.Column(
            'newsletter_id', sa.Integer(),
            sa.ForeignKey('newsletter.id', ondelete='CASCADE'), primary_key=True,
        ),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('changed_at', sa.DateTime(), nullable=False),
    )
    op.create_index(
        'ix_subscription_newsletter_active', 'subscription',
        ['newsletter_id', 'active', 'subscriber_id'],
    )
    newsletter = sa.table(
        'newsletter', sa.column('id'), sa.column('slug'), sa.column('name'),
        sa.column('description'), sa.column('default_on'), sa.column('public'),
        sa.column('created_at'),
    )
    op.bulk_insert(newsletter, [{
        'id': 1, 'slug': 'newsletter', 'name': 'The Newsletter', 'description': '',
        'default_on': True, 'public': True, 'created_at': now,
    }])
    op.execute(
        sa.text(
            'INSERT INTO subscription (subscriber_id, newsletter_id, active, changed_at) '
            'SELECT id, 1, :active, :now FROM subscriber'
        ).bindparams(active=True, now=now)
    )
    with op.batch_alter_table('digest') as batch:
        batch.add_column(sa.Column('newsletter_id', sa.Integer(), nullable=True))
    op.execute('UPDATE digest SET newsletter_id = 1')
    with op.batch_alter_table('digest') as batch:
        batch.alter_column('newsletter_id', existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key('fk_digest_newsletter', 'newsletter', ['newsletter_id'], ['id'])
        batch.create_index('ix_digest_newsletter_id', ['newsletter_id'])
    if op.get_bind().dialect.name == 'postgresql':
        # The first row was given its id: the sequence must go on after it.
        op.execute("SELECT setval('newsletter_id_seq', (SELECT max(id) FROM newsletter))")


def downgrade():
    with op.batch_alter_table('digest') as batch:
        batch.drop_index('ix_digest_newsletter_id')
        batch.drop_constraint('fk_digest_newsletter', type_='foreignkey')
        batch.drop_column('newsletter_id')
    op.drop_index('ix_subscription_newsletter_active', 'subscription')
    op.drop_table('subscription')
    op.drop_table('newsletter')
