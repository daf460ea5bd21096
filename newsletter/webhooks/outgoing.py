"""Outgoing webhooks: what happens here is posted to the URLs admins add, signed per
the Standard Webhooks specification (the ``standardwebhooks`` package).

The database is the record. An event writes one WebhookDelivery per active endpoint
that takes it, in the transaction that made the event happen: a change rolled back
announces nothing, a committed one is never lost. Once that transaction commits, a
hint wakes a worker (best effort: the sweep finds what a lost hint left). Only the
worker's task makes HTTP calls, so a dead endpoint never slows a sign-up or a send.
"""

import base64
import http.client
import json
import logging
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import event, exists, func, select, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from newsletter.content.models import Digest
from newsletter.core.models import utcnow
from newsletter.core.writes import rows_changed
from newsletter.extensions import db
from newsletter.sending import hints
from newsletter.sending.models import Delivery, DeliveryStatus
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from newsletter.webhooks import outgoing_http
from newsletter.webhooks.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint

SUBSCRIBER_CONFIRMED = "subscriber.confirmed"
SUBSCRIBER_UNSUBSCRIBED = "subscriber.unsubscribed"
SUBSCRIBER_BOUNCED = "subscriber.bounced"
SUBSCRIBER_COMPLAINED = "subscriber.complained"
DIGEST_SENT = "digest.sent"
# A click on a tracked digest's link (engagement), a person's or a machine's.
EMAIL_CLICKED = "email.clicked"
EVENTS = (
    SUBSCRIBER_CONFIRMED,
    SUBSCRIBER_UNSUBSCRIBED,
    SUBSCRIBER_BOUNCED,
    SUBSCRIBER_COMPLAINED,
    DIGEST_SENT,
    EMAIL_CLICKED,
)
# The event a subscriber's new status is.
STATUS_EVENTS: dict[str, str] = {
    SubscriberStatus.CONFIRMED: SUBSCRIBER_CONFIRMED,
    SubscriberStatus.UNSUBSCRIBED: SUBSCRIBER_UNSUBSCRIBED,
    SubscriberStatus.BOUNCED: SUBSCRIBER_BOUNCED,
    SubscriberStatus.COMPLAINED: SUBSCRIBER_COMPLAINED,
}
URL_MAX_LENGTH = 2000
ERROR_LENGTH = 500
# A worker holds a delivery this long before another may try it (it died mid-post):
# well over the request's timeout.
LEASE = timedelta(seconds=60)
# A task posts for about this long, then hands the rest to a new task.
TASK_SECONDS = 20
CLAIM_CANDIDATES = 10
# What the admin sees of a failed attempt: whether it was refused before any
# connection, or failed (with the HTTP status when the receiver answered). The socket's
# own error (refused, timed out, reset…) would tell an internal port scan's results; it
# goes to the worker's log only.
REFUSED = "refused: private address"
FAILED = "failed"
# Flags the session's transaction as one that queued deliveries, for the hint after commit.
_QUEUED = "outgoing_webhooks_queued"
log = logging.getLogger(__name__)


class InvalidEndpoint(ValueError):
    """A URL or a list of events that an endpoint cannot have; the message says why."""


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def add_endpoint(url: str, events: list[str]) -> WebhookEndpoint:
    """Add an endpoint for these events, with a new secret. Raises InvalidEndpoint."""
    check_url(url)
    if not events:
        raise InvalidEndpoint(f"Name at least one event: {', '.join(EVENTS)}.")
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise InvalidEndpoint(f"Unknown events: {', '.join(unknown)}. Known: {', '.join(EVENTS)}.")
    endpoint = WebhookEndpoint(
        url=url, events=",".join(e for e in EVENTS if e in events), secret=new_secret()
    )
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


def check_url(url: str) -> None:
    """Raise InvalidEndpoint unless the URL is one to post to: http(s), no credentials,
    and a host whose every address webhooks may reach (outgoing_http)."""
    if len(url) > URL_MAX_LENGTH:
        raise InvalidEndpoint(f"The URL is longer than {URL_MAX_LENGTH} characters.")
    if any(char.isspace() or not char.isprintable() for char in url):
        raise InvalidEndpoint("The URL has spaces or control characters.")
    try:
        parts = urlsplit(url)
        port_is_valid = parts.port is None or parts.port > 0
    except ValueError:
        raise InvalidEndpoint("The URL is not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_is_valid:
        raise InvalidEndpoint("The URL must be an http:// or https:// URL with a host.")
    if parts.username is not None or parts.password is not None:
        raise InvalidEndpoint("The URL must not carry a user name or password.")
    try:
        outgoing_http.check_url(url, outgoing_http.allowed_networks(current_app.config))
    except outgoing_http.Unreachable:
        raise InvalidEndpoint(f"The URL's host {parts.hostname} does not resolve.") from None
    except outgoing_http.PrivateAddress:
        raise InvalidEndpoint(
            f"The URL's host {parts.hostname} is a private address (loopback, private "
            "network, link-local or the like), which webhooks may not reach: only public "
            "addresses, or the networks in WEBHOOK_ALLOWED_NETWORKS."
        ) from None


def endpoints() -> list[WebhookEndpoint]:
    return list(db.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def deactivate(endpoint_id: int) -> None:
    """Stop an endpoint's deliveries; what it was owed ends failed. Its history stays."""
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        return
    endpoint.active = False
    db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
        )
        .values(status=WebhookDeliveryStatus.FAILED, last_error="The endpoint was deactivated.")
    )
    db.session.commit()


def taken(event_type: str) -> bool:
    """Whether any active endpoint takes the event: a caller that must do work to make
    the event (a click's verdict) asks first."""
    return any(
        event_type in endpoint.event_list
        for endpoint in db.session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True))
        )
    )


def queue(event_type: str, data: dict) -> int:
    """Owe the event to every active endpoint that takes it, in the caller's transaction;
    the caller's commit sends the hint. Returns how many deliveries were owed.

    Endpoints are few: one SELECT of them is all an event costs when none takes it."""
    takers = [
        endpoint.id
        for endpoint in db.session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True))
        )
        if event_type in endpoint.event_list
    ]
    if not takers:
        return 0
    body = json.dumps(
        {"type": event_type, "timestamp": _iso(datetime.now(UTC)), "data": data},
        separators=(",", ":"),
    )
    db.session.add_all(
        WebhookDelivery(
            endpoint_id=endpoint_id,
            event=event_type,
            payload=body,
            webhook_id=f"msg_{secrets.token_urlsafe(18)}",
        )
        for endpoint_id in takers
    )
    db.session.info[_QUEUED] = True
    return len(takers)


def subscriber_changed(subscriber: Subscriber) -> None:
    """Owe the event that the subscriber's new status is (confirmed, unsubscribed…)."""
    queue(
        STATUS_EVENTS[subscriber.status],
        {"subscriber_id": subscriber.id, "email": subscriber.email},
    )


def newsletter_left(subscriber: Subscriber, newsletter_slug: str) -> None:
    """Owe subscriber.unsubscribed for a subscriber who left one newsletter, from its email's
    link or their preferences page: ``newsletter`` names it, and ``status`` says whether
    they still get others (confirmed) or it was their last (unsubscribed)."""
    queue(
        SUBSCRIBER_UNSUBSCRIBED,
        {
            "subscriber_id": subscriber.id,
            "email": subscriber.email,
            "newsletter": newsletter_slug,
            "status": subscriber.status,
        },
    )


def digest_sent(digest_id: int) -> None:
    """Owe digest.sent, in the transaction that marks the digest sent."""
    digest = db.session.get_one(Digest, digest_id)
    sent_count = db.session.scalar(
        select(func.count(Delivery.id)).where(
            Delivery.digest_id == digest_id, Delivery.status == DeliveryStatus.SENT
        )
    )
    queue(
        DIGEST_SENT, {"digest_id": digest_id, "subject": digest.subject, "sent_count": sent_count}
    )


def email_clicked(
    digest_id: int, url: str, machine: bool, subscriber_id: int | None, at: datetime
) -> None:
    """Owe email.clicked, in the transaction that records the click: the digest, the
    link, whether the click was a machine's as it was judged when it came, and the
    subscriber only when their newsletter tracks per subscriber. Never an address or agent."""
    queue(
        EMAIL_CLICKED,
        {
            "digest_id": digest_id,
            "url": url,
            "machine": machine,
            "subscriber_id": subscriber_id,
            "clicked_at": _iso(at.replace(tzinfo=UTC)),
        },
    )


@event.listens_for(Session, "after_commit")
def _hint_after_commit(session):
    # After the commit, not before: a worker woken earlier would not see the rows.
    if session.info.pop(_QUEUED, False):
        hints.hint_webhooks()


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session, _previous_transaction):
    session.info.pop(_QUEUED, None)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class RunReport:
    outcomes: Counter
    # Due deliveries were left when the task's time was up.
    more: bool
    # Seconds until the next retry is due, when one is pending.
    retry_in: float | None

    def summary(self) -> dict:
        return dict(self.outcomes)


def deliver_due(seconds: float = TASK_SECONDS) -> RunReport:
    """Post the due deliveries, one at a time, for about ``seconds``."""
    deadline = time.monotonic() + seconds
    outcomes: Counter[str] = Counter()
    while time.monotonic() < deadline:
        delivery_id = _claim_next()
        if delivery_id is None:
            return RunReport(outcomes, more=False, retry_in=_next_due_in())
        outcomes[_attempt(delivery_id)] += 1
    return RunReport(outcomes, more=True, retry_in=None)


def _due(now: datetime):
    return (WebhookDelivery.status == WebhookDeliveryStatus.PENDING) & (
        WebhookDelivery.due_at <= now
    )


def any_due() -> bool:
    return bool(db.session.scalar(select(exists().where(_due(utcnow())))))


def _claim_next() -> int | None:
    """Take one due delivery for this worker: its due time moves on by the lease, and
    the attempt counts now, so one that keeps killing its worker is not tried forever."""
    now = utcnow()
    candidates = db.session.scalars(
        select(WebhookDelivery.id)
        .where(_due(now))
        .order_by(WebhookDelivery.due_at)
        .limit(CLAIM_CANDIDATES)
    ).all()
    for delivery_id in candidates:
        claimed = rows_changed(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, _due(now))
            .values(due_at=now + LEASE, attempts=WebhookDelivery.attempts + 1)
        )
        db.session.commit()
        if claimed:
            return delivery_id
    return None


def _next_due_in() -> float | None:
    next_due = db.session.scalar(
        select(func.min(WebhookDelivery.due_at)).where(
            WebhookDelivery.status == WebhookDeliveryStatus.PENDING
        )
    )
    db.session.commit()
    if next_due is None:
        return None
    return max(0.0, (next_due - utcnow()).total_seconds())


def _attempt(delivery_id: int) -> str:
    delivery = db.session.get_one(WebhookDelivery, delivery_id)
    request = _signed_request(delivery)
    # No transaction stays open while the endpoint takes its time.
    db.session.commit()
    status_code, error = _post(request, delivery_id)
    return _record(delivery_id, status_code, error)


@dataclass(frozen=True)
class SignedRequest:
    url: str
    body: bytes
    headers: dict[str, str]


def _signed_request(delivery: WebhookDelivery) -> SignedRequest:
    """The delivery as an HTTP request, signed now: the timestamp is this attempt's."""
    now = datetime.now(UTC)
    signature = Webhook(delivery.endpoint.secret).sign(delivery.webhook_id, now, delivery.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"{current_app.config['SITE_NAME']} webhooks",
        "webhook-id": delivery.webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return SignedRequest(delivery.endpoint.url, delivery.payload.encode(), headers)


def _post(request: SignedRequest, delivery_id: int) -> tuple[int | None, str | None]:
    """The endpoint's HTTP status (None: no answer) and, unless it took it (2xx), why
    not, as the admin may see it; the details go to the log."""
    config = current_app.config
    host = urlsplit(request.url).netloc
    try:
        status = outgoing_http.post(
            request.url,
            request.body,
            request.headers,
            allowed=outgoing_http.allowed_networks(config),
            timeout=config["WEBHOOK_TIMEOUT_SECONDS"],
        )
    except outgoing_http.PrivateAddress as error:
        log.warning("webhook delivery %d refused, not posted: %s", delivery_id, error)
        return None, REFUSED
    except (OSError, http.client.HTTPException, ValueError) as error:
        log.warning("webhook delivery %d to %s failed: %r", delivery_id, host, error)
        return None, FAILED
    if 200 <= status < 300:
        return status, None
    log.warning("webhook delivery %d to %s: HTTP %d", delivery_id, host, status)
    return status, f"{FAILED}: HTTP {status}"


def _record(delivery_id: int, status_code: int | None, error: str | None) -> str:
    """Keep how the attempt went, on the delivery and on its endpoint; a failed one is
    tried again after a wait that doubles each time, until WEBHOOK_MAX_ATTEMPTS."""
    delivery = db.session.get_one(WebhookDelivery, delivery_id)
    now = utcnow()
    error = error and error[:ERROR_LENGTH]
    delivery.last_status_code, delivery.last_error = status_code, error
    endpoint = delivery.endpoint
    endpoint.last_status, endpoint.last_error, endpoint.last_delivery_at = status_code, error, now
    config = current_app.config
    if error is None:
        delivery.status = WebhookDeliveryStatus.SENT
    elif delivery.attempts >= config["WEBHOOK_MAX_ATTEMPTS"]:
        delivery.status = WebhookDeliveryStatus.FAILED
    else:
        wait = config["WEBHOOK_RETRY_BASE_SECONDS"] * 2 ** (delivery.attempts - 1)
        delivery.due_at = now + timedelta(seconds=wait)
    outcome = "retry" if delivery.status == WebhookDeliveryStatus.PENDING else delivery.status
    db.session.commit()
    return str(outcome)
