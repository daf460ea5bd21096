"""Operating the service: health, schema, secret key, embedded defaults."""

import time
from pathlib import Path

import pytest
from celery.worker import state as worker_state

from config import TestConfig
from newsletter import create_app


def test_healthz_reports_database_broker_and_relay(client):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json == {"status": "ok", "database": "ok", "broker": "ok", "relay": "ok"}


@pytest.mark.slow
def test_healthz_says_which_part_is_down(make_app):
    broker_down = make_app(CELERY_BROKER_URL="redis://127.0.0.1:1/0").test_client().get("/healthz")
    assert broker_down.status_code == 503
    assert broker_down.json["database"] == "ok"
    assert broker_down.json["broker"].startswith("error")

    database_down = (
        make_app(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://nobody@127.0.0.1:1/none")
        .test_client()
        .get("/healthz")
    )
    assert database_down.status_code == 503
    assert database_down.json["database"].startswith("error")


def test_db_upgrade_command_is_idempotent(runner):
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output


def test_embedded_default_keeps_everything_in_the_instance_folder(tmp_path):
    class Embedded(TestConfig):
        SECRET_KEY = None
        SQLALCHEMY_DATABASE_URI = None
        CELERY_BROKER_URL = None
        OUTBOX_DIR = None
        RATELIMIT_STORAGE_URI = None

    first = create_app(Embedded, instance_path=str(tmp_path))
    second = create_app(Embedded, instance_path=str(tmp_path))
    key = first.config["SECRET_KEY"]
    assert len(key) == 64
    assert second.config["SECRET_KEY"] == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert first.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'newsletter.sqlite'}"
    assert first.config["CELERY_BROKER_URL"] == f"sqlite:///{tmp_path / 'broker.sqlite'}"
    assert Path(first.config["OUTBOX_DIR"]) == tmp_path / "outbox"
    assert first.config["RATELIMIT_STORAGE_URI"] == f"sqlite:///{tmp_path / 'limits.sqlite'}"


def test_secret_key_list_signs_with_the_first_and_verifies_with_all(make_app):
    app = make_app(SECRET_KEY="newest, older ,oldest")
    assert app.config["SECRET_KEY"] == "newest"
    assert app.config["SECRET_KEY_FALLBACKS"] == ["older", "oldest"]


def test_unknown_pages_and_methods_get_a_clear_page(client):
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert b"404 Not Found" in missing.data
    assert client.get("/subscribe").status_code == 405


def test_an_idle_worker_told_to_stop_stops_waiting_for_tasks_at_once(make_app, monkeypatch):
    """Ctrl-C or SIGTERM sets Celery's flag; the embedded broker's poll used to go on for
    the rest of Celery's 2-second wait and one more (a worker lingered 4 s)."""
    celery = make_app(CELERY_BROKER_URL=None).extensions["celery"]
    # What a warm shutdown sets: its exit code, 0.
    monkeypatch.setattr(worker_state, "should_stop", 0)
    with celery.connection() as connection:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            connection.drain_events(timeout=60)
    assert time.monotonic() - started < 10
