"""SendGrid's Event Webhook: a JSON array of events per request, signed (Signed Event
Webhook) with ECDSA P-256 over SHA-256: the base64 DER signature in
X-Twilio-Email-Event-Webhook-Signature covers the timestamp header and the raw body,
and SENDGRID_WEBHOOK_PUBLIC_KEY is the public key that SendGrid shows, in base64.

SendGrid rewrites the envelope sender to its own, so subscribers are found by the
Message-ID (``smtp-id``) or the address.
"""

import base64
import binascii
import functools
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from newsletter.bounces.models import FeedbackKind
from newsletter.bounces.providers import events
from newsletter.bounces.providers.events import (
    DELIVERED,
    Event,
    Malformed,
    Refused,
    Signed,
    Tally,
    parse_json,
)

SOURCE = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
FRESH_FOR = timedelta(minutes=5)
SHAPE = 'SendGrid\'s JSON array of events: [{"event": …, "email": …, "sg_event_id": …}]'
KINDS = {
    "spamreport": FeedbackKind.COMPLAINT,
    "unsubscribe": FeedbackKind.UNSUBSCRIBE,
    "group_unsubscribe": FeedbackKind.UNSUBSCRIBE,
    "delivered": DELIVERED,
}
# A message SendGrid did not send, because of what it knows of the address.
DROPPED_KINDS = {
    "Bounced Address": FeedbackKind.HARD_BOUNCE,
    "Spam Reporting Address": FeedbackKind.COMPLAINT,
    "Unsubscribed Address": FeedbackKind.UNSUBSCRIBE,
}


def check_config(config: Mapping[str, Any]) -> None:
    if config["SENDGRID_WEBHOOK_PUBLIC_KEY"]:
        try:
            public_key(config["SENDGRID_WEBHOOK_PUBLIC_KEY"])
        except ValueError:
            raise ValueError(
                "SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA public key in base64 (DER), "
                "as SendGrid's Signed Event Webhook shows it."
            ) from None


@functools.cache
def public_key(text: str) -> ec.EllipticCurvePublicKey:
    try:
        key = load_der_public_key(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("not a public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an ECDSA key")
    return key


def receive(body: bytes, signature: str | None, timestamp: str | None, key: str) -> Tally:
    return events.receive(
        SOURCE,
        lambda: verify(body, signature, timestamp, key),
        lambda: read_batch(body),
        read_event,
    )


def verify(body: bytes, signature: str | None, timestamp: str | None, key: str) -> Signed:
    """The signed timestamp and the signature itself, if SendGrid signed the body."""
    if not signature or not timestamp:
        raise Refused(f"The request is not signed: {SIGNATURE_HEADER} and {TIMESTAMP_HEADER}.")
    try:
        public_key(key).verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (binascii.Error, InvalidSignature):
        raise Refused("The signature does not match SENDGRID_WEBHOOK_PUBLIC_KEY.") from None
    if not timestamp.isdigit():
        raise Refused(f"{TIMESTAMP_HEADER} is not a number of seconds.")
    # ECDSA signatures are random: a second request with the same one is a copy.
    return Signed(int(timestamp), signature, FRESH_FOR)


def read_batch(body: bytes) -> list[object]:
    batch = parse_json(body, SHAPE)
    if not isinstance(batch, list):
        raise Malformed(f"Send {SHAPE}.")
    return batch


def read_event(data: dict[str, Any]) -> list[Event]:
    name = data["event"]
    kind: str | None
    if name == "bounce":
        # "blocked": refused for now (a reputation or content block), not the address.
        kind = (
            FeedbackKind.SOFT_BOUNCE if data.get("type") == "blocked" else FeedbackKind.HARD_BOUNCE
        )
    elif name == "dropped":
        kind = DROPPED_KINDS.get(data.get("reason", ""))
    else:
        kind = KINDS.get(name)
    if kind is None:
        return []
    return [
        Event(
            kind,
            reference=data.get("sg_event_id"),
            message_id=data.get("smtp-id"),
            address=data["email"],
            status=data.get("status"),
            detail=data.get("reason"),
        )
    ]
