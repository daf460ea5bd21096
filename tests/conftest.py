"""Fixtures: an app on a fresh database per test, a real SMTP server, a real worker.

The suite runs on the embedded default (SQLite, SQLite broker). With
TEST_DATABASE_URL and TEST_BROKER_URL set (scripts/test.sh sets them) it runs
on PostgreSQL and Redis instead.
"""

import functools
import os
import secrets
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from flask_migrate import upgrade
from sqlalchemy import create_engine, delete, make_url, text, update
from sqlalchemy.exc import DBAPIError
from werkzeug import security

from config import TestConfig
from harness import CHROMIUM, CHROMIUM_ARGS, free_port, served
from newsletter import create_app
from newsletter.admins import two_factor
from newsletter.bounces.listener import InboundController
from newsletter.content.models import Newsletter
from newsletter.core.settings import update as update_settings
from newsletter.extensions import db
from newsletter.sending.models import Hint
from newsletter.webhooks import outgoing_http
from tests.helpers import (
    ADMIN,
    FEED,
    PROJECT_ROOT,
    SERVER_BROKER_URL,
    SERVER_DATABASE_URL,
    log_in,
    process_env,
)
from tests.helpers.two_factor import Clock
from tests.helpers.webhooks import Receiver
from tests.smtp import SMTPServer

FIRST_NEWSLETTER = 1
FIRST_NEWSLETTER_AS_MADE = {
    "slug": "newsletter",
    "name": "The Newsletter",
    "description": "",
    "default_on": True,
    "public": True,
    "schedule": "off",
    "schedule_weekday": 0,
    "schedule_hour": 8,
    "schedule_category": None,
    "schedule_last_run_at": None,
    "tracking": "off",
}


# Markers put on by the fixtures a test uses, so `-m "not worker"` needs no list to keep.
MARKED_BY_FIXTURE = {
    "browser": "browser",
    "start_worker_for": "worker",
    "start_worker_process": "worker",
}


def pytest_collection_modifyitems(items):
    """Mark tests by what they start: a browser, a real worker (see pyproject's markers)."""
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & MARKED_BY_FIXTURE.keys():
            item.add_marker(MARKED_BY_FIXTURE[fixture])


def build_app(instance_path, **settings):
    config = type("PerTestConfig", (TestConfig,), settings)
    return create_app(config, instance_path=str(instance_path))


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, one for a file's tests: starting it costs more than a page does;
    each test opens contexts of its own."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is missing")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True, scope="session")
def quick_password_hashes():
    """Werkzeug's PBKDF2 with few rounds for the passwords tests set: scrypt as the app
    uses it costs 0.2 s a hash, and 180 tests make an admin and log in. Still a real
    hash, checked as ever (a hash names its own method), so it speeds up what the
    tests do without changing it. Found by value, wherever the module that hashes lives."""
    quick = functools.partial(security.generate_password_hash, method="pbkdf2:sha256:1000")
    ours = [
        module
        for module in list(sys.modules.values())
        if getattr(module, "__file__", None) and Path(module.__file__).is_relative_to(PROJECT_ROOT)
    ]
    with pytest.MonkeyPatch.context() as patch:
        for module in ours:
            if getattr(module, "generate_password_hash", None) is security.generate_password_hash:
                patch.setattr(module, "generate_password_hash", quick)
        yield


@pytest.fixture(scope="session")
def smtp_server():
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server):
    """The SMTP server's inbox, empty at the start of each test."""
    smtp_server.handler.reset()
    yield smtp_server.handler
    smtp_server.handler.reset()


def create_shared_extensions(server):
    """pg_trgm in ``public``, once for every session; sessions starting together take
    turns (a lock). One an older run made in its own schema is moved to ``public``: its
    indexes keep working, and dropping that schema no longer drops it (and, by
    CASCADE, every other session's trigram indexes). A server that refuses leaves the
    migration to say so."""
    try:
        with server.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(20230023)"))
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
            lives_in = connection.scalar(
                text(
                    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n"
                    " ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
                )
            )
            if lives_in != "public":
                connection.execute(text("ALTER EXTENSION pg_trgm SET SCHEMA public"))
    except DBAPIError:
        pass


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory):
    """The schema, made once per session by the real migrations.

    On PostgreSQL each test session (each pytest-xdist worker too) gets a schema of
    its own (through the URL's search_path), so two runs on one server never touch
    each other's tables. Extensions are per database: pg_trgm is made once in
    ``public``, which follows the session's schema on the search_path. Made by the
    first session's migration 0023 instead, it would land in that session's schema,
    out of the others' sight, and go when that schema is dropped.
    """
    if SERVER_DATABASE_URL:
        schema = f"test_{os.getpid()}_{secrets.token_hex(4)}"
        server = create_engine(SERVER_DATABASE_URL)
        with server.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        create_shared_extensions(server)
        url = (
            make_url(SERVER_DATABASE_URL)
            .update_query_dict({"options": f"-csearch_path={schema},public"})
            .render_as_string(hide_password=False)
        )
    else:
        template = tmp_path_factory.mktemp("template") / "newsletter.sqlite"
        url = f"sqlite:///{template}"
    app = build_app(tmp_path_factory.mktemp("migrate"), SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    yield url
    if SERVER_DATABASE_URL:
        with server.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        server.dispose()


@pytest.fixture
def unmigrated_database_url(tmp_path):
    """An empty database of its own (PostgreSQL: a new database, as the extensions the
    migrations add are per database, not per schema)."""
    if not SERVER_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'migrated.sqlite'}"
        return
    server_url = make_url(SERVER_DATABASE_URL)
    name = f"{server_url.database}_migration_{secrets.token_hex(4)}"
    server = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield server_url.set(database=name).render_as_string(hide_password=False)
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    server.dispose()


@pytest.fixture
def unmigrated_app(unmigrated_database_url, tmp_path):
    """An app on an empty database of its own, for the tests of a migration."""
    app = build_app(tmp_path / "instance", SQLALCHEMY_DATABASE_URI=unmigrated_database_url)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def database_url(migrated_database, tmp_path):
    """A fresh database for this test: a copy of the template, or emptied tables."""
    if not SERVER_DATABASE_URL:
        copy = tmp_path / "newsletter.sqlite"
        shutil.copy(migrated_database.removeprefix("sqlite:///"), copy)
        yield f"sqlite:///{copy}"
        return
    yield migrated_database
    engine = create_engine(migrated_database)
    # The rows the migrations made stay, as they were made.
    seeded = {Hint.__table__, Newsletter.__table__}
    tables = ", ".join(table.name for table in db.metadata.sorted_tables if table not in seeded)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        connection.execute(update(Hint).values(pending=False, set_at=None))
        # The first newsletter, as the migration made it; any a test added goes.
        connection.execute(delete(Newsletter).where(Newsletter.id != FIRST_NEWSLETTER))
        connection.execute(update(Newsletter).values(FIRST_NEWSLETTER_AS_MADE))
    engine.dispose()


class FakeDNS:
    """Name resolution for outgoing webhooks that asks no DNS server: numeric forms read
    as the system reads them (``0x7f000001`` is 127.0.0.1); a name in ``names`` answers
    its lists of addresses in turn, the last for good (a name that changes its
    answers: DNS rebinding); any other name does not resolve. ``asked`` lists the
    names looked up."""

    def __init__(self):
        self.names = {}
        self.asked = []

    def __call__(self, host, port):
        self.asked.append(host)
        answers = self.names.get(host)
        if answers is None:
            infos = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
            )
            return [info[4][0] for info in infos]
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.fixture(autouse=True)
def dns(monkeypatch):
    """No test reaches a real DNS server through a webhook URL: names are the test's."""
    fake = FakeDNS()
    monkeypatch.setattr(outgoing_http, "resolve", fake)
    return fake


@pytest.fixture
def app_settings(database_url, smtp_server, tmp_path):
    """What every app in this test shares: database, broker queue, SMTP server."""
    settings = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp_server.port,
        "OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    if SERVER_BROKER_URL:
        settings["CELERY_BROKER_URL"] = SERVER_BROKER_URL
        settings["CELERY_TASK_DEFAULT_QUEUE"] = f"test-{uuid.uuid4().hex}"
    return settings


@pytest.fixture
def make_app(app_settings, tmp_path):
    """Build an app on this test's database and broker; keyword arguments override config."""
    made = []

    def make(**overrides):
        app = build_app(tmp_path / "instance", **{**app_settings, **overrides})
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def feed(runner):
    """The posts of tests/data/feed.rss, imported with `import-feed`."""
    assert runner.invoke(args=["import-feed", FEED]).exit_code == 0


@pytest.fixture
def admin(runner):
    """An admin made with `create-admin`, as an operator would."""
    result = runner.invoke(args=["create-admin", ADMIN[0], "--password", ADMIN[1]])
    assert result.exit_code == 0, result.output
    assert "can log in at http://127.0.0.1:5000/admin/" in result.output


@pytest.fixture
def admin_client(admin, client):
    """The test client, logged in as that admin."""
    assert log_in(client).status_code == 302
    return client


@pytest.fixture
def without_welcome_email(app):
    """For the stories that count the emails a subscriber gets: no welcome email after the
    confirmation (it has tests of its own)."""
    with app.app_context():
        update_settings(welcome_enabled=False)


@pytest.fixture
def start_worker_for():
    """Start a real Celery worker (threads) for an app; stopped at the end of the test."""
    running = []

    def start(app, concurrency=2):
        context = start_worker(
            app.extensions["celery"],
            pool="threads",
            concurrency=concurrency,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=20,
        )
        running.append((context, context.__enter__()))

    yield start
    for context, worker in reversed(running):
        context.__exit__(None, None, None)
        # Stopped, the worker takes no more tasks, but a cold stop leaves those it runs
        # running: wait for them to end, so no email of this test lands in the next
        # one's inbox and no SMTP session outlives its server.
        worker.pool.executor.shutdown(wait=True)


@pytest.fixture
def worker(app, start_worker_for):
    start_worker_for(app)


@pytest.fixture
def site(make_app, start_worker_for):
    """The app served over real HTTP with a worker; the links it emails point back at it."""
    # The port goes into BASE_URL, which the app needs before it is built.
    port = free_port()
    app = make_app(BASE_URL=f"http://127.0.0.1:{port}")
    with app.app_context():
        # Each step waits for one more email; a welcome email would arrive in between.
        update_settings(welcome_enabled=False)
    with served(app, port):
        start_worker_for(app)
        yield app


@pytest.fixture
def start_listener():
    """The inbound listener in this process, on a free port, as `flask inbound` runs it."""
    running = []

    def start(app, lmtp=False):
        listener = InboundController(app, "127.0.0.1", free_port(), lmtp)
        listener.start()
        running.append(listener)
        return listener.port

    yield start
    for listener in running:
        listener.stop()


@pytest.fixture
def clock(monkeypatch):
    """The two-factor module's clock, which the test moves on (tests/test_units.py has a
    clock of its own, for pacing)."""
    fake = Clock()
    monkeypatch.setattr(two_factor, "time", fake)
    return fake


@pytest.fixture
def receiver():
    """A webhook receiver on this machine; the app must admit 127.0.0.0/8."""
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def start_worker_process(smtp_server, tmp_path):
    """Start `celery -A workers worker` as an operator would, configured by environment
    to share an app's database, broker queue and SMTP server. Each has a ``log`` path."""
    processes = []

    def start(app, concurrency=2, env=None, pool="prefork"):
        relay = {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(smtp_server.port)}
        env = process_env(app, **{**relay, **(env or {})})
        command = [sys.executable, "-m", "celery", "-A", "workers", "worker"]
        command += ["--pool", pool, "--concurrency", str(concurrency), "--loglevel", "info"]
        command += ["--hostname", f"w{len(processes)}@%h"]
        log = tmp_path / f"worker{len(processes)}.log"
        with open(log, "wb") as output:
            process = subprocess.Popen(
                command, env=env, cwd=PROJECT_ROOT, stdout=output, stderr=output
            )
        process.log = log
        processes.append(process)
        return process

    yield start
    for process in processes:
        # SIGTERM: a warm shutdown, which lets the tasks it runs end first.
        process.terminate()
        process.wait(30)
