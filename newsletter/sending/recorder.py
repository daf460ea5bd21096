"""Recording each accepted message as sent, at once, without waiting on the database.

A worker killed between the relay's "250 OK" and this record sends that message
again; nothing else. So every accepted message is written as sent before the
next message can be accepted:

The record writes only the time sent (and the Message-ID), columns no index
covers: PostgreSQL updates the row in place (a HOT update) and SQLite rewrites one
page. The row's status follows at the end of the batch, in one statement for all;
claims pass over rows with a time sent, and a row whose worker died before its
status followed is settled when its lease has run out (outcome_writer.settle_stragglers).

- on PostgreSQL, the UPDATE goes out through libpq's asynchronous interface the
  moment the relay accepts, as a prepared statement in its own implicit
  transaction, and its answer is read (``settle``) only after the next message
  is built, just before that message's body goes out;
- on SQLite, the database is a local file: the write is a local call.

Either way the record goes through a connection of its own with a statement made
once: the ORM would cost more than the write.
"""

import select
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import psycopg
from psycopg import pq

from newsletter.core.models import utcnow
from newsletter.extensions import db

PREPARED_NAME = b"newsletter_record_sent"


class RecordFailed(RuntimeError):
    """A sent message could not be recorded: the batch stops, its rows stay leased,
    and once the lease runs out another worker takes them (this one message may
    then go out twice)."""


class Recorder(Protocol):
    def sent(self, row_id: int, message_id: str) -> None: ...

    def settle(self) -> None: ...


@contextmanager
def recorder_for(table: str, sent_column: str, keeps_message_id: bool) -> Iterator[Recorder]:
    """A Recorder for rows of ``table``; ``sent_column`` gets the time sent."""
    raw = db.engine.raw_connection()
    driver = raw.driver_connection
    try:
        if driver is None:
            # Only a connection the pool has invalidated has none.
            raise RecordFailed("the database connection was invalidated")
        if db.engine.dialect.name == "postgresql":
            recorder = PostgresRecorder(driver, table, sent_column, keeps_message_id)
            try:
                yield recorder
            finally:
                recorder.close()
        else:
            yield LocalRecorder(driver, table, sent_column, keeps_message_id)
    finally:
        raw.close()


class PostgresRecorder:
    """Records through libpq directly: psycopg's own layers cost more than the write.

    The records commit asynchronously (PostgreSQL's ``synchronous_commit = off``):
    the server answers before the WAL reaches the disk, so a record waits on no
    disk flush. A killed worker loses nothing by it, since the commit has reached
    the server; a crash of the server itself may lose the last fraction of a
    second of records, whose messages then go out again.
    """

    def __init__(
        self, driver: psycopg.Connection, table: str, sent_column: str, keeps_message_id: bool
    ) -> None:
        # A pool's liveness ping may have left a read transaction open.
        driver.rollback()
        self.pgconn = driver.pgconn
        self.keeps_message_id = keeps_message_id
        self.unsettled = False
        # The server stamps the time: one parameter less to make and send per record.
        columns = f"{sent_column} = timezone('UTC', statement_timestamp())"
        if keeps_message_id:
            columns += ", message_id = $2"
        statement = f"UPDATE {table} SET {columns} WHERE id = $1"
        self._check(self.pgconn.exec_(b"SET synchronous_commit = off"))
        self._check(self.pgconn.prepare(PREPARED_NAME, statement.encode()))

    def sent(self, row_id: int, message_id: str) -> None:
        params = [b"%d" % row_id]
        if self.keeps_message_id:
            params.append(message_id.encode())
        try:
            self.pgconn.send_query_prepared(PREPARED_NAME, params)
        except psycopg.Error as error:
            raise RecordFailed(str(error)) from error
        self.unsettled = True

    def settle(self) -> None:
        """Wait until every record sent so far is committed (it usually is already)."""
        if not self.unsettled:
            return
        self.unsettled = False
        failure = None
        try:
            self._wait_for_answer()
            while (result := self.pgconn.get_result()) is not None:
                if result.status != pq.ExecStatus.COMMAND_OK:
                    failure = result.error_message.decode("utf-8", "replace")
        except psycopg.Error as error:
            failure = str(error)
        if failure:
            raise RecordFailed(failure)

    def _wait_for_answer(self) -> None:
        """Wait in select(), which lets other threads of the process run, not in libpq,
        which would hold the GIL all the while (a worker with a thread pool would stop)."""
        while True:
            self.pgconn.consume_input()
            if not self.pgconn.is_busy():
                return
            select.select([self.pgconn.socket], [], [])

    def close(self) -> None:
        try:
            self.settle()
        finally:
            self._check(self.pgconn.exec_(b"DEALLOCATE " + PREPARED_NAME))
            self._check(self.pgconn.exec_(b"RESET synchronous_commit"))

    @staticmethod
    def _check(result: pq.abc.PGresult) -> None:
        if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            raise RecordFailed(result.error_message.decode("utf-8", "replace"))


class LocalRecorder:
    def __init__(
        self, driver: sqlite3.Connection, table: str, sent_column: str, keeps_message_id: bool
    ) -> None:
        self.driver = driver
        self.keeps_message_id = keeps_message_id
        columns = f"{sent_column} = ?, message_id = ?" if keeps_message_id else f"{sent_column} = ?"
        self.statement = f"UPDATE {table} SET {columns} WHERE id = ?"

    def sent(self, row_id: int, message_id: str) -> None:
        # Stored the way SQLAlchemy stores a DateTime on SQLite.
        now = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
        params = (now, message_id, row_id) if self.keeps_message_id else (now, row_id)
        try:
            self.driver.execute(self.statement, params)
            self.driver.commit()
        except sqlite3.Error as error:
            raise RecordFailed(str(error)) from error

    def settle(self) -> None:
        """Each record is committed as it is made."""
