"""Outgoing webhooks seen from the other end: a real HTTP receiver that checks each
request's Standard Webhooks signature, and the admin's steps that point one at it."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

from newsletter.content.models import Subscription
from newsletter.core import tokens
from newsletter.extensions import db
from newsletter.subscribers.models import Subscriber
from tests.helpers import bearer, wait_until


class Receiver:
    """An HTTP server in a thread that keeps every request whose signature verifies
    with ``secret``, and answers with ``statuses`` in turn (then 200). ``hits`` counts
    every request, signed or not; with ``tls`` (a server context) it speaks HTTPS.
    Its URL names ``name``, its address by default."""

    def __init__(self, host="127.0.0.1", port=0, tls=None, name=None):
        self.secret = None
        self.statuses = []
        self.events = []
        self.forged = []
        self.hits = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.hits += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    event = Webhook(receiver.secret).verify(body, dict(self.headers))
                except WebhookVerificationError:
                    receiver.forged.append(body)
                    self.send_response(401)
                else:
                    receiver.events.append((event, {k.lower(): v for k, v in self.headers.items()}))
                    self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        self.url = f"{'https' if tls else 'http'}://{name or host}:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def types(self):
        return [event["type"] for event, _ in self.events]

    def wait_for(self, count):
        wait_until(lambda: len(self.events) >= count)
        return self.events


def add_endpoint(admin_client, receiver, events):
    """Add an endpoint for ``receiver`` through /api/v1, which tells its secret once."""
    answer = admin_client.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "events": events},
        headers=bearer(admin_client.application, "webhooks:write"),
    )
    assert answer.status_code == 201, answer.get_json()
    created = answer.get_json()
    assert created["url"] == receiver.url
    assert created["events"] == events
    assert created["secret"].startswith("whsec_")
    receiver.secret = created["secret"]
    return created


def a_pending_subscriber(app, email="reader@example.org"):
    """A subscriber who has not confirmed yet: their id and confirmation token."""
    with app.app_context():
        subscriber = Subscriber(
            email=email, signup_source="test", subscriptions=[Subscription(newsletter_id=1)]
        )
        db.session.add(subscriber)
        db.session.commit()
        return subscriber.id, tokens.make_token(tokens.CONFIRM, subscriber)
