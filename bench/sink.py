"""A local SMTP sink that counts what it accepts.

Postfix's ``smtp-sink`` (C, from Debian's postfix package) when it is installed;
otherwise an aiosmtpd sink in count-only mode, in a process of its own. Both
print a running count (``mesg=N``) that a reading thread turns into "how many,
and when the last one was accepted".
"""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

from harness import free_port

READ_EVERY = 0.005


class Sink:
    def __init__(self, prefer_smtp_sink=True):
        self.port = free_port()
        self.count = 0
        self.last_at = None
        # When the count, from ``mark_from`` on, first reached 1 and each multiple of
        # ``mark_every`` (see ``mark``).
        self.mark_every = None
        self.mark_from = 0
        self.marks = {}
        self._changed = threading.Condition()
        binary = shutil.which("smtp-sink") or (
            "/usr/sbin/smtp-sink" if os.path.exists("/usr/sbin/smtp-sink") else None
        )
        if binary and prefer_smtp_sink:
            self.kind = "postfix smtp-sink"
            command = [binary, "-c"]
            if os.geteuid() == 0:
                command += ["-u", "nobody"]
            command += [f"127.0.0.1:{self.port}", "256"]
        else:
            self.kind = "aiosmtpd (count only)"
            command = [sys.executable, "-m", "bench.sink", str(self.port)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._read_thread = threading.Thread(target=self._read, daemon=True)
        self._read_thread.start()
        self._wait_listening()

    def _wait_listening(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the SMTP sink ({self.kind}) did not start")

    def _read(self):
        buffer = b""
        stream = self.process.stdout
        while chunk := stream.read1(65536):
            now = time.perf_counter()
            # The sink prints a line per message; reading them a few at a time keeps
            # this thread from taking CPU from what is measured (moments stay within
            # READ_EVERY of the truth).
            time.sleep(READ_EVERY)
            buffer += chunk
            *records, buffer = buffer.replace(b"\n", b"\r").split(b"\r")
            counts = [_count(record) for record in records]
            counts = [count for count in counts if count is not None]
            if counts and counts[-1] != self.count:
                with self._changed:
                    self._mark(self.count, counts[-1], now)
                    self.count, self.last_at = counts[-1], now
                    self._changed.notify_all()

    def mark(self, every):
        """From now on, note when the first message arrives and each ``every`` after it."""
        with self._changed:
            self.mark_every, self.mark_from, self.marks = every, self.count, {}

    def _mark(self, before, after, now):
        if not self.mark_every:
            return
        before, after = before - self.mark_from, after - self.mark_from
        if before < 1 <= after:
            self.marks[1] = now
        for step in range(before // self.mark_every + 1, after // self.mark_every + 1):
            self.marks[step * self.mark_every] = now

    def wait_for(self, count, timeout, idle_timeout=None):
        """Wait until ``count`` messages arrived in all; returns the time the last one did.

        Gives up after ``timeout`` seconds, or after ``idle_timeout`` seconds in which
        nothing arrived; returns None then.
        """
        started = time.perf_counter()
        deadline = started + timeout
        with self._changed:
            while self.count < count:
                now = time.perf_counter()
                idle_since = max(self.last_at or started, started)
                if now > deadline or (idle_timeout and now - idle_since > idle_timeout):
                    return None
                self._changed.wait(0.2)
            return self.last_at

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._read_thread.join(5)
        self.process.stdout.close()


def _count(record):
    for field in record.split():
        if field.startswith(b"mesg="):
            return int(field[5:])
    return None


class CountingHandler:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        sys.stdout.write(f"mesg={self.count}\r")
        sys.stdout.flush()
        return "250 OK"


def serve(port):
    from aiosmtpd.controller import Controller

    controller = Controller(CountingHandler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
