"""Outgoing webhooks: admins add an endpoint through /api/v1 and get its secret once; a
real worker posts each event to a real HTTP receiver, which checks the Standard
Webhooks signature with that secret; failures are retried; a dead endpoint slows
nobody. Only public addresses are reached (the receivers here, on this machine, are
admitted by WEBHOOK_ALLOWED_NETWORKS), and names resolve through the ``dns`` fixture,
never a real DNS server."""

import json
import logging
import ssl
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from harness import csrf_token, free_port
from newsletter.bounces import feedback
from newsletter.bounces.models import FeedbackKind
from newsletter.content import digests, newsletters, posts
from newsletter.core import tokens
from newsletter.extensions import db
from newsletter.mail import return_path
from newsletter.subscribers import lifecycle
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from newsletter.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.helpers import add_subscriber, add_subscribers, bearer, wait_until, wait_until_sent
from tests.helpers.webhooks import Receiver, a_pending_subscriber, add_endpoint
from tests.tracked_digests import BROWSER, article_site, path_of, send_digest, tracked_links
from workers.tasks import start_digest

# Retries come quickly here; the defaults wait 30 s, doubling.
QUICK_RETRIES = {"WEBHOOK_RETRY_BASE_SECONDS": 0.2, "WEBHOOK_MAX_ATTEMPTS": 3}
# example.com's address, for names that must resolve somewhere public: nothing here
# connects to it.
PUBLIC = "93.184.215.14"


@pytest.fixture
def app(make_app):
    # The receivers run on this machine, which the operator admits here.
    return make_app(**QUICK_RETRIES, WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8")


def key_holder(app):
    """A client of ``app`` holding a new API key, as a script would."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(app)["Authorization"]
    return client


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
    subscriber_id, token = a_pending_subscriber(app)

    with app.app_context():
        lifecycle.confirm(token)
        subscriber = db.session.get(Subscriber, subscriber_id)
        lifecycle.unsubscribe(tokens.make_token(tokens.UNSUBSCRIBE, subscriber))

    (confirmed, headers), (unsubscribed, _) = receiver.wait_for(2)
    assert receiver.types() == ["subscriber.confirmed", "subscriber.unsubscribed"]
    assert confirmed["data"] == {"subscriber_id": subscriber_id, "email": "reader@example.org"}
    assert unsubscribed["data"]["email"] == "reader@example.org"
    assert confirmed["timestamp"].endswith("Z")
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-signature"].startswith("v1,")
    assert receiver.forged == []
    # Deliveries are owed as the change commits: once every one is sent, every post
    # that was owed has been made.
    wait_until(lambda: {row.status for row in deliveries(app)} == {"sent"})
    assert digests_only.events == []
    digests_only.close()


def test_leaving_one_newsletter_is_posted_with_its_slug_and_the_last_one_says_so(
    app, admin_client, receiver, worker
):
    add_endpoint(admin_client, receiver, ["subscriber.unsubscribed"])
    with app.app_context():
        breaking = newsletters.create("breaking", "Breaking news").id
    subscriber_id, nonce = add_subscriber(app, "reader@example.org", [1, breaking])
    with app.app_context():
        for newsletter_id in (breaking, 1):
            lifecycle.unsubscribe(tokens.make_token_for(tokens.UNSUBSCRIBE, nonce, newsletter_id))

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
    add_subscribers(app, 1)
    with app.app_context():
        # A report names its subscriber by what we signed: here the Message-ID it quotes.
        nonce = db.session.scalar(select(Subscriber.token_nonce))
        message_id = return_path.message_id(nonce, return_path.DIGEST, 1, "localhost")
        report = feedback.Report(kind=kind, source="dsn", message_id=message_id, status="5.1.1")
        feedback.record(report)
        # The same subscriber again changes nothing, and announces nothing.
        feedback.record(report)
        assert db.session.scalar(select(Subscriber.status)) == status

    event, _ = receiver.wait_for(1)[0]
    assert event["type"] == event_type
    assert event["data"]["email"] == "reader0@example.org"
    wait_until(lambda: {row.status for row in deliveries(app)} == {"sent"})
    assert len(deliveries(app)) == 1
    assert len(receiver.events) == 1


def test_a_digest_sent_is_posted_with_its_count(app, admin_client, receiver, smtp, worker):
    add_endpoint(admin_client, receiver, ["digest.sent"])
    add_subscribers(app, 3)
    with app.app_context():
        posts.save_post(None, "Monday", "https://news.example/monday", "")
        digest_id = digests.create_digest("Monday").id
        digests.schedule(digest_id)
    start_digest.delay(digest_id)
    wait_until_sent(app, digest_id)

    event, _ = receiver.wait_for(1)[0]
    assert event["type"] == "digest.sent"
    assert event["data"] == {"digest_id": digest_id, "subject": "Monday", "sent_count": 3}


def test_a_click_is_posted_as_email_clicked_saying_whether_a_machine_made_it(
    app, admin_client, receiver, smtp, worker
):
    add_endpoint(admin_client, receiver, ["email.clicked"])
    app.config["TRACKING_MIN_SECONDS"] = 0
    with article_site() as origin:
        digest_id, copies = send_digest(app, smtp, "per-reader", origin)
    with app.app_context():
        subscriber_id = db.session.scalar(select(Subscriber.id))
    # The trap comes first in the HTML; the articles follow.
    _trap, first, second = tracked_links(copies["reader@example.org"])
    # Each verdict is the one made as its click came: the person's, first, stays a
    # person's in the event, whatever the figures later make of the two together.
    person = admin_client.get(path_of(first), headers={"User-Agent": BROWSER})
    checked = admin_client.head(path_of(second), headers={"User-Agent": BROWSER})

    posted = sorted(
        (event["data"] for event, _ in receiver.wait_for(2)), key=lambda data: data["machine"]
    )
    assert receiver.types() == ["email.clicked", "email.clicked"]
    assert [(data["url"], data["machine"]) for data in posted] == [
        (person.headers["Location"], False),
        (checked.headers["Location"], True),
    ]
    for data in posted:
        # The digest, the link, the verdict and the subscriber (tracked per subscriber): no
        # address, no browser.
        assert set(data) == {"digest_id", "url", "machine", "subscriber_id", "clicked_at"}
        assert (data["digest_id"], data["subscriber_id"]) == (digest_id, subscriber_id)


def test_a_failed_delivery_is_retried_until_the_endpoint_takes_it(
    app, admin_client, receiver, worker
):
    add_endpoint(admin_client, receiver, ["subscriber.confirmed"])
    receiver.statuses = [500]
    _, token = a_pending_subscriber(app)
    with app.app_context():
        lifecycle.confirm(token)

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
        headers=bearer(app),
    )
    assert answer.status_code == 201
    sign_up_started = time.monotonic()
    assert app.test_client().post("/subscribe", data={"email": "new@example.org"}).status_code
    _, token = a_pending_subscriber(app)
    with app.app_context():
        lifecycle.confirm(token)
    assert time.monotonic() - sign_up_started < 1

    wait_until(lambda: deliveries(app)[0].status == "failed")
    (delivery,) = deliveries(app)
    assert delivery.attempts == 3
    assert delivery.last_status_code is None
    # Not "Connection refused" (nor "timed out"), which would tell what listens where.
    assert delivery.last_error == "failed"
    page = admin_client.get("/admin/webhooks").get_data(as_text=True)
    assert '<td class="wraps">failed</td>' in page
    assert "Connection refused" not in page
    assert "Errno" not in page


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
def test_bad_urls_and_events_are_refused_with_a_reason(admin_client, dns, body, status):
    dns.names["example.com"] = [[PUBLIC]]
    key = bearer(admin_client.application, "webhooks:write")
    if isinstance(body, str):
        answer = admin_client.post(
            "/api/v1/webhooks", data=body, content_type="text/plain", headers=key
        )
    else:
        answer = admin_client.post("/api/v1/webhooks", json=body, headers=key)
    assert answer.status_code == status
    assert answer.get_json()["error"]


def test_only_an_admin_may_add_an_endpoint(client):
    answer = client.post("/api/v1/webhooks", json={"url": "https://example.com/", "events": []})
    assert answer.status_code == 401
    assert answer.get_json()["error"]
    assert client.get("/admin/webhooks").status_code == 302


def test_admins_add_list_and_deactivate_endpoints_on_the_admin_page(app, admin_client, dns):
    dns.names["hooks.example"] = [[PUBLIC]]
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
    _, token = a_pending_subscriber(app, "shape@example.org")
    with app.app_context():
        lifecycle.confirm(token)
    event, _ = receiver.wait_for(1)[0]
    assert set(event) == {"type", "timestamp", "data"}
    assert json.loads(deliveries(app)[0].payload) == event


def certificate_for(name):
    """A CA's certificate (PEM) and a server context with a certificate it signed for
    ``name``: a private CA that the test makes the worker trust."""
    now = datetime.now(UTC)

    def build(subject, issuer, public_key, signing_key, ca):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = build("Test CA", "Test CA", ca_key.public_key(), ca_key, ca=True)
    server = build(name, "Test CA", server_key.public_key(), ca_key, ca=False)
    return ca.public_bytes(serialization.Encoding.PEM), server, server_key


def server_context(certificate, key, tmp_path):
    chain, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key_file)
    return context


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://10.0.0.5/",
        "http://192.168.1.1/",
        "http://0x7f000001/",
        "http://2130706433/",
        "http://017700000001/",
        "http://127.1/",
        "http://0.0.0.0:5432/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://[::]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[2002:7f00:1::1]/",
        "https://internal.example/hook",
        "https://mixed.example/hook",
    ],
)
def test_an_api_key_cannot_add_an_endpoint_at_an_internal_address(make_app, dns, url):
    dns.names["internal.example"] = [["10.0.0.1"]]
    # One public address is not enough: the post could reach the other one.
    dns.names["mixed.example"] = [[PUBLIC, "10.1.2.3"]]
    app = make_app()
    answer = key_holder(app).post("/api/v1/webhooks", json={"url": url, "events": ["digest.sent"]})
    assert answer.status_code == 422
    assert "is a private address" in answer.get_json()["error"]
    with app.app_context():
        assert db.session.scalar(select(WebhookEndpoint)) is None


def test_a_public_host_is_added_and_one_that_does_not_resolve_is_refused(make_app, dns):
    dns.names["hooks.example"] = [[PUBLIC, "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]]
    script = key_holder(make_app())
    added = script.post(
        "/api/v1/webhooks", json={"url": "https://hooks.example/in", "events": ["digest.sent"]}
    )
    assert added.status_code == 201
    unknown = script.post(
        "/api/v1/webhooks", json={"url": "https://nowhere.example/", "events": ["digest.sent"]}
    )
    assert unknown.status_code == 422
    assert unknown.get_json()["error"] == "The URL's host nowhere.example does not resolve."


def test_the_admin_form_refuses_the_cloud_metadata_address(admin_client):
    page = admin_client.get("/admin/webhooks")
    refused = admin_client.post(
        "/admin/webhooks",
        data={
            "csrf_token": csrf_token(page),
            "url": "http://169.254.169.254/latest/meta-data/",
            "events": ["digest.sent"],
        },
    )
    assert refused.status_code == 400
    assert "is a private address" in refused.get_data(as_text=True)
    assert "169.254.169.254</td>" not in refused.get_data(as_text=True)


def test_without_allowed_networks_this_machine_is_refused_at_creation_and_delivery(
    app, make_app, admin_client, receiver, start_worker_for, caplog
):
    strict = make_app(**QUICK_RETRIES)
    answer = key_holder(strict).post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["subscriber.confirmed"]}
    )
    assert answer.status_code == 422
    assert "WEBHOOK_ALLOWED_NETWORKS" in answer.get_json()["error"]
    # Added while the operator admitted this machine; then they stopped admitting it.
    add_endpoint(key_holder(app), receiver, ["subscriber.confirmed"])
    start_worker_for(strict)
    _, token = a_pending_subscriber(strict)
    with strict.app_context():
        lifecycle.confirm(token)

    wait_until(lambda: deliveries(strict)[0].status == "failed")
    (delivery,) = deliveries(strict)
    assert (delivery.attempts, delivery.last_error) == (3, "refused: private address")
    assert receiver.hits == 0
    page = admin_client.get("/admin/webhooks").get_data(as_text=True)
    assert "refused: private address" in page
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("refused, not posted: 127.0.0.1 resolves to 127.0.0.1" in w for w in warnings)


def test_a_name_that_changes_its_address_reaches_only_the_address_checked(
    make_app, dns, start_worker_for
):
    """DNS rebinding: evil.example answers 127.0.0.2, where the operator admits a
    receiver, when it is checked; later it answers 127.0.0.1, where an internal service
    listens on the same port."""
    receiver = Receiver(host="127.0.0.2", name="evil.example")
    internal = Receiver(host="127.0.0.1", port=receiver.port)
    dns.names["evil.example"] = [["127.0.0.2"], ["127.0.0.2"], ["127.0.0.1"]]
    app = make_app(**QUICK_RETRIES, WEBHOOK_ALLOWED_NETWORKS="127.0.0.2/32")
    start_worker_for(app)
    add_endpoint(key_holder(app), receiver, ["subscriber.confirmed"])
    _, token = a_pending_subscriber(app)
    with app.app_context():
        lifecycle.confirm(token)

    ((_, headers),) = receiver.wait_for(1)
    assert headers["host"] == f"evil.example:{receiver.port}"
    # Once when added and once when delivered: the connection looked nothing up.
    assert dns.asked == ["evil.example", "evil.example"]
    # From now on it answers 127.0.0.1: checked again, the next delivery is refused.
    _, token = a_pending_subscriber(app, "second@example.org")
    with app.app_context():
        lifecycle.confirm(token)
    wait_until(lambda: deliveries(app)[-1].status == "failed")
    assert deliveries(app)[-1].last_error == "refused: private address"
    assert internal.hits == 0
    assert len(receiver.events) == 1
    receiver.close()
    internal.close()


def test_https_is_verified_against_the_host_name_not_the_address(
    app, dns, worker, monkeypatch, tmp_path
):
    ca, certificate, key = certificate_for("hooks.test")
    (tmp_path / "ca.pem").write_bytes(ca)
    # The worker trusts this CA as it trusts the system's.
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    context = server_context(certificate, key, tmp_path)
    names = []
    context.sni_callback = lambda _socket, name, _context: names.append(name)
    receiver = Receiver(tls=context, name="hooks.test")
    # Both names lead to the receiver, whose certificate names only hooks.test.
    dns.names["hooks.test"] = dns.names["other.test"] = [["127.0.0.1"]]
    script = key_holder(app)
    add_endpoint(script, receiver, ["subscriber.confirmed"])
    other = script.post(
        "/api/v1/webhooks",
        json={
            "url": f"https://other.test:{receiver.port}/hook",
            "events": ["subscriber.confirmed"],
        },
    )
    assert other.status_code == 201
    _, token = a_pending_subscriber(app)
    with app.app_context():
        lifecycle.confirm(token)

    ((_, headers),) = receiver.wait_for(1)
    assert headers["host"] == f"hooks.test:{receiver.port}"
    wait_until(lambda: {row.status for row in deliveries(app)} == {"sent", "failed"})
    failed = next(row for row in deliveries(app) if row.status == "failed")
    assert failed.last_error == "failed"
    assert "hooks.test" in names
    assert receiver.hits == 1
    receiver.close()


def test_allowed_networks_that_are_not_networks_stop_the_app(make_app):
    with pytest.raises(ValueError, match="WEBHOOK_ALLOWED_NETWORKS: 'intranet'"):
        make_app(WEBHOOK_ALLOWED_NETWORKS="10.0.0.0/8, intranet")
