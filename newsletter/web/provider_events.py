"""Provider events: what mail providers post to /webhooks/… of the mail they carried
for us (incoming; our own outgoing webhooks are newsletter/webhooks/). Each provider's
URL answers 404 until its setting is set; the proof and the reading are in
newsletter.bounces.providers."""

import logging

from flask import Blueprint, abort, current_app, jsonify, request

from newsletter.bounces.providers import events, mailgun, postmark, sendgrid, ses

log = logging.getLogger(__name__)

bp = Blueprint("provider_events", __name__, url_prefix="/webhooks")


@bp.post("/mailgun")
def mailgun_events():
    signing_key = setting("MAILGUN_WEBHOOK_SIGNING_KEY")
    return answer(mailgun.SOURCE, mailgun.receive, request.get_data(), signing_key)


@bp.post("/ses")
def ses_events():
    topic_arns = setting("SES_WEBHOOK_TOPIC_ARN").replace(",", " ").split()
    return answer(ses.SOURCE, ses.receive, request.get_data(), topic_arns)


@bp.post("/postmark")
def postmark_events():
    expected = (setting("POSTMARK_WEBHOOK_USER"), setting("POSTMARK_WEBHOOK_PASSWORD"))
    auth = request.authorization
    credentials = (auth.username, auth.password) if auth and auth.type == "basic" else None
    return answer(postmark.SOURCE, postmark.receive, request.get_data(), credentials, expected)


@bp.post("/sendgrid")
def sendgrid_events():
    public_key = setting("SENDGRID_WEBHOOK_PUBLIC_KEY")
    signature = request.headers.get(sendgrid.SIGNATURE_HEADER)
    timestamp = request.headers.get(sendgrid.TIMESTAMP_HEADER)
    return answer(
        sendgrid.SOURCE, sendgrid.receive, request.get_data(), signature, timestamp, public_key
    )


def setting(name: str) -> str:
    """The provider's setting; without it its URL is not there (404)."""
    value = current_app.config[name]
    if not value:
        abort(404)
    return value


def answer(source, receive, *arguments):
    """What the provider's events did (200), or why the request was refused."""
    try:
        tally = receive(*arguments)
    except events.Refused as refusal:
        log.warning(
            "%s webhook from %s refused (%d): %s",
            source,
            request.remote_addr,
            refusal.status,
            refusal,
        )
        response = jsonify(error=str(refusal))
        response.status_code = refusal.status
        if isinstance(refusal, events.Unauthenticated):
            response.headers["WWW-Authenticate"] = 'Basic realm="webhooks"'
        return response
    log.info("%s webhook from %s: %s", source, request.remote_addr, tally)
    return jsonify(tally.as_dict())
