"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file.

Five rough edges of the stock transport are smoothed here:
- kombu hands every transport option to ``create_engine``, so the polling
  interval cannot be set as an option; this class sets it, so that a task
  starts within 20 ms instead of a whole second (an idle poll costs ~0.1 ms);
- an idle worker told to stop (SIGTERM, Ctrl-C) went on polling for the rest of
  Celery's 2-second wait, and then for one more: about 4 s; here it stops polling
  at once;
- two processes starting at once on a new file can both create the queue row,
  and the loser died of the IntegrityError;
- publishing and taking a message looked the queue up and went through the ORM
  each time; here each is one statement;
- delivered messages were only marked invisible and kept forever; here the row
  is deleted when it is taken (the stock transport cannot give an invisible row
  back after a crash either, which is why the database, not the broker, records
  the work to do).
WAL mode and the busy timeout come from ``newsletter.extensions.tune_sqlite``.
"""

from time import monotonic, sleep

from celery.worker import state as worker_state
from kombu.transport import sqlalchemy
from kombu.transport.virtual import Empty
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError, OperationalError


class EmbeddedChannel(sqlalchemy.Channel):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._queue_ids = {}

    def _queue_id(self, queue):
        if queue not in self._queue_ids:
            try:
                row = self._get_or_create(queue)
            except IntegrityError:
                self.session.rollback()
                row = self._get_or_create(queue)
            self._queue_ids[queue] = row.id
        return self._queue_ids[queue]

    def _put(self, queue, payload, **kwargs):
        """One INSERT: a sign-up publishes on its request's path."""
        messages = self.message_cls.__table__
        try:
            self.session.execute(
                messages.insert().values(
                    queue_id=self._queue_id(queue), payload=dumps(payload), visible=True, version=1
                )
            )
            self.session.commit()
        except OperationalError:
            self.session.rollback()
            raise

    def _get(self, queue):
        """Take the oldest message with one DELETE … RETURNING."""
        messages = self.message_cls.__table__
        oldest = (
            select(messages.c.id)
            .where(messages.c.queue_id == self._queue_id(queue), messages.c.visible.is_(True))
            .order_by(messages.c.timestamp, messages.c.id)
            .limit(1)
            .scalar_subquery()
        )
        # Take the write lock first: in WAL mode a read that turns into a write
        # fails at once if another process wrote in between.
        self.session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            payload = self.session.scalar(
                delete(messages).where(messages.c.id == oldest).returning(messages.c.payload)
            )
        finally:
            self.session.commit()
        if payload is None:
            raise Empty()
        return loads(bytes_to_str(payload))


class EmbeddedTransport(sqlalchemy.Transport):
    Channel = EmbeddedChannel
    polling_interval = 0.02
    # While every worker process is busy there is nothing to fetch; checking for a
    # free one costs no query, so it is done often and a task starts without delay.
    busy_interval = 0.001

    def drain_events(self, connection, timeout=None):
        started = monotonic()
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                timed_out = timeout is not None and monotonic() - started >= timeout
                if timed_out or told_to_stop():
                    raise TimeoutError() from None
                busy = not any(channel.qos.can_consume() for channel in self.channels)
                sleep(self.busy_interval if busy else self.polling_interval)


def told_to_stop():
    """Whether this worker was told to stop (warm or cold): Celery's own test of its
    flags, in which 0 (an exit code) counts as set."""
    return any(
        flag is not None and flag is not False
        for flag in (worker_state.should_stop, worker_state.should_terminate)
    )
