"""Provider events (what Mailgun, SES through SNS, Postmark and SendGrid post to
/webhooks/…): each request is signed here as the provider signs it; a good one changes
the subscriber it names, a forged, stale or replayed one is refused and changes nothing,
and each provider's URL is absent (404) until its setting is set."""

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from newsletter.bounces import feedback
from newsletter.bounces.models import FeedbackEvent, WebhookReplay
from newsletter.bounces.providers import ses
from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.mail import return_path
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import add_subscribers, send_digest, status_of
from tests.helpers.inbound import BOUNCES

MAILGUN_KEY = "key-mailgun-test"
TOPIC = "arn:aws:sns:us-east-1:123456789012:newsletter-feedback"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
SUBSCRIBE_URL = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"
POSTMARK_AUTH = ("postmark", "correct horse")


def make_rsa_certificate():
    """A throwaway RSA key and its self-signed certificate, as SNS's would be."""
    return make_certificate(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def make_certificate(key):
    """The key and its self-signed certificate."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


SNS_KEY, SNS_CERTIFICATE = make_rsa_certificate()
OTHER_KEY, _ = make_rsa_certificate()
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC_KEY = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
SETTINGS = {
    "BOUNCE_ADDRESS": BOUNCES,
    "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
    "SES_WEBHOOK_TOPIC_ARN": f"arn:aws:sns:eu-west-1:123456789012:other, {TOPIC}",
    "POSTMARK_WEBHOOK_USER": POSTMARK_AUTH[0],
    "POSTMARK_WEBHOOK_PASSWORD": POSTMARK_AUTH[1],
    "SENDGRID_WEBHOOK_PUBLIC_KEY": SENDGRID_PUBLIC_KEY,
}


@pytest.fixture
def hooks_app(make_app):
    return make_app(**SETTINGS)


@pytest.fixture
def client(hooks_app):
    return hooks_app.test_client()


@pytest.fixture
def sns_fetches(monkeypatch):
    """SNS's hosts, faked: the certificate at CERT_URL, and every URL fetched."""
    fetched = []

    def fetch(url):
        fetched.append(url)
        return SNS_CERTIFICATE if url == CERT_URL else b"<ConfirmSubscriptionResponse/>"

    ses.signing_certificate.cache_clear()
    monkeypatch.setattr(ses, "fetch", fetch)
    yield fetched
    ses.signing_certificate.cache_clear()


def verp(app, email, digest_id=1):
    with app.app_context():
        nonce = db.session.scalar(select(Subscriber.token_nonce).where(Subscriber.email == email))
        return return_path.for_message(nonce, return_path.DIGEST, digest_id)


def feedback_events(app):
    with app.app_context():
        return db.session.scalar(select(func.count(FeedbackEvent.id)))


# Mailgun


def mailgun_request(event_data, key=MAILGUN_KEY, timestamp=None, token=None):
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    token = token or secrets.token_hex(25)
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    signature = {"timestamp": timestamp, "token": token, "signature": digest}
    return {"signature": signature, "event-data": event_data}


def mailgun_failure(sender, severity="permanent", reason="bounce", event_id=None):
    return {
        "event": "failed",
        "id": event_id or secrets.token_hex(8),
        "severity": severity,
        "reason": reason,
        "recipient": "someone@example.org",
        "envelope": {"sender": sender},
        "delivery-status": {"code": 550, "message": "5.1.1 no such user"},
    }


def test_mailgun_events_change_their_reader_and_forged_stale_or_replayed_ones_nothing(
    hooks_app, client
):
    add_subscribers(hooks_app, 4)
    path = verp(hooks_app, "reader0@example.org")
    forged = mailgun_request(mailgun_failure(path), key="not-the-key")
    # A minute past the five that are fresh: a slow run still posts them outside the window.
    stale = mailgun_request(mailgun_failure(path), timestamp=int(time.time()) - 360)
    future = mailgun_request(mailgun_failure(path), timestamp=int(time.time()) + 360)
    unsigned = {"event-data": mailgun_failure(path)}
    for refused, why in [(forged, "signature"), (stale, "timestamp"), (future, "timestamp")]:
        response = client.post("/webhooks/mailgun", json=refused)
        assert response.status_code == 403
        assert why in response.json["error"]
    assert client.post("/webhooks/mailgun", json=unsigned).status_code == 403
    # Mailgun retries a temporary failure itself: that changes nothing.
    retried = mailgun_request(mailgun_failure(path, severity="temporary", reason="generic"))
    assert client.post("/webhooks/mailgun", json=retried).json["ignored"] == 1
    assert feedback_events(hooks_app) == 0
    assert status_of(hooks_app, "reader0@example.org") == SubscriberStatus.CONFIRMED

    good = mailgun_request(mailgun_failure(path))
    response = client.post("/webhooks/mailgun", json=good)
    assert response.status_code == 200
    assert response.json == {
        "recorded": 1,
        "repeated": 0,
        "delivered": 0,
        "ignored": 0,
        "malformed": 0,
    }
    assert status_of(hooks_app, "reader0@example.org") == SubscriberStatus.BOUNCED
    replayed = client.post("/webhooks/mailgun", json=good)
    assert replayed.status_code == 409
    assert feedback_events(hooks_app) == 1

    complaint = {
        "event": "complained",
        "id": "c1",
        "recipient": "Reader1@example.org",
        "message": {"headers": {"message-id": "nobody@mailgun.example"}},
    }
    unsubscribe = {"event": "unsubscribed", "id": "u1", "recipient": "reader2@example.org"}
    for event in (complaint, unsubscribe):
        assert client.post("/webhooks/mailgun", json=mailgun_request(event)).json["recorded"] == 1
    assert status_of(hooks_app, "reader1@example.org") == SubscriberStatus.COMPLAINED
    assert status_of(hooks_app, "reader2@example.org") == SubscriberStatus.UNSUBSCRIBED

    # Giving up after hours of tries is a soft bounce: three of them bounce the subscriber,
    # unless a delivery came between.
    subscriber3 = verp(hooks_app, "reader3@example.org")
    for _ in range(2):
        gave_up = mailgun_failure(subscriber3, severity="temporary", reason="old")
        client.post("/webhooks/mailgun", json=mailgun_request(gave_up))
    delivered = {"event": "delivered", "id": "d1", "envelope": {"sender": subscriber3}}
    assert client.post("/webhooks/mailgun", json=mailgun_request(delivered)).json["delivered"] == 1
    client.post(
        "/webhooks/mailgun", json=mailgun_request(mailgun_failure(subscriber3, reason="old"))
    )
    assert status_of(hooks_app, "reader3@example.org") == SubscriberStatus.CONFIRMED


def test_tokens_are_forgotten_once_their_requests_could_no_longer_pass(hooks_app, client):
    with hooks_app.app_context():
        for provider, age in [("mailgun", 11), ("mailgun", 9), ("ses", 11)]:
            seen_at = utcnow() - timedelta(minutes=age)
            db.session.add(WebhookReplay(provider=provider, token=f"{age}", seen_at=seen_at))
        db.session.commit()
    event = {"event": "opened", "id": "o1"}
    assert client.post("/webhooks/mailgun", json=mailgun_request(event)).status_code == 200
    with hooks_app.app_context():
        kept = db.session.execute(select(WebhookReplay.provider, WebhookReplay.token)).all()
        # Mailgun's 11-minute-old token went; SES keeps its tokens for two hours.
        old_ones = {row for row in kept if len(row.token) < 64}
        assert old_ones == {("mailgun", "9"), ("ses", "11")}
        assert len(kept) == 3, "and this request's token"


def test_a_request_that_is_no_json_or_of_the_wrong_shape_is_a_400_saying_what(client):
    for body in [b"not json", b"[[[[" * 100_000, json.dumps({"signature": {}}).encode()]:
        response = client.post("/webhooks/mailgun", data=body, content_type="application/json")
        assert response.status_code == 400
        assert "Mailgun's JSON" in response.json["error"]
    response = client.post("/webhooks/ses", data=b"{}", content_type="text/plain")
    assert response.status_code == 400
    assert "SNS message" in response.json["error"]


# Amazon SES, through SNS

SIGNED_FIELDS = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ],
}


def sns_message(kind, message, key=SNS_KEY, version="2", age=timedelta(0), **fields):
    """An SNS message signed as SNS signs it (its "Signing Messages" documentation)."""
    sent_at = datetime.now(UTC) - age
    sns = {
        "Type": kind,
        "MessageId": secrets.token_hex(16),
        "TopicArn": TOPIC,
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": sent_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{sent_at:%f}"[:3] + "Z",
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        **fields,
    }
    signed = "".join(f"{name}\n{sns[name]}\n" for name in SIGNED_FIELDS[kind] if name in sns)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(signed.encode(), padding.PKCS1v15(), algorithm)
    sns["Signature"] = base64.b64encode(signature).decode()
    return sns


def ses_bounce(source, bounce_type="Permanent", address="someone@example.org"):
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "feedbackId": secrets.token_hex(8),
            "bouncedRecipients": [
                {"emailAddress": address, "status": "5.1.1", "diagnosticCode": "smtp; 550"}
            ],
        },
        "mail": {"source": source, "messageId": "ses-own-id", "headers": []},
    }


def post_sns(client, message):
    # SNS posts its JSON as text/plain.
    return client.post("/webhooks/ses", data=json.dumps(message), content_type="text/plain")


def test_ses_notifications_signed_by_sns_change_their_reader(hooks_app, client, sns_fetches):
    add_subscribers(hooks_app, 3)
    bounce = sns_message("Notification", ses_bounce(verp(hooks_app, "reader0@example.org")))
    assert post_sns(client, bounce).json["recorded"] == 1
    assert status_of(hooks_app, "reader0@example.org") == SubscriberStatus.BOUNCED
    assert sns_fetches == [CERT_URL]
    assert post_sns(client, bounce).status_code == 409, "the same MessageId twice"

    complaint = {
        "eventType": "Complaint",
        "complaint": {
            "feedbackId": "f1",
            "complaintFeedbackType": "abuse",
            "complainedRecipients": [{"emailAddress": "reader1@example.org"}],
        },
        "mail": {
            "source": "someone-else@news.example",
            "headers": [{"name": "Message-ID", "value": "<x@news.example>"}],
        },
    }
    # Signature version 1 (SHA1withRSA) too; the certificate was fetched once.
    assert post_sns(client, sns_message("Notification", complaint, version="1")).status_code == 200
    assert status_of(hooks_app, "reader1@example.org") == SubscriberStatus.COMPLAINED
    assert sns_fetches == [CERT_URL]

    soft = ses_bounce(None, "Transient", address="reader2@example.org")
    assert post_sns(client, sns_message("Notification", soft)).json["recorded"] == 1
    assert status_of(hooks_app, "reader2@example.org") == SubscriberStatus.CONFIRMED
    delivery = {"notificationType": "Delivery", "mail": {}, "delivery": {"recipients": ["a@b.c"]}}
    assert post_sns(client, sns_message("Notification", delivery)).json["delivered"] == 1
    assert feedback_events(hooks_app) == 3


def test_ses_refuses_forged_stale_and_foreign_messages(hooks_app, client, sns_fetches):
    add_subscribers(hooks_app, 1)
    bounce = ses_bounce(verp(hooks_app, "reader0@example.org"))
    forged = sns_message("Notification", bounce, key=OTHER_KEY)
    tampered = sns_message("Notification", bounce)
    tampered["Message"] = tampered["Message"].replace("Permanent", "Transient")
    stale = sns_message("Notification", bounce, age=timedelta(hours=1, minutes=1))
    foreign = sns_message("Notification", bounce, TopicArn="arn:aws:sns:us-east-1:666:theirs")
    unknown_version = sns_message("Notification", bounce, version="3")
    # JSON of the wrong type where SNS writes a string: refused, not a 500.
    listed_version = sns_message("Notification", bounce, version=["2"])
    for message in [forged, tampered, stale, foreign, unknown_version, listed_version]:
        response = post_sns(client, message)
        assert response.status_code == 403, response.json
    assert feedback_events(hooks_app) == 0
    assert status_of(hooks_app, "reader0@example.org") == SubscriberStatus.CONFIRMED


def test_ses_refuses_a_certificate_whose_key_is_not_rsa(
    hooks_app, client, sns_fetches, monkeypatch
):
    """SNS signs with RSA only: a certificate at its URL with another kind of key is none
    of SNS's, and the request is refused, not answered with a 500."""
    add_subscribers(hooks_app, 1)
    _key, ec_certificate = make_certificate(ec.generate_private_key(ec.SECP256R1()))
    monkeypatch.setattr(ses, "fetch", lambda url: ec_certificate)
    bounce = sns_message("Notification", ses_bounce(verp(hooks_app, "reader0@example.org")))
    response = post_sns(client, bounce)
    assert response.status_code == 403, response.json
    assert feedback_events(hooks_app) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.evil.com/cert.pem",
        "https://evil.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com.evil.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com@evil.com/cert.pem",
        "https://evil.com\\@sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
        "https://s3.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com/cert.txt",
        "file:///etc/passwd",
    ],
)
def test_ses_takes_certificates_from_sns_over_https_only(hooks_app, client, sns_fetches, url):
    add_subscribers(hooks_app, 1)
    bounce = ses_bounce(verp(hooks_app, "reader0@example.org"))
    response = post_sns(client, sns_message("Notification", bounce, SigningCertURL=url))
    assert response.status_code == 403
    assert "SigningCertURL" in response.json["error"]
    assert sns_fetches == []
    assert feedback_events(hooks_app) == 0


def test_ses_confirms_its_subscription_by_fetching_the_subscribe_url(client, sns_fetches):
    confirmation = sns_message(
        "SubscriptionConfirmation",
        "You have chosen to subscribe…",
        Token="t",
        SubscribeURL=SUBSCRIBE_URL,
    )
    assert post_sns(client, confirmation).status_code == 200
    assert sns_fetches == [CERT_URL, SUBSCRIBE_URL]
    elsewhere = sns_message(
        "SubscriptionConfirmation", "…", Token="t", SubscribeURL="https://evil.com/?Action=x"
    )
    assert post_sns(client, elsewhere).status_code == 403
    assert sns_fetches == [CERT_URL, SUBSCRIBE_URL]


# Postmark


def test_postmark_records_with_basic_auth_count_once(hooks_app, client):
    add_subscribers(hooks_app, 5)
    hard = {"RecordType": "Bounce", "ID": 42, "Type": "HardBounce", "Email": "reader0@example.org"}
    for auth in [None, ("postmark", "wrong"), ("wrong", POSTMARK_AUTH[1])]:
        response = client.post("/webhooks/postmark", json=hard, auth=auth)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert feedback_events(hooks_app) == 0

    def post(record):
        response = client.post("/webhooks/postmark", json=record, auth=POSTMARK_AUTH)
        assert response.status_code == 200
        return response.json

    assert post(hard)["recorded"] == 1
    assert post(hard)["repeated"] == 1, "Postmark's retry counts once"
    assert status_of(hooks_app, "reader0@example.org") == SubscriberStatus.BOUNCED
    auto_reply = {"RecordType": "Bounce", "ID": 43, "Type": "AutoResponder", "Email": "x@y.z"}
    assert post(auto_reply)["ignored"] == 1
    soft = {"RecordType": "Bounce", "ID": 44, "Type": "SoftBounce", "Email": "reader1@example.org"}
    assert post(soft)["recorded"] == 1
    assert post({"RecordType": "Delivery", "Recipient": "reader1@example.org"})["delivered"] == 1
    spam = {"RecordType": "SpamComplaint", "ID": 45, "Email": "reader2@example.org"}
    assert post(spam)["recorded"] == 1
    unsubscribe = {
        "RecordType": "SubscriptionChange",
        "Recipient": "reader3@example.org",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "ChangedAt": "2026-11-29T10:00:00Z",
    }
    assert post(unsubscribe)["recorded"] == 1
    reactivated = {**unsubscribe, "Recipient": "reader4@example.org", "SuppressSending": False}
    assert post(reactivated)["ignored"] == 1
    assert [status_of(hooks_app, f"reader{n}@example.org") for n in range(1, 5)] == [
        SubscriberStatus.CONFIRMED,
        SubscriberStatus.COMPLAINED,
        SubscriberStatus.UNSUBSCRIBED,
        SubscriberStatus.CONFIRMED,
    ]


# SendGrid


def post_sendgrid(client, events, key=SENDGRID_KEY, timestamp=None, body=None):
    body = json.dumps(events).encode() if body is None else body
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }
    return client.post(
        "/webhooks/sendgrid", data=body, headers=headers, content_type="application/json"
    )


def test_sendgrid_batches_are_signed_and_one_bad_event_stops_no_other(hooks_app, client):
    add_subscribers(hooks_app, 5)
    batch = [
        {"event": "bounce", "type": "bounce", "email": "reader0@example.org", "sg_event_id": "e0"},
        "not an event",
        {"event": "spamreport", "sg_event_id": "e1"},
        {"event": "spamreport", "email": "reader1@example.org", "sg_event_id": "e2"},
        {"event": "group_unsubscribe", "email": "reader2@example.org", "sg_event_id": "e3"},
        {"event": "bounce", "type": "blocked", "email": "reader3@example.org", "sg_event_id": "e4"},
        {"event": "dropped", "reason": "Bounced Address", "email": "reader4@example.org"},
        {"event": "open", "email": "reader4@example.org", "sg_event_id": "e6"},
        {"event": "delivered", "email": "reader3@example.org", "sg_event_id": "e7"},
        # What no database takes: a NUL (PostgreSQL), a row id past INTEGER.
        {"event": "bounce", "email": "reader\u0000@example.org", "sg_event_id": "e\u00008"},
        {
            "event": "bounce",
            "email": "nobody@example.org",
            "smtp-id": "<digest.99999999999.1.99999999999@news.example>",
        },
    ]
    other_key = ec.generate_private_key(ec.SECP256R1())
    assert post_sendgrid(client, batch, key=other_key).status_code == 403
    assert post_sendgrid(client, batch, timestamp=int(time.time()) - 301).status_code == 403
    unsigned = client.post("/webhooks/sendgrid", json=batch)
    assert unsigned.status_code == 403
    assert feedback_events(hooks_app) == 0

    response = post_sendgrid(client, batch)
    # 5 events of subscribers, 2 the database may refuse, 2 of the wrong shape.
    assert response.json["recorded"] + response.json["malformed"] == 9
    assert response.json["recorded"] >= 5
    assert response.json["delivered"] == 1
    assert response.json["ignored"] == 1

    assert [status_of(hooks_app, f"reader{n}@example.org") for n in range(5)] == [
        SubscriberStatus.BOUNCED,
        SubscriberStatus.COMPLAINED,
        SubscriberStatus.UNSUBSCRIBED,
        SubscriberStatus.CONFIRMED,
        SubscriberStatus.BOUNCED,
    ]
    # The same signed request again is refused; the same events newly signed count once.
    body = json.dumps(batch).encode()
    timestamp = str(int(time.time()))
    signature = base64.b64encode(
        SENDGRID_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    ).decode()
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": signature,
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }
    assert client.post("/webhooks/sendgrid", data=body, headers=headers).status_code == 200
    assert client.post("/webhooks/sendgrid", data=body, headers=headers).status_code == 409
    assert post_sendgrid(client, batch).json["repeated"] >= 5
    assert post_sendgrid(client, {"event": "bounce"}).status_code == 400


# All of them


def test_each_webhook_is_absent_until_its_setting_is_set(make_app):
    client = make_app(POSTMARK_WEBHOOK_USER=None, POSTMARK_WEBHOOK_PASSWORD=None).test_client()
    for provider in ["mailgun", "ses", "postmark", "sendgrid"]:
        response = client.post(f"/webhooks/{provider}", json={})
        assert response.status_code == 404
        assert "error" in response.json


def test_settings_that_could_never_work_stop_the_app_from_starting(make_app):
    with pytest.raises(ValueError, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
        make_app(SENDGRID_WEBHOOK_PUBLIC_KEY="bm90IGEga2V5")
    with pytest.raises(ValueError, match="POSTMARK_WEBHOOK_PASSWORD"):
        make_app(POSTMARK_WEBHOOK_USER="postmark")


def test_each_request_is_logged_and_each_refusal_warned_of(hooks_app, client, caplog):
    add_subscribers(hooks_app, 1)
    caplog.set_level(logging.INFO, logger="newsletter.web.provider_events")
    event = {"event": "unsubscribed", "id": "u1", "recipient": "reader0@example.org"}
    client.post("/webhooks/mailgun", json=mailgun_request(event))
    client.post("/webhooks/mailgun", json=mailgun_request(event, key="forged"))
    lines = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name.endswith("provider_events")
    ]
    assert lines[0] == ("INFO", lines[0][1])
    assert "mailgun webhook" in lines[0][1]
    assert "recorded 1" in lines[0][1]
    assert lines[1][0] == "WARNING"
    assert "refused (403)" in lines[1][1]


def test_after_webhook_events_the_next_digest_skips_exactly_the_right_readers(
    hooks_app, smtp, start_worker_for, sns_fetches
):
    start_worker_for(hooks_app)
    subscribers = add_subscribers(hooks_app, 6)
    send_digest(hooks_app, "First")
    smtp.wait_for(6)
    client = hooks_app.test_client()
    path_of = dict(zip(smtp.recipients, smtp.return_paths, strict=True))
    message_id_of = {m["To"]: m["Message-ID"] for m in smtp.received}

    hard = mailgun_failure(path_of["reader0@example.org"])
    assert client.post("/webhooks/mailgun", json=mailgun_request(hard)).json["recorded"] == 1
    complaint = {
        "notificationType": "Complaint",
        "complaint": {
            "feedbackId": "f1",
            "complainedRecipients": [{"emailAddress": "somebody-else@example.org"}],
        },
        # SES's source is the envelope sender: our VERP return path names the subscriber.
        "mail": {"source": path_of["reader1@example.org"]},
    }
    assert post_sns(client, sns_message("Notification", complaint)).json["recorded"] == 1
    unsubscribe = {
        "RecordType": "SubscriptionChange",
        "Recipient": "reader2@example.org",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
    }
    postmark = client.post("/webhooks/postmark", json=unsubscribe, auth=POSTMARK_AUTH)
    assert postmark.json["recorded"] == 1
    # SendGrid names the subscriber by our Message-ID (its smtp-id).
    bounce = {
        "event": "bounce",
        "email": "somebody-else@example.org",
        "smtp-id": message_id_of["reader3@example.org"],
        "sg_event_id": "s1",
    }
    assert post_sendgrid(client, [bounce]).json["recorded"] == 1
    # One soft bounce is not enough to stop the mail.
    soft = mailgun_failure(path_of["reader4@example.org"], reason="old")
    assert client.post("/webhooks/mailgun", json=mailgun_request(soft)).json["recorded"] == 1

    smtp.reset()
    send_digest(hooks_app, "Second")
    assert set(smtp.recipients) == subscribers - {f"reader{n}@example.org" for n in range(4)}
    assert [status_of(hooks_app, f"reader{n}@example.org") for n in range(6)] == [
        SubscriberStatus.BOUNCED,
        SubscriberStatus.COMPLAINED,
        SubscriberStatus.UNSUBSCRIBED,
        SubscriberStatus.BOUNCED,
        SubscriberStatus.CONFIRMED,
        SubscriberStatus.CONFIRMED,
    ]


def test_a_request_that_fails_midway_is_taken_when_the_provider_sends_it_again(
    hooks_app, client, monkeypatch
):
    add_subscribers(hooks_app, 1)
    request = mailgun_request(mailgun_failure(verp(hooks_app, "reader0@example.org")))
    real_record = feedback.record

    def database_gone(report):
        raise OperationalError("UPDATE", {}, Exception("server closed the connection"))

    monkeypatch.setattr(feedback, "record", database_gone)
    hooks_app.config["PROPAGATE_EXCEPTIONS"] = False
    assert client.post("/webhooks/mailgun", json=request).status_code == 500
    monkeypatch.setattr(feedback, "record", real_record)
    retried = client.post("/webhooks/mailgun", json=request)
    assert retried.status_code == 200
    assert retried.json["recorded"] == 1
    assert status_of(hooks_app, "reader0@example.org") == SubscriberStatus.BOUNCED
    assert client.post("/webhooks/mailgun", json=request).status_code == 409
