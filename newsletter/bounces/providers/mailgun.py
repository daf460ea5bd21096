"""Mailgun's webhooks: one JSON event per request, ``{"signature": {"timestamp",
"token", "signature"}, "event-data": {…}}``, signed with the account's webhook
signing key (HMAC-SHA256, in hex, over the timestamp and the token).

Mailgun reports a ``failed`` event with severity ``temporary`` at each failed try of
a message it goes on retrying (for up to 8 hours), so those change nothing here: only
its giving up counts, as a soft bounce (reason ``old``, "Too old", whatever the
severity). A permanent failure is a hard bounce, except where Mailgun dropped the
message because the address is on its own complaint or unsubscribe list.
"""

import hashlib
import hmac
from datetime import timedelta
from typing import Any

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

SOURCE = "mailgun"
FRESH_FOR = timedelta(minutes=5)
SHAPE = 'Mailgun\'s JSON: {"signature": {"timestamp", "token", "signature"}, "event-data": {…}}'
# Failures that end Mailgun's tries for good, by their reason; any other is a hard bounce.
GAVE_UP_REASONS = {
    # Retried for hours without an answer but "later": a final temporary failure.
    "old": FeedbackKind.SOFT_BOUNCE,
    "suppress-complaint": FeedbackKind.COMPLAINT,
    "suppress-unsubscribe": FeedbackKind.UNSUBSCRIBE,
}
KINDS = {
    "complained": FeedbackKind.COMPLAINT,
    "unsubscribed": FeedbackKind.UNSUBSCRIBE,
    "delivered": DELIVERED,
}


def receive(body: bytes, signing_key: str) -> Tally:
    payload = parse_json(body, SHAPE)
    if not isinstance(payload, dict) or not isinstance(payload.get("event-data"), dict):
        raise Malformed(f"Send {SHAPE}.")
    return events.receive(
        SOURCE,
        lambda: verify(payload.get("signature"), signing_key),
        lambda: [payload["event-data"]],
        read_event,
    )


def verify(signature: object, signing_key: str) -> Signed:
    """The signed timestamp and token, if the signature is Mailgun's."""
    fields = signature if isinstance(signature, dict) else {}
    values = [fields.get(name) for name in ("timestamp", "token", "signature")]
    given = [value for value in values if isinstance(value, str) and value]
    if len(given) < len(values):
        raise Refused('The request is not signed: "signature" needs timestamp, token, signature.')
    timestamp, token, digest = given
    expected = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest().encode(), digest.encode()):
        raise Refused("The signature does not match MAILGUN_WEBHOOK_SIGNING_KEY.")
    try:
        return Signed(int(timestamp), token, FRESH_FOR)
    except ValueError:
        raise Refused("The signed timestamp is not a number of seconds.") from None


def read_event(data: dict[str, Any]) -> list[Event]:
    name = data["event"]
    kind = _failure_kind(data) if name == "failed" else KINDS.get(name)
    if kind is None:
        return []
    status = data.get("delivery-status") or {}
    return [
        Event(
            kind,
            reference=data.get("id"),
            # Our VERP return path, as we gave it in MAIL FROM.
            return_path=(data.get("envelope") or {}).get("sender"),
            message_id=((data.get("message") or {}).get("headers") or {}).get("message-id"),
            address=data.get("recipient"),
            status=status.get("code"),
            detail=status.get("message") or status.get("description"),
        )
    ]


def _failure_kind(data: dict[str, Any]) -> str | None:
    reason = data.get("reason")
    if reason in GAVE_UP_REASONS:
        return GAVE_UP_REASONS[reason]
    if data.get("severity") == "permanent":
        return FeedbackKind.HARD_BOUNCE
    # Temporary: Mailgun tries again, and reports the end.
    return None
