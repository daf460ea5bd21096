"""Each newsletter's own digest schedule (off, daily or weekly, at an hour, optionally
for one feed category), and the categories the feed gives posts. The global weekly
schedule in settings moves onto the first newsletter, so nothing is lost.

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-29 17:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

settings = sa.table(
    'settings', sa.column('id', sa.Integer()), sa.column('periodic_enabled', sa.Boolean()),
    sa.column('periodic_weekday', sa.Integer()), sa.column('periodic_hour', sa.Integer()),
    sa.column('periodic_last_run_at', sa.DateTime()),
)
newsletter = sa.table(
    'newsletter', sa.column('id', sa.Integer()), sa.column('schedule', sa.String()),
    sa.column('schedule_weekday', sa.Integer()), sa.column('schedule_hour', sa.Integer()),
    sa.column('schedule_last_run_at', sa.DateTime()),
)


def first_newsletter_id(bind):
    return bind.scalar(sa.select(sa.func.min(newsletter.c.id)))


def upgrade():
    with op.batch_alter_table('newsletter') as batch:
        batch.add_column(
            sa.Column('schedule', sa.String(length=8), nullable=False, server_default='off')
        )
        batch.add_column(
            sa.Column('schedule_weekday', sa.Integer(), nullable=False, server_default='0')
        )
        batch.add_column(
            sa.Column('schedule_hour', sa.Integer(), nullable=False, server_default='8')
        )
        batch.add_column(sa.Column('schedule_category', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('schedule_last_run_at', sa.DateTime(), nullable=True))
    op.create_table(
        'post_category',
        sa.Column(
            'post_id', sa.Integer(), sa.ForeignKey('post.id', ondelete='CASCADE'),
            primary_key=True,
        ),
        sa.Column('name', sa.String(length=100), primary_key=True),
    )
    op.create_index('ix_post_category_name', 'post_category', ['name', 'post_id'])

    bind = op.get_bind()
    weekly = bind.execute(sa.select(settings).order_by(settings.c.id).limit(1)).first()
    first = first_newsletter_id(bind)
    if weekly is not None and first is not None:
        bind.execute(
            newsletter.update().where(newsletter.c.id == first).values(
                schedule='weekly' if weekly.periodic_enabled else 'off',
                schedule_weekday=weekly.periodic_weekday,
                schedule_hour=weekly.periodic_hour,
                schedule_last_run_at=weekly.periodic_last_run_at,
            )
        )
    with op.batch_alter_table('settings') as batch:
        batch.drop_column('periodic_enabled')
        batch.drop_column('periodic_weekday')
        batch.drop_column('periodic_hour')
        batch.drop_column('periodic_last_run_at')


def downgrade():
    with op.batch_alter_table('settings') as batch:
        batch.add_column(
            sa.Column('periodic_enabled', sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column('periodic_weekday', sa.Integer(), nullable=False, server_default='0')
        )
        batch.add_column(
            sa.Column('periodic_hour', sa.Integer(), nullable=False, server_default='8')
        )
        batch.add_column(sa.Column('periodic_last_run_at', sa.DateTime(), nullable=True))
    bind = op.get_bind()
    first = first_newsletter_id(bind)
    if first is not None:
        schedule = bind.execute(sa.select(newsletter).where(newsletter.c.id == first)).first()
        bind.execute(
            settings.update().values(
                periodic_enabled=schedule.schedule == 'weekly',
                periodic_weekday=schedule.schedule_weekday,
                periodic_hour=schedule.schedule_hour,
                periodic_last_run_at=schedule.schedule_last_run_at,
            )
        )
    op.drop_index('ix_post_category_name', 'post_category')
    op.drop_table('post_category')
    with op.batch_alter_table('newsletter') as batch:
        batch.drop_column('schedule_last_run_at')
        batch.drop_column('schedule_category')
        batch.drop_column('schedule_hour')
        batch.drop_column('schedule_weekday')
        batch.drop_column('schedule')
