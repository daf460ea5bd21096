"""``/healthz``: does the database answer, does the broker answer."""

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from newsletter.extensions import db

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


@bp.get("/healthz")
def healthz():
    state = {"database": database_state(), "broker": broker_state()}
    healthy = all(value == "ok" for value in state.values())
    return jsonify(status="ok" if healthy else "degraded", **state), 200 if healthy else 503
