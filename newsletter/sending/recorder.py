"""Recording each accepted message as sent, at once, without waiting on the database.

A worker killed between the relay's "250 OK" and this record sends that message
again; nothing else. So every accepted message is written as sent before the
next message can be accepted:

- on PostgreSQL, the UPDATE and its COMMIT go out in psycopg's pipeline mode the
  moment the relay accepts, without waiting for the answer; the answer is read
  while the relay works on the next message's envelope (``settle``);
- on SQLite, the database is a local file: the write is a local call.

Either way the record goes through a connection of its own, raw DB-API, with a
statement made once: the ORM would cost more than the write.
"""

from contextlib import contextmanager
from datetime import datetime
from typing import Protocol

from newsletter.extensions import db
from newsletter.models import utcnow


class Recorder(Protocol):
    def sent(self, row_id: int, message_id: str) -> None: ...

    def settle(self) -> None: ...


@contextmanager
def recorder_for(table: str, finished_column: str, keeps_message_id: bool):
    """A Recorder for rows of ``table``; ``finished_column`` gets the time sent."""
    raw = db.engine.raw_connection()
    driver = raw.driver_connection
    columns = f"status = 'sent', {finished_column} = %s, lease_until = NULL"
    if keeps_message_id:
        columns += ", message_id = %s"
    statement = f"UPDATE {table} SET {columns} WHERE id = %s"
    try:
        if db.engine.dialect.name == "postgresql":
            with _autocommit(driver), driver.pipeline() as pipeline:
                yield PipelinedRecorder(driver, pipeline, statement, keeps_message_id)
        else:
            yield LocalRecorder(driver, statement.replace("%s", "?"), keeps_message_id)
    finally:
        raw.close()


@contextmanager
def _autocommit(driver):
    """Transactions spelled out in the pipeline, so that each COMMIT runs as it
    arrives instead of at the pipeline's next sync."""
    driver.autocommit = True
    try:
        yield
    finally:
        driver.autocommit = False


class PipelinedRecorder:
    def __init__(self, driver, pipeline, statement: str, keeps_message_id: bool):
        self.cursor = driver.cursor()
        self.pipeline = pipeline
        self.statement = statement
        self.keeps_message_id = keeps_message_id
        self.unsettled = False

    def sent(self, row_id: int, message_id: str) -> None:
        params = _params(utcnow(), row_id, message_id, self.keeps_message_id)
        self.cursor.execute("BEGIN")
        self.cursor.execute(self.statement, params)
        self.cursor.execute("COMMIT")
        self.unsettled = True

    def settle(self) -> None:
        """Wait until every record sent so far is committed."""
        if self.unsettled:
            self.pipeline.sync()
            self.unsettled = False


class LocalRecorder:
    def __init__(self, driver, statement: str, keeps_message_id: bool):
        self.driver = driver
        self.statement = statement
        self.keeps_message_id = keeps_message_id

    def sent(self, row_id: int, message_id: str) -> None:
        # Stored the way SQLAlchemy stores a DateTime on SQLite.
        now = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
        self.driver.execute(self.statement, _params(now, row_id, message_id, self.keeps_message_id))
        self.driver.commit()

    def settle(self) -> None:
        """Each record is committed as it is made."""


def _params(now: datetime | str, row_id: int, message_id: str, keeps_message_id: bool):
    return (now, message_id, row_id) if keeps_message_id else (now, row_id)
