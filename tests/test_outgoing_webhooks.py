"""Outgoing webhooks: admins add an endpoint through /api/v1 and get its secret once; a
real worker posts each event to a real HTTP receiver, which checks the Standard
Webhooks signature with that secret; failures are retried; a dead endpoint slows
nobody."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from harness import csrf_token, free_port
from newsletter import digests, feedback, newsletters, posts, subscriptions, tokens
from newsletter.extensions import db
from newsletter.mail import return_path
from newsletter.models import (
    FeedbackKind,
    Subscriber,
    SubscriberStatus,
    Subscription,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests.helpers import add_reader, add_readers, wait_until, wait_until_sent
from workers.tasks import start_digest


class Receiver:
    """An HTTP server in a thread that keeps every request whose signature verifies
    with ``secret``, and answers with ``statuses`` in turn (then 200)."""

    def __init__(self):
        self.secret = None
        self.statuses = []
        self.events = []
        self.forged = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def types(self):
        return [event["type"] for event, _ in self.events]

    def wait_for(self, count):
        wait_until(lambda: len(self.events) >= count)
        return self.events


@pytest.fixture
def app(make_app):
    # Retries come quickly here; the defaults wait 30 s, doubling.
    return make_app(WEBHOOK_RETRY_BASE_SECONDS=0.2, WEBHOOK_MAX_ATTEMPTS=3)


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


def add_endpoint(admin_client, receiver, events):
    answer = admin_client.post("/api/v1/webhooks", json={"url": receiver.url, "events": events})
    assert answer.status_code == 201, answer.get_json()
    created = answer.get_json()
    assert created["url"] == receiver.url
    assert created["events"] == events
    assert created["secret"].startswith("whsec_")
    receiver.secret = created["secret"]
    return created


def a_pending_reader(app, email="reader@example.org"):
    with app.app_context():
        subscriber = Subscriber(
            email=email, signup_source="test", subscriptions=[Subscription(newsletter_id=1)]
        )
        db.session.add(subscriber)
        db.session.commit()
        return subscriber.id, tokens.make_token(tokens.CONFIRM, subscriber)


def deliveries(app):
    with app.app_context():
        columns = WebhookDelivery.__table__.columns
        rows = db.session.execute(select(*columns).order_by(WebhookDelivery.id)).all()
        db.session.rollback()
        return rows


def test_confirm_and_unsubscribe_reach_an_endpoint_signed_and_no_other(
    app, admin_client, receiver, worker
):
    add_endpoint(admin_client, receiver, ["subscriber.confirmed", "subscriber.unsubscribed"])
    digests_only = Receiver()
    add_endpoint(admin_client, digests_only, ["digest.sent"])
    subscriber_id, token = a_pending_reader(app)

    with app.app_context():
        subscriptions.confirm(token)
        subscriber = db.session.get(Subscriber, subscriber_id)
        subscriptions.unsubscribe(tokens.make_token(tokens.UNSUBSCRIBE, subscriber))

    (confirmed, headers), (unsubscribed, _) = receiver.wait_for(2)
    assert receiver.types() == ["subscriber.confirmed", "subscriber.unsubscribed"]
    assert confirmed["data"] == {"subscriber_id": subscriber_id, "email": "reader@example.org"}
    assert unsubscribed["data"]["email"] == "reader@example.org"
    assert confirmed["timestamp"].endswith("Z")
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-signature"].startswith("v1,")
    assert receiver.forged == []
    time.sleep(0.3)
    assert digests_only.events == []
    assert {row.status for row in deliveries(app)} == {"sent"}
    digests_only.server.shutdown()
    digests_only.server.server_close()


def test_leaving_one_newsletter_is_posted_with_its_slug_and_the_last_one_says_so(
    app, admin_client, receiver, worker
):
    add_endpoint(admin_client, receiver, ["subscriber.unsubscribed"])
    with app.app_context():
        breaking = newsletters.create("breaking", "Breaking news").id
    subscriber_id, nonce = add_reader(app, "reader@example.org", [1, breaking])
    with app.app_context():
        for newsletter_id in (breaking, 1):
            subscriptions.unsubscribe(
                tokens.make_token_for(tokens.UNSUBSCRIBE, nonce, newsletter_id)
            )

    # Two events, which may arrive in either order.
    posted = {event["data"]["newsletter"]: event for event, _ in receiver.wait_for(2)}
    assert receiver.types() == ["subscriber.unsubscribed"] * 2
    assert posted["breaking"]["data"] == {
        "subscriber_id": subscriber_id,
        "email": "reader@example.org",
        "newsletter": "breaking",
        "status": "confirmed",
    }
    assert posted["newsletter"]["data"]["status"] == "unsubscribed"


@pytest.mark.parametrize(
    ("kind", "event_type", "status"),
    [
        (FeedbackKind.HARD_BOUNCE, "subscriber.bounced", SubscriberStatus.BOUNCED),
        (FeedbackKind.COMPLAINT, "subscriber.complained", SubscriberStatus.COMPLAINED),
    ],
)
@pytest.mark.usefixtures("worker")
def test_a_bounce_or_complaint_that_changes_the_status_is_posted(
    app, admin_client, receiver, kind, event_type, status
):
    add_endpoint(admin_client, receiver, ["subscriber.bounced", "subscriber.complained"])
    add_readers(app, 1)
    with app.app_context():
        # A report names its reader by what we signed: here the Message-ID it quotes.
        nonce = db.session.scalar(select(Subscriber.token_nonce))
        message_id = return_path.message_id(nonce, return_path.DIGEST, 1, "localhost")
        report = feedback.Report(kind=kind, source="dsn", message_id=message_id, status="5.1.1")
        feedback.record(report)
        # The same reader again changes nothing, and announces nothing.
        feedback.record(report)
        assert db.session.scalar(select(Subscriber.status)) == status

    event, _ = receiver.wait_for(1)[0]
    assert event["type"] == event_type
    assert event["data"]["email"] == "reader0@example.org"
    time.sleep(0.3)
    assert len(receiver.events) == 1


def test_a_digest_sent_is_posted_with_its_count(app, admin_client, receiver, smtp, worker):
    add_endpoint(admin_client, receiver, ["digest.sent"])
    add_readers(app, 3)
    with app.app_context():
        posts.save_post(None, "Monday", "https://news.example/monday", "")
        digest_id = digests.create_digest("Monday").id
        digests.schedule(digest_id)
    start_digest.delay(digest_id)
    wait_until_sent(app, digest_id)

    event, _ = receiver.wait_for(1)[0]
    assert event["type"] == "digest.sent"
    assert event["data"] == {"digest_id": digest_id, "subject": "Monday", "sent_count": 3}


def test_a_failed_delivery_is_retried_until_the_endpoint_takes_it(
    app, admin_client, receiver, worker
):
    add_endpoint(admin_client, receiver, ["subscriber.confirmed"])
    receiver.statuses = [500]
    _, token = a_pending_reader(app)
    with app.app_context():
        subscriptions.confirm(token)

    first, second = receiver.wait_for(2)
    # The same message both times, so that a receiver can drop a repeat.
    assert first[1]["webhook-id"] == second[1]["webhook-id"]
    wait_until(lambda: deliveries(app)[0].status == "sent")
    (delivery,) = deliveries(app)
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (2, 200, None)
    with app.app_context():
        endpoint = db.session.scalar(select(WebhookEndpoint))
        assert (endpoint.last_status, endpoint.last_error) == (200, None)
        assert endpoint.last_delivery_at is not None


def test_a_dead_endpoint_slows_no_sign_up_and_ends_failed(app, admin_client, smtp, worker):
    answer = admin_client.post(
        "/api/v1/webhooks",
        json={"url": f"http://127.0.0.1:{free_port()}/", "events": ["subscriber.confirmed"]},
    )
    assert answer.status_code == 201
    sign_up_started = time.monotonic()
    assert app.test_client().post("/subscribe", data={"email": "new@example.org"}).status_code
    _, token = a_pending_reader(app)
    with app.app_context():
        subscriptions.confirm(token)
    assert time.monotonic() - sign_up_started < 1

    wait_until(lambda: deliveries(app)[0].status == "failed")
    (delivery,) = deliveries(app)
    assert delivery.attempts == 3
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("No answer")
    page = admin_client.get("/admin/webhooks").get_data(as_text=True)
    assert "No answer" in page


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("not json", 400),
        ({"events": ["digest.sent"]}, 400),
        ({"url": "https://example.com/", "events": "digest.sent"}, 400),
        ({"url": "ftp://example.com/", "events": ["digest.sent"]}, 422),
        ({"url": "https://user:pw@example.com/", "events": ["digest.sent"]}, 422),
        ({"url": "https://example.com/" + "a" * 2000, "events": ["digest.sent"]}, 422),
        ({"url": "https:///nohost", "events": ["digest.sent"]}, 422),
        ({"url": "https://example.com/", "events": []}, 422),
        ({"url": "https://example.com/", "events": ["subscriber.erased"]}, 422),
    ],
)
def test_bad_urls_and_events_are_refused_with_a_reason(admin_client, body, status):
    if isinstance(body, str):
        answer = admin_client.post("/api/v1/webhooks", data=body, content_type="text/plain")
    else:
        answer = admin_client.post("/api/v1/webhooks", json=body)
    assert answer.status_code == status
    assert answer.get_json()["error"]


def test_only_an_admin_may_add_an_endpoint(client):
    answer = client.post("/api/v1/webhooks", json={"url": "https://example.com/", "events": []})
    assert answer.status_code == 401
    assert answer.get_json()["error"]
    assert client.get("/admin/webhooks").status_code == 302


def test_admins_add_list_and_deactivate_endpoints_on_the_admin_page(app, admin_client):
    page = admin_client.get("/admin/webhooks")
    added = admin_client.post(
        "/admin/webhooks",
        data={
            "csrf_token": csrf_token(page),
            "url": "https://hooks.example/newsletter",
            "events": ["digest.sent", "subscriber.bounced"],
        },
    )
    html = added.get_data(as_text=True)
    assert added.status_code == 200
    assert "whsec_" in html
    assert added.headers["Cache-Control"] == "no-store"
    listed = admin_client.get("/admin/webhooks").get_data(as_text=True)
    assert "https://hooks.example/newsletter" in listed
    assert "subscriber.bounced, digest.sent" in listed
    # The secret was shown once.
    assert "whsec_" not in listed

    with app.app_context():
        endpoint_id = db.session.scalar(select(WebhookEndpoint.id))
    url = f"/admin/webhooks/{endpoint_id}/deactivate"
    assert admin_client.post(url).status_code == 400
    token = csrf_token(admin_client.get("/admin/webhooks"))
    assert admin_client.post(url, data={"csrf_token": token}).status_code == 302
    with app.app_context():
        assert db.session.get(WebhookEndpoint, endpoint_id).active is False

    wrong = admin_client.post(
        "/admin/webhooks",
        data={"csrf_token": token, "url": "javascript:alert(1)", "events": ["digest.sent"]},
    )
    assert wrong.status_code == 400
    assert "http:// or https://" in wrong.get_data(as_text=True)


def test_the_payload_is_json_with_type_timestamp_and_data(app, admin_client, receiver, worker):
    add_endpoint(admin_client, receiver, ["subscriber.confirmed"])
    _, token = a_pending_reader(app, "shape@example.org")
    with app.app_context():
        subscriptions.confirm(token)
    event, _ = receiver.wait_for(1)[0]
    assert set(event) == {"type", "timestamp", "data"}
    assert json.loads(deliveries(app)[0].payload) == event
