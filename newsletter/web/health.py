"""``/healthz``: does the database answer, does the broker answer, did the last
session with the relay open (as the workers found it: nothing is sent from here)."""

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from newsletter.extensions import db
from newsletter.mail import relay, relay_trust

bp = Blueprint("health", __name__)


def database_state():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as error:  # any failure here is the answer, not a crash
        return f"error: {type(error).__name__}"
    return "ok"


def broker_state():
    celery = current_app.extensions["celery"]
    try:
        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
    except Exception as error:  # any failure here is the answer, not a crash
        return f"error: {type(error).__name__}"
    return "ok"


def relay_state():
    """The relay's state: an error saying why while the workers cannot open a session
    with it (its certificate, its login, no answer), else "ok". Read from what they
    recorded, not checked here, so /healthz stays fast."""
    if relay.uses_outbox():
        return "ok"
    try:
        failure = relay_trust.last_failure(relay.relay_name())
    except Exception as error:  # any failure here is the answer, not a crash
        return f"error: {type(error).__name__}"
    return f"error: {failure}" if failure else "ok"


@bp.get("/healthz")
def healthz():
    state = {"database": database_state(), "broker": broker_state(), "relay": relay_state()}
    healthy = all(value == "ok" for value in state.values())
    return jsonify(status="ok" if healthy else "degraded", **state), 200 if healthy else 503
