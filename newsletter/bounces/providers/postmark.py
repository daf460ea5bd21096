"""Postmark's webhooks: one JSON record per request, authenticated by HTTP basic auth
(the user and password written into the webhook's URL at Postmark). Postmark signs
nothing, so a replay is caught by the record's own id: ``feedback.record`` counts a
reference once.

Bounces count by Type: HardBounce is hard, SoftBounce is soft, the other types (auto
replies, DNS errors, challenge mails…) change nothing. A SubscriptionChange that stops
sending to an address counts by its SuppressionReason, so that a webhook that takes
only those still learns of bounces and complaints.
"""

import hmac
from collections.abc import Mapping
from typing import Any

from newsletter.bounces.models import FeedbackKind
from newsletter.bounces.providers import events
from newsletter.bounces.providers.events import (
    DELIVERED,
    Event,
    Malformed,
    Tally,
    Unauthenticated,
    parse_json,
)

SOURCE = "postmark"
SHAPE = 'Postmark\'s JSON: {"RecordType": …}'
BOUNCE_KINDS = {"HardBounce": FeedbackKind.HARD_BOUNCE, "SoftBounce": FeedbackKind.SOFT_BOUNCE}
SUPPRESSION_KINDS = {
    "HardBounce": FeedbackKind.HARD_BOUNCE,
    "SpamComplaint": FeedbackKind.COMPLAINT,
    "ManualSuppression": FeedbackKind.UNSUBSCRIBE,
}


def check_config(config: Mapping[str, Any]) -> None:
    if bool(config["POSTMARK_WEBHOOK_USER"]) != bool(config["POSTMARK_WEBHOOK_PASSWORD"]):
        raise ValueError(
            "Set both POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD, or neither."
        )


def receive(body: bytes, credentials: tuple[str, str] | None, expected: tuple[str, str]) -> Tally:
    """``credentials``: the request's basic auth (user, password), if it has any."""
    return events.receive(
        SOURCE, lambda: authenticate(credentials, expected), lambda: read_batch(body), read_event
    )


def authenticate(credentials: tuple[str, str] | None, expected: tuple[str, str]) -> None:
    """Unauthenticated unless the user and password are right. Postmark signs nothing:
    there is no signed moment or token to return."""
    given = credentials or ("", "")
    # Both compared every time, in constant time: no answer tells which one was wrong.
    matches = [
        hmac.compare_digest(mine.encode(), (theirs or "").encode())
        for mine, theirs in zip(expected, given, strict=True)
    ]
    if not all(matches):
        raise Unauthenticated("Wrong or missing user and password (HTTP basic auth).")


def read_batch(body: bytes) -> list[dict[str, Any]]:
    record = parse_json(body, SHAPE)
    if not isinstance(record, dict) or not isinstance(record.get("RecordType"), str):
        raise Malformed(f"Send {SHAPE}.")
    return [record]


def read_event(record: dict[str, Any]) -> list[Event]:
    record_type = record["RecordType"]
    if record_type == "Bounce":
        kind = BOUNCE_KINDS.get(record["Type"])
        detail = record.get("Details") or record.get("Description")
        address = record["Email"]
    elif record_type == "SpamComplaint":
        kind, detail, address = FeedbackKind.COMPLAINT, None, record["Email"]
    elif record_type == "SubscriptionChange":
        return _subscription_change(record)
    elif record_type == "Delivery":
        return [Event(DELIVERED, address=record["Recipient"])]
    else:
        return []
    if kind is None:
        return []
    # Postmark's MessageID is its own, not our Message-ID header: the address names the subscriber.
    reference = f"{record_type}:{record['ID']}"
    return [
        Event(kind, reference=reference, address=address, status=record.get("Type"), detail=detail)
    ]


def _subscription_change(record: dict[str, Any]) -> list[Event]:
    kind = SUPPRESSION_KINDS.get(record.get("SuppressionReason", ""))
    if record.get("SuppressSending") is not True or kind is None:
        return []
    address = record["Recipient"]
    # A change has no id of its own; the same address is suppressed once at a time.
    reference = f"SubscriptionChange:{address}:{record.get('ChangedAt')}"
    return [
        Event(kind, reference=reference, address=address, detail=record.get("SuppressionReason"))
    ]
