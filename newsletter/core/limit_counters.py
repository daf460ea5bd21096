"""Rate-limit counters in a SQLite file: the embedded default's shared store.

Flask-Limiter keeps its counters through the ``limits`` library, in memory, Redis,
Memcached or MongoDB. Memory belongs to one process, so two gunicorn processes would
each allow a client the whole limit. This store, registered for ``sqlite://`` URIs,
lets every web process on the host count in one file with no server to run. It
serves the fixed-window strategy, Flask-Limiter's default.
"""

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import ClassVar

from limits.storage import Storage

# Expired windows are swept once in this many increments.
SWEEP_EVERY = 1000
# Counts a hit; a window that has run out starts again from it.
HIT = """
INSERT INTO counter (key, count, expires) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN expires <= ? THEN excluded.count ELSE count + excluded.count END,
    expires = CASE WHEN expires <= ? THEN excluded.expires ELSE expires END
RETURNING count
"""


def uri(path: Path) -> str:
    return f"sqlite:///{path}"


class SQLiteCounters(Storage):
    # limits annotates it as an instance attribute, though its registry reads it off the class.
    STORAGE_SCHEME: ClassVar[list[str]] = ["sqlite"]  # type: ignore[misc]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options):
        self.path = uri.removeprefix("sqlite:///")
        self.local = threading.local()
        self.increments = 0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self):
        return sqlite3.Error

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        self.increments += 1
        if self.increments % SWEEP_EVERY == 0:
            self._connection().execute("DELETE FROM counter WHERE expires <= ?", (now,))
        (count,) = self._connection().execute(HIT, (key, amount, now + expiry, now, now)).fetchone()
        return count

    def get(self, key: str) -> int:
        row = self._live(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._live(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        try:
            self._connection().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        return self._connection().execute("DELETE FROM counter").rowcount

    def clear(self, key: str) -> None:
        self._connection().execute("DELETE FROM counter WHERE key = ?", (key,))

    def _live(self, key: str) -> tuple[int, float] | None:
        return (
            self._connection()
            .execute(
                "SELECT count, expires FROM counter WHERE key = ? AND expires > ?",
                (key, time.time()),
            )
            .fetchone()
        )

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, made anew in a forked process."""
        if getattr(self.local, "pid", None) != os.getpid():
            # Autocommit: each statement is its own short write.
            connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            # Counters need not survive a power cut; an fsync per hit would cost more.
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS counter "
                "(key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires REAL NOT NULL)"
            )
            self.local.connection, self.local.pid = connection, os.getpid()
        return self.local.connection
