"""What comes back about the mail we send, and what it does to the subscriber.

Reports arrive from the inbound listener (delivery status notifications, ARF
complaint reports, mail to the unsubscribe address) and from providers' webhooks;
each becomes a ``Report`` and goes through ``record``. The policy:

- a hard bounce (5.x.x for the recipient) marks the subscriber bounced at once;
- soft bounces (a final 4.x.x: mailbox full…) do once BOUNCE_SOFT_LIMIT of them fall
  within BOUNCE_SOFT_DAYS; a delivery reported after them clears them;
- a complaint marks the subscriber complained, and unsubscribes them in the consent log;
- mail to a subscriber's unsubscribe address unsubscribes them at once, as the one-click
  link does: from the newsletter whose email carried it, or from everything.

Only what we signed names the subscriber of a report that came by mail: the VERP return
path, our Message-ID, our unsubscribe link or mailto address (each carries a MAC under
the secret key). A provider's webhook, whose request the provider signed, may name
them by address. A report that names nobody verifiably is kept and changes nothing.

A bounced or complained address is also kept as a hash (SuppressedAddress), so that
no import and no sign-up form adds it again, even after its row is gone.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, case, distinct, func, or_, select
from sqlalchemy.exc import IntegrityError

from newsletter.bounces.models import FeedbackEvent, FeedbackKind
from newsletter.content.models import Digest
from newsletter.core import suppression, tokens
from newsletter.core.models import SuppressedAddress, utcnow
from newsletter.extensions import db
from newsletter.mail import mailto, return_path
from newsletter.sending.models import Delivery
from newsletter.subscribers import lifecycle
from newsletter.subscribers.models import ConsentEvent, ConsentKind, Subscriber, SubscriberStatus
from newsletter.webhooks import outgoing

log = logging.getLogger(__name__)

STILL_MAILED = (SubscriberStatus.PENDING, SubscriberStatus.CONFIRMED)
DETAIL_LENGTH = 500
# An unsubscribe this soon after a digest started counts as a reaction to it.
UNSUBSCRIBE_WINDOW = timedelta(days=7)
# The consent log's source for a complaint, which unsubscribes the subscriber.
COMPLAINT_SOURCE = "complaint"
REACTIONS = (FeedbackKind.HARD_BOUNCE, FeedbackKind.SOFT_BOUNCE, FeedbackKind.COMPLAINT)


@dataclass(frozen=True)
class Report:
    """One thing that came back, as its source told it; any field may be missing."""

    # None: a delivery, which only clears the subscriber's soft bounces (``delivered``).
    kind: FeedbackKind | None
    # dsn, arf, mailto, mailgun, ses, postmark, sendgrid
    source: str
    # The report's own id at its source: the same report twice counts once.
    reference: str | None = None
    # What names the subscriber, best first: the VERP return path the report came back
    # to (or quotes), the signed Message-ID of our message, the https unsubscribe link
    # of our message (its List-Unsubscribe header, which a complaint report quotes even
    # when it redacts the recipient), the mailto unsubscribe address written to.
    return_path: str | None = None
    message_id: str | None = None
    unsubscribe_url: str | None = None
    unsubscribe_address: str | None = None
    # The recipient's address as the report gives it; it names the subscriber only when
    # ``address_is_vouched_for`` (a provider's signed webhook): anybody can write one.
    address: str | None = None
    address_is_vouched_for: bool = False
    status: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class ReportTarget:
    subscriber: Subscriber | None
    digest_id: int | None = None
    # The newsletter a mailto unsubscribe leaves (None: everything).
    newsletter_id: int | None = None


def record(report: Report) -> FeedbackEvent | None:
    """Keep the report and apply the policy to its subscriber; None when this report was
    recorded before (nothing changes twice)."""
    try:
        event = add(report)
    except IntegrityError:
        # The same report, recorded by another worker a moment ago.
        db.session.rollback()
        return None
    db.session.commit()
    return event


def add(report: Report) -> FeedbackEvent | None:
    """``record`` within the caller's transaction, which commits it with its own writes
    (the inbound listener's message is marked processed with its feedback). Raises
    IntegrityError when another transaction recorded the same report a moment ago."""
    if report.kind is None:
        raise ValueError("a delivery is kept nowhere: see delivered")
    if report.reference and db.session.scalar(
        select(FeedbackEvent.id).where(
            FeedbackEvent.source == report.source, FeedbackEvent.reference == report.reference
        )
    ):
        return None
    target = find_target(report)
    event = FeedbackEvent(
        subscriber_id=target.subscriber and target.subscriber.id,
        digest_id=target.digest_id,
        kind=report.kind,
        source=report.source,
        reference=report.reference and report.reference[:200],
        status=report.status,
        detail=report.detail and report.detail[:DETAIL_LENGTH],
    )
    db.session.add(event)
    db.session.flush()
    if target.subscriber is not None:
        event.changed_status = POLICY[report.kind](target.subscriber, target.newsletter_id, report)
        # An unsubscribe tells the webhooks itself, as the one-click link does.
        if event.changed_status and report.kind != FeedbackKind.UNSUBSCRIBE:
            outgoing.subscriber_changed(target.subscriber)
    log.info(
        "%s %s from %s for %s%s",
        report.source,
        report.kind,
        report.reference or "-",
        target.subscriber.email if target.subscriber else "no known reader",
        " (status changed)" if event.changed_status else "",
    )
    return event


def delivered(report: Report) -> None:
    """A provider's word that a message reached the mailbox: the subscriber's soft bounces
    no longer count. Nothing is kept of it."""
    subscriber = find_target(report).subscriber
    if subscriber is not None:
        subscriber.soft_bounces_cleared_at = utcnow()
        db.session.commit()


def find_target(report: Report) -> ReportTarget:
    """The subscriber (and digest) a report is about, by what it quotes that we signed,
    best first; by its address only when a provider vouches for it."""
    reference = return_path.read(report.return_path or "") or return_path.read_message_id(
        report.message_id
    )
    if reference is not None:
        subscriber = _by_nonce(reference.nonce)
        digest_id = reference.row_id if reference.kind == return_path.DIGEST else None
        return ReportTarget(subscriber, _existing_digest(digest_id) if subscriber else None)
    if report.unsubscribe_url:
        return ReportTarget(subscriber_by_unsubscribe_url(report.unsubscribe_url))
    if unsubscribe := mailto.read(report.unsubscribe_address or ""):
        return ReportTarget(_by_nonce(unsubscribe.nonce), newsletter_id=unsubscribe.newsletter_id)
    address = (report.address or "").strip().strip("<>").lower()
    if not address or not report.address_is_vouched_for:
        return ReportTarget(None)
    return ReportTarget(db.session.scalar(select(Subscriber).where(Subscriber.email == address)))


def _by_nonce(nonce: str) -> Subscriber | None:
    return db.session.scalar(select(Subscriber).where(Subscriber.token_nonce == nonce))


def subscriber_by_unsubscribe_url(url: str) -> Subscriber | None:
    """The subscriber an unsubscribe link of ours names, if any (these links never expire)."""
    prefix = f"{current_app.config['BASE_URL']}/{tokens.UNSUBSCRIBE}/"
    url = url.strip().strip("<>")
    if not url.startswith(prefix):
        return None
    try:
        nonce = tokens.read_token(tokens.UNSUBSCRIBE, url.removeprefix(prefix))
    except tokens.TokenInvalid:
        return None
    return _by_nonce(nonce)


def _existing_digest(digest_id: int | None) -> int | None:
    """The digest's id if it is still there (an admin may have deleted it since)."""
    if digest_id is None or db.session.get(Digest, digest_id) is None:
        return None
    return digest_id


def _hard_bounce(subscriber: Subscriber, _newsletter_id: int | None, _report: Report) -> bool:
    _suppress(subscriber, "bounced")
    return _set_status(subscriber, SubscriberStatus.BOUNCED)


def _soft_bounce(subscriber: Subscriber, newsletter_id: int | None, report: Report) -> bool:
    """Bounced once BOUNCE_SOFT_LIMIT soft bounces (this one included) fall within the
    last BOUNCE_SOFT_DAYS, none of them before a reported delivery."""
    since = utcnow() - timedelta(days=current_app.config["BOUNCE_SOFT_DAYS"])
    if subscriber.soft_bounces_cleared_at is not None:
        since = max(since, subscriber.soft_bounces_cleared_at)
    soft_bounces = db.session.execute(
        select(func.count(FeedbackEvent.id)).where(
            FeedbackEvent.subscriber_id == subscriber.id,
            FeedbackEvent.kind == FeedbackKind.SOFT_BOUNCE,
            FeedbackEvent.at > since,
        )
    ).scalar_one()
    if soft_bounces < current_app.config["BOUNCE_SOFT_LIMIT"]:
        return False
    return _hard_bounce(subscriber, newsletter_id, report)


def _complaint(subscriber: Subscriber, _newsletter_id: int | None, _report: Report) -> bool:
    _suppress(subscriber, "complained")
    if subscriber.status == SubscriberStatus.COMPLAINED:
        return False
    subscriber.status = SubscriberStatus.COMPLAINED
    subscriber.unsubscribed_at = utcnow()
    db.session.add(
        ConsentEvent(
            subscriber_id=subscriber.id, kind=ConsentKind.UNSUBSCRIBE, source=COMPLAINT_SOURCE
        )
    )
    return True


def _unsubscribe(subscriber: Subscriber, newsletter_id: int | None, report: Report) -> bool:
    """As the one-click link does: off the newsletter the address names (one since
    deleted: everything), else off everything."""
    return lifecycle.unsubscribe_known(subscriber, newsletter_id, report.source)


# What each kind of report does to the subscriber it names, given the newsletter a mailto
# unsubscribe leaves (None: everything); whether their status changed.
POLICY: dict[FeedbackKind, Callable[[Subscriber, int | None, Report], bool]] = {
    FeedbackKind.HARD_BOUNCE: _hard_bounce,
    FeedbackKind.SOFT_BOUNCE: _soft_bounce,
    FeedbackKind.COMPLAINT: _complaint,
    FeedbackKind.UNSUBSCRIBE: _unsubscribe,
}


def _set_status(subscriber: Subscriber, status: SubscriberStatus) -> bool:
    if subscriber.status not in STILL_MAILED:
        return False
    subscriber.status = status
    return True


def _suppress(subscriber: Subscriber, reason: str) -> None:
    """Keep the address's hash, so that it is never added again once its row is gone."""
    digest = suppression.address_hash(subscriber.email)
    if db.session.get(SuppressedAddress, digest) is None:
        db.session.add(SuppressedAddress(address_hash=digest, reason=reason))


def reactions(digests: list[Digest]) -> dict[int, dict[str, int]]:
    """For each digest, its subscribers who bounced, complained, or unsubscribed within
    UNSUBSCRIBE_WINDOW after it started (by any means but a complaint), counted once each."""
    ids = [digest.id for digest in digests]
    counted = {digest_id: {"bounced": 0, "complained": 0, "unsubscribed": 0} for digest_id in ids}
    figure = case((FeedbackEvent.kind == FeedbackKind.COMPLAINT, "complained"), else_="bounced")
    reported = db.session.execute(
        select(FeedbackEvent.digest_id, figure, func.count(distinct(FeedbackEvent.subscriber_id)))
        .where(FeedbackEvent.digest_id.in_(ids), FeedbackEvent.kind.in_(REACTIONS))
        .group_by(FeedbackEvent.digest_id, figure)
    )
    for digest_id, name, subscribers in reported:
        counted[digest_id][name] = subscribers
    for digest_id, subscribers in _unsubscribed_after(digests):
        counted[digest_id]["unsubscribed"] = subscribers
    return counted


def _unsubscribed_after(digests: list[Digest]) -> Sequence[tuple[int, int]]:
    """For each digest that started, its subscribers who left (everything, or its newsletter)
    within UNSUBSCRIBE_WINDOW of its start, in one query; the consent log says when, the
    digest's copies who (so none once they are folded away)."""
    started: list[tuple[int, datetime]] = [
        (digest.id, digest.started_at) for digest in digests if digest.started_at is not None
    ]
    if not started:
        return []
    # Each digest's own window, bounds computed here: the same SQL on SQLite and PostgreSQL.
    within_its_window = or_(
        *(
            and_(
                Delivery.digest_id == digest_id,
                ConsentEvent.at >= started_at,
                ConsentEvent.at < started_at + UNSUBSCRIBE_WINDOW,
            )
            for digest_id, started_at in started
        )
    )
    return (
        db.session.execute(
            select(Delivery.digest_id, func.count(distinct(ConsentEvent.subscriber_id)))
            .select_from(ConsentEvent)
            .join(Delivery, Delivery.subscriber_id == ConsentEvent.subscriber_id)
            .join(Digest, Digest.id == Delivery.digest_id)
            .where(
                Delivery.digest_id.in_([digest_id for digest_id, _started_at in started]),
                Delivery.sent_at.is_not(None),
                or_(
                    ConsentEvent.kind == ConsentKind.UNSUBSCRIBE,
                    # Leaving this digest's newsletter and no other counts too.
                    and_(
                        ConsentEvent.kind == ConsentKind.LEAVE,
                        ConsentEvent.newsletter_id == Digest.newsletter_id,
                    ),
                ),
                # Complaints are counted apart.
                ConsentEvent.source != COMPLAINT_SOURCE,
                within_its_window,
            )
            .group_by(Delivery.digest_id)
        )
        .tuples()
        .all()
    )


def events_of(subscriber_id: int) -> list[FeedbackEvent]:
    """What came back about a subscriber's mail, newest first."""
    return list(
        db.session.scalars(
            select(FeedbackEvent)
            .where(FeedbackEvent.subscriber_id == subscriber_id)
            .order_by(FeedbackEvent.id.desc())
        )
    )
