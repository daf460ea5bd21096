"""The admins' JSON API, /api/v1: outgoing webhooks for now."""

from flask import Blueprint, jsonify, request
from flask_login import current_user

from newsletter import outgoing
from newsletter.web.api import json_error

bp = Blueprint("admin_api", __name__, url_prefix="/api/v1")


@bp.before_request
def require_api_key():
    """Who may call /api/v1. For now: a logged-in admin's session; the API-key work
    replaces this function with a check of an ``Authorization: Bearer`` key.

    The blueprint is exempt from CSRF tokens. A session is still safe here because
    every route takes only a JSON body: another site's page cannot post
    application/json without a CORS preflight, which this app never grants."""
    if not current_user.is_authenticated:
        response = json_error("Log in as an admin (or send an API key) to use this API.", 401)
        response[0].headers["WWW-Authenticate"] = "Bearer"
        return response
    return None


@bp.post("/webhooks")
def add_webhook():
    """Add an endpoint; the answer carries its secret, which is never shown again."""
    data = request.get_json(silent=True)
    problem = malformed(data)
    if problem:
        return json_error(problem, 400)
    try:
        endpoint = outgoing.add_endpoint(data["url"], data["events"])
    except outgoing.InvalidEndpoint as error:
        return json_error(str(error), 422)
    answer = {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.event_list,
        "secret": endpoint.secret,
    }
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response, 201


def malformed(data: object) -> str | None:
    """What is wrong with the shape of a new endpoint's JSON, if anything."""
    if not isinstance(data, dict):
        return 'Send a JSON object, e.g. {"url": "https://…", "events": ["digest.sent"]}.'
    if not isinstance(data.get("url"), str):
        return '"url" is required and must be a string.'
    events = data.get("events")
    if not isinstance(events, list) or not all(isinstance(name, str) for name in events):
        return '"events" is required and must be a list of event names.'
    return None
