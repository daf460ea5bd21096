"""Amazon SES's notifications, delivered by an Amazon SNS topic to an HTTPS
subscription: each request is one SNS message, signed by SNS with RSA (SignatureVersion
1: SHA1withRSA, 2: SHA256withRSA) under the certificate at its SigningCertURL.

What makes a request trustworthy:
- its TopicArn is one of ours (SES_WEBHOOK_TOPIC_ARN): SNS signs every account's
  messages alike, so a valid signature alone proves only that some topic sent it;
- the certificate comes over HTTPS from SNS itself (``sns.<region>.amazonaws.com``),
  never from a URL the request could point anywhere; certificates are kept in memory,
  by URL (SNS moves to a new URL when it changes its key);
- its Timestamp is within the hour, and its MessageId not taken before.

A SubscriptionConfirmation is answered by fetching its SubscribeURL (an SNS URL too),
which starts the subscription. A Notification's Message is SES's JSON, as its
notifications (``notificationType``) or its event publishing (``eventType``) write it:
Bounce (Permanent: hard, Transient or Undetermined: soft, per recipient; SES sends one
only once it stopped retrying), Complaint, Delivery.
"""

import base64
import binascii
import functools
import json
import logging
import re
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from newsletter.bounces.models import FeedbackKind
from newsletter.bounces.providers import events
from newsletter.bounces.providers.events import (
    DELIVERED,
    Event,
    Malformed,
    Refused,
    Signed,
    Tally,
    Unreachable,
    parse_json,
)

log = logging.getLogger(__name__)

SOURCE = "ses"
FRESH_FOR = timedelta(hours=1)
SHAPE = "an Amazon SNS message (JSON with Type, MessageId, TopicArn, Signature…)"
SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com")
FETCH_TIMEOUT_SECONDS = 5
# A certificate, or SNS's answer to a confirmation, is a few kilobytes.
FETCH_MAX_BYTES = 64 * 1024
SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
# The fields each type signs, in this order (those missing from a message are left out).
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]
REQUIRED_FIELDS = ("Type", "MessageId", "TopicArn", "Timestamp", "Signature", "SigningCertURL")
BOUNCE_KINDS = {
    "Permanent": FeedbackKind.HARD_BOUNCE,
    "Transient": FeedbackKind.SOFT_BOUNCE,
    "Undetermined": FeedbackKind.SOFT_BOUNCE,
}


def receive(body: bytes, topic_arns: list[str]) -> Tally:
    message = parse_json(body, SHAPE)
    if not isinstance(message, dict) or not all(
        isinstance(message.get(name), str) for name in REQUIRED_FIELDS
    ):
        raise Malformed(f"Send {SHAPE}.")
    if message["Type"] not in SIGNED_FIELDS:
        raise Malformed(f"Type {message['Type']!r} is not an SNS message type.")
    return events.receive(
        SOURCE, lambda: verify(message, topic_arns), lambda: read_batch(message), read_notification
    )


def verify(message: dict[str, Any], topic_arns: list[str]) -> Signed:
    """The message's Timestamp and MessageId, if SNS signed it, under a certificate
    from SNS, for one of our topics."""
    if message["TopicArn"] not in topic_arns:
        raise Refused("TopicArn is not one of SES_WEBHOOK_TOPIC_ARN.")
    url = message["SigningCertURL"]
    if not is_sns_url(url) or not urlsplit(url).path.endswith(".pem"):
        raise Refused("SigningCertURL is not an https://sns.<region>.amazonaws.com/….pem URL.")
    version = message.get("SignatureVersion")
    algorithm = SIGNATURE_HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        raise Refused("SignatureVersion is neither 1 nor 2.")
    signed = "".join(
        f"{name}\n{message[name]}\n"
        for name in SIGNED_FIELDS[message["Type"]]
        if isinstance(message.get(name), str)
    )
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
        public_key = signing_certificate(url).public_key()
        # SNS signs with RSA only: a certificate with another kind of key is not its.
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise InvalidSignature
        public_key.verify(signature, signed.encode(), padding.PKCS1v15(), algorithm())
    except (binascii.Error, InvalidSignature):
        raise Refused("The signature is not SNS's.") from None
    return Signed(_seconds(message["Timestamp"]), message["MessageId"], FRESH_FOR)


def read_batch(message: dict[str, Any]) -> list[object]:
    """A Notification's one Message; a confirmation confirms, and carries no events."""
    if message["Type"] == "SubscriptionConfirmation":
        # Before its MessageId is taken: when SNS cannot be reached, its retry must pass.
        confirm_subscription(message)
    return [message.get("Message")] if message["Type"] == "Notification" else []


def is_sns_url(url: str) -> bool:
    """Whether the URL is https on an SNS host, and nowhere else (no port, no user)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and SNS_HOST.fullmatch(parts.hostname or "") is not None
        and port is None
        and parts.username is None
        # A backslash is a path separator to some clients, which would read another host.
        and "\\" not in url
    )


@functools.lru_cache(maxsize=32)
def signing_certificate(url: str) -> x509.Certificate:
    """SNS's certificate at ``url`` (an SNS URL), fetched once per process."""
    try:
        return x509.load_pem_x509_certificate(fetch(url))
    except ValueError:
        raise Refused("SigningCertURL does not hold a certificate.") from None


def confirm_subscription(message: dict[str, Any]) -> None:
    """Start the subscription: SNS sends notifications once its SubscribeURL is fetched."""
    url = message.get("SubscribeURL")
    if not isinstance(url, str) or not is_sns_url(url):
        raise Refused("SubscribeURL is not an https://sns.<region>.amazonaws.com/ URL.")
    fetch(url)
    log.info("ses webhook: confirmed the subscription to %s", message["TopicArn"])


def fetch(url: str) -> bytes:
    """GET an SNS URL, checked by the caller. Tests replace this function: they cannot
    serve a certificate from SNS's hosts."""
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
            body: bytes = response.read(FETCH_MAX_BYTES)
            return body
    except OSError as error:
        # Refused connections, timeouts and HTTP errors alike; SNS sends the message again.
        raise Unreachable(f"Amazon SNS could not be reached ({error}).") from None


def read_notification(text: str) -> list[Event]:
    """The events of SES's JSON: one per recipient."""
    notification = json.loads(text)
    kind = notification.get("notificationType") or notification.get("eventType")
    mail = notification["mail"]
    headers = {
        header["name"].lower(): header["value"]
        for header in mail.get("headers") or []
        if isinstance(header, dict) and isinstance(header.get("name"), str)
    }
    named = {
        # SES's "source" is the envelope sender: our VERP return path.
        "return_path": mail.get("source"),
        # mail.messageId is SES's own id; the header is ours.
        "message_id": headers.get("message-id")
        or (mail.get("commonHeaders") or {}).get("messageId"),
    }
    if kind == "Bounce":
        return _bounce_events(notification["bounce"], named)
    if kind == "Complaint":
        complaint = notification["complaint"]
        return [
            Event(
                FeedbackKind.COMPLAINT,
                reference=f"{complaint['feedbackId']}:{recipient['emailAddress']}",
                address=recipient["emailAddress"],
                detail=complaint.get("complaintFeedbackType"),
                **named,
            )
            for recipient in complaint["complainedRecipients"]
        ]
    if kind == "Delivery":
        return [
            Event(DELIVERED, address=address, **named)
            for address in notification["delivery"]["recipients"]
        ]
    return []


def _bounce_events(bounce: dict[str, Any], named: dict[str, Any]) -> list[Event]:
    kind = BOUNCE_KINDS.get(bounce["bounceType"])
    if kind is None:
        return []
    return [
        Event(
            kind,
            reference=f"{bounce['feedbackId']}:{recipient['emailAddress']}",
            address=recipient["emailAddress"],
            status=recipient.get("status"),
            detail=recipient.get("diagnosticCode") or bounce.get("bounceSubType"),
            **named,
        )
        for recipient in bounce["bouncedRecipients"]
    ]


def _seconds(timestamp: str) -> float:
    """SNS's ISO 8601 Timestamp, in seconds since the epoch; NaN (never fresh) when it
    is no time."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return float("nan")
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
