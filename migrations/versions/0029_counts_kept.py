"""Counts the admin's pages show, kept rather than counted on each view.

The number of subscribers per status, kept up to date by the database: every
subscriber list page shows these counts, and counting them meant reading the whole
table (40 ms at 200,000 subscribers on PostgreSQL, more on SQLite).

Triggers on subscriber append the change to subscriber_tally (+1 for a new reader's
status, -1 and +1 for a status left and taken, -1 for a deleted reader), in the same
transaction as the change, whichever code made it. Appending, unlike updating one
counter per status, makes concurrent sign-ups wait on nothing. The sum of the rows is
the count; reading folds them into one row per status now and then. PostgreSQL fires
once per statement (a batch of 1,000 imported readers adds one row), SQLite once per
row. The statuses counted as the migration runs are its first rows. On SQLite a later
migration that rebuilds subscriber (batch_alter_table in "move and copy" mode) drops its
triggers with the old table, and must create them again (the tests of the counts fail
without them).

The delivery totals of digests already sent, which sending now writes on a digest as
it finishes (they were written only when its copies were folded away, 90 days on): the
dashboard counted 200,000 copies of each of its latest digests on every view.

An index for the dashboard's daily moves: confirmations, unsubscribes and erasures by
time, read from the index alone (sign-ups, most of the consent log, are left out).

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-29 17:40:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

POSTGRESQL_TRIGGERS = [
    """
    CREATE FUNCTION subscriber_tally_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO subscriber_tally (status, delta)
        SELECT status, count(*) FROM added GROUP BY status;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER subscriber_tally_added AFTER INSERT ON subscriber
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION subscriber_tally_added()
    """,
    """
    CREATE FUNCTION subscriber_tally_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO subscriber_tally (status, delta)
        SELECT status, -count(*) FROM removed GROUP BY status;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER subscriber_tally_removed AFTER DELETE ON subscriber
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION subscriber_tally_removed()
    """,
    # Transition tables cannot go with a column list (UPDATE OF status): the join
    # keeps only the rows whose status changed.
    """
    CREATE FUNCTION subscriber_tally_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO subscriber_tally (status, delta)
        SELECT status, sum(delta) FROM (
            SELECT was.status, -1 AS delta, became.status AS other
            FROM was JOIN became ON became.id = was.id
            UNION ALL
            SELECT became.status, 1, was.status
            FROM was JOIN became ON became.id = was.id
        ) AS moves
        WHERE status <> other
        GROUP BY status;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER subscriber_tally_changed AFTER UPDATE ON subscriber
    REFERENCING OLD TABLE AS was NEW TABLE AS became FOR EACH STATEMENT
    EXECUTE FUNCTION subscriber_tally_changed()
    """,
]
SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER subscriber_tally_added AFTER INSERT ON subscriber
    BEGIN
        INSERT INTO subscriber_tally (status, delta) VALUES (NEW.status, 1);
    END
    """,
    """
    CREATE TRIGGER subscriber_tally_removed AFTER DELETE ON subscriber
    BEGIN
        INSERT INTO subscriber_tally (status, delta) VALUES (OLD.status, -1);
    END
    """,
    """
    CREATE TRIGGER subscriber_tally_changed AFTER UPDATE OF status ON subscriber
    WHEN NEW.status <> OLD.status
    BEGIN
        INSERT INTO subscriber_tally (status, delta) VALUES (OLD.status, -1), (NEW.status, 1);
    END
    """,
]

MOVES_WHERE = "kind IN ('confirm', 'unsubscribe', 'erasure')"
DELIVERY_TOTALS = [('sent_count', 'sent'), ('failed_count', 'failed'), ('skipped_count', 'skipped')]


def upgrade():
    op.create_table(
        'subscriber_tally',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('delta', sa.Integer(), nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        # No sign-up may land between the first count and the trigger that counts it.
        op.execute('LOCK TABLE subscriber IN SHARE ROW EXCLUSIVE MODE')
    for statement in POSTGRESQL_TRIGGERS if bind.dialect.name == 'postgresql' else SQLITE_TRIGGERS:
        op.execute(statement)
    op.execute(
        'INSERT INTO subscriber_tally (status, delta) '
        'SELECT status, count(*) FROM subscriber GROUP BY status'
    )
    op.create_index(
        'ix_consent_event_moves', 'consent_event', ['at', 'kind', 'source'],
        postgresql_where=sa.text(MOVES_WHERE), sqlite_where=sa.text(MOVES_WHERE),
    )
    op.execute(
        'UPDATE digest SET '
        + ', '.join(
            f'{column} = (SELECT count(*) FROM delivery '
            f"WHERE delivery.digest_id = digest.id AND delivery.status = '{status}')"
            for column, status in DELIVERY_TOTALS
        )
        + " WHERE status = 'sent' AND sent_count IS NULL"
    )


def downgrade():
    # The digests' totals stay: they are right, and folding writes them anyway.
    op.drop_index('ix_consent_event_moves', table_name='consent_event')
    postgresql = op.get_bind().dialect.name == 'postgresql'
    for name in ('subscriber_tally_changed', 'subscriber_tally_removed', 'subscriber_tally_added'):
        if postgresql:
            op.execute(f'DROP TRIGGER IF EXISTS {name} ON subscriber')
            op.execute(f'DROP FUNCTION IF EXISTS {name}()')
        else:
            op.execute(f'DROP TRIGGER IF EXISTS {name}')
    op.drop_table('subscriber_tally')
