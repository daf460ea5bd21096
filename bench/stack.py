"""The two stacks the benchmark runs on: the embedded default (SQLite + the
SQLite broker) and PostgreSQL + Redis. Each run gets a fresh database."""

import os
import subprocess
import sys
import time
from pathlib import Path

from config import Config
from newsletter import create_app
from newsletter.extensions import db

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/newsletter_bench"
)
# Redis by default; an amqp:// URL runs the same stack on RabbitMQ.
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13")
# Environment names and the config keys they set (as config.py reads them).
CONFIG_KEYS = {
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "CELERY_BROKER_URL": "CELERY_BROKER_URL",
    "CELERY_TASK_DEFAULT_QUEUE": "CELERY_TASK_DEFAULT_QUEUE",
    "MAIL_SERVER": "MAIL_SERVER",
    "MAIL_PORT": "MAIL_PORT",
    "SECRET_KEY": "SECRET_KEY",
    "BASE_URL": "BASE_URL",
}
QUEUE = "newsletter-bench"
STACKS = {
    "embedded": "embedded default: SQLite + SQLite broker",
    "postgres": "PostgreSQL + " + ("RabbitMQ" if BROKER_URL.startswith("amqp") else "Redis"),
}


class Stack:
    """One fresh copy of the service's state, and how to reach it."""

    def __init__(self, name, workdir, sink_port):
        self.name = name
        self.description = STACKS[name]
        self.instance = Path(workdir) / "instance"
        self.instance.mkdir(parents=True)
        self.env = {
            "INSTANCE_PATH": str(self.instance),
            "SECRET_KEY": "benchmark-secret",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(sink_port),
            "BASE_URL": "https://news.example.com",
            # Signing costs ~8 ms a message in pure Python; sign at the relay at volume.
            "DKIM_SELECTOR": "",
        }
        if name == "postgres":
            self.env["DATABASE_URL"] = POSTGRES_URL
            self.env["CELERY_BROKER_URL"] = BROKER_URL
            self.env["CELERY_TASK_DEFAULT_QUEUE"] = QUEUE
            _recreate_postgres_database(POSTGRES_URL)
            _empty_broker(BROKER_URL)
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "newsletter", "db", "upgrade"],
            cwd=PROJECT_ROOT,
            env=self.process_env(),
            check=True,
            capture_output=True,
        )
        self.app = self._make_app()

    def _make_app(self):
        values = {}
        for name, key in CONFIG_KEYS.items():
            if name in self.env:
                value = self.env[name]
                values[key] = int(value) if key == "MAIL_PORT" else value
        config = type("BenchConfig", (Config,), values)
        return create_app(config, instance_path=str(self.instance))

    def process_env(self, **extra):
        return {**os.environ, **self.env, **extra}

    def start_worker(self, stats_dir, concurrency):
        """A real Celery worker (prefork), as an operator starts one; returns when ready."""
        command = [sys.executable, "-m", "celery", "-A", "bench.worker", "worker"]
        command += ["--pool", "prefork", "--concurrency", str(concurrency)]
        command += ["--loglevel", "warning", "--without-gossip", "--without-mingle"]
        command += ["--without-heartbeat", "--hostname", f"bench-{self.name}@%h"]
        log = Path(stats_dir) / "worker.log"
        with open(log, "wb") as output:
            worker = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env=self.process_env(BENCH_STATS_DIR=str(stats_dir)),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        ready = Path(stats_dir) / "ready"
        deadline = time.monotonic() + 60
        while not ready.exists():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{log_tail(log)}")
            time.sleep(0.05)
        return worker

    def close(self):
        with self.app.app_context():
            db.engine.dispose()


def log_tail(path, lines=30):
    """The end of a log, for an error message: the log's folder is removed on the way out."""
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def available(name):
    """None if the stack can run here, or why it cannot."""
    if name != "postgres":
        return None
    try:
        _empty_broker(BROKER_URL)
        import psycopg

        psycopg.connect(_admin_dsn(POSTGRES_URL), connect_timeout=3).close()
    except Exception as error:  # any failure means "not here"
        return f"{type(error).__name__}: {error}"
    return None


def stop(process, timeout=30):
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _admin_dsn(url):
    from sqlalchemy import make_url

    parsed = make_url(url).set(drivername="postgresql", database="postgres")
    return parsed.render_as_string(hide_password=False)


def _recreate_postgres_database(url):
    import psycopg
    from sqlalchemy import make_url

    name = make_url(url).database
    with psycopg.connect(_admin_dsn(url), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def _empty_broker(url):
    """Drop what an earlier run left in the benchmark's queue."""
    if url.startswith("amqp"):
        from kombu import Connection

        with Connection(url, connect_timeout=3) as connection:
            channel = connection.default_channel
            try:
                channel.queue_purge(QUEUE)
            except connection.channel_errors:
                return  # no queue yet: nothing to drop
        return
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    client.flushdb()
    client.close()
