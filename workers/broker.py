"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file.

Three rough edges of the stock transport are smoothed here:
- kombu hands every transport option to ``create_engine``, so the polling
  interval cannot be set as an option; this class sets it, so that a task
  starts within 20 ms instead of a whole second (an idle poll costs ~0.1 ms);
- two processes starting at once on a new file can both create the queue row,
  and the loser died of the IntegrityError;
- delivered messages were only marked invisible and kept forever; here the row
  is deleted when it is taken (the stock transport cannot give an invisible row
  back after a crash either, which is why the database, not the broker, records
  the work to do).
WAL mode and the busy timeout come from ``newsletter.extensions.tune_sqlite``.
"""

from kombu.transport import sqlalchemy
from kombu.transport.virtual import Empty
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError


class EmbeddedChannel(sqlalchemy.Channel):
    def _get_or_create(self, queue):
        try:
            return super()._get_or_create(queue)
        except IntegrityError:
            self.session.rollback()
            return super()._get_or_create(queue)

    def _get(self, queue):
        queue_row = self._get_or_create(queue)
        message_cls = self.message_cls
        self.session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            message = (
                self.session.query(message_cls)
                .filter(message_cls.queue_id == queue_row.id, message_cls.visible.is_(True))
                .order_by(message_cls.sent_at, message_cls.id)
                .first()
            )
            if message is None:
                raise Empty()
            payload = message.payload
            self.session.delete(message)
            return loads(bytes_to_str(payload))
        finally:
            self.session.commit()


class EmbeddedTransport(sqlalchemy.Transport):
    Channel = EmbeddedChannel
    polling_interval = 0.02
