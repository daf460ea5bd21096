"""The tutorial pattern, as a baseline: one Celery task per email, each building
its message with Flask-Mail (the stdlib ``email`` package), signing its own
token and opening its own SMTP connection (as the service opens its own, verified)."""

from celery import shared_task
from flask import current_app, render_template
from flask_mail import Connection, Message

from newsletter.content.models import Digest
from newsletter.core import tokens
from newsletter.extensions import db
from newsletter.mail import digest as digest_mail
from newsletter.mail import relay
from newsletter.subscribers.models import Subscriber


@shared_task(name="bench.tutorial_send")
def send_one(digest_id, subscriber_id):
    digest = db.session.get(Digest, digest_id)
    subscriber = db.session.get(Subscriber, subscriber_id)
    base_url = current_app.config["BASE_URL"]
    links = {
        f"{purpose}_url": f"{base_url}/{purpose}/"
        + tokens.make_token_for(purpose, subscriber.token_nonce)
        for purpose in (tokens.UNSUBSCRIBE, tokens.PREFERENCES)
    }
    # What the service's templates are rendered with, built again for every email.
    context = digest_mail.context(digest, links)
    message = Message(
        digest.subject,
        recipients=[subscriber.email],
        body=render_template("email/digest.txt", **context),
        html=render_template("email/digest.html", **context),
        extra_headers={
            "List-Unsubscribe": f"<{links['unsubscribe_url']}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    with VerifiedConnection(current_app.extensions["mail"]) as connection:
        connection.send(message)


class VerifiedConnection(Connection):
    """Flask-Mail's connection, opened by the service's ``relay.open_session``:
    Flask-Mail's own checks no certificate and would send the password to anyone."""

    def configure_host(self):
        return relay.open_session()
