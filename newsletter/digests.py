"""Digests: composing one from the posts not yet sent, and sending it to every
confirmed subscriber exactly once.

The ``delivery`` rows are the record of what must go out. A send starts by
writing one row per confirmed subscriber in a single INSERT … SELECT. Workers
then take batches of rows with one conditional UPDATE (a lease), send a batch
over one SMTP connection, and record the results with a bounded number of
statements per batch: sent messages DIGEST_RECORD_EVERY at a time, the rest at
the end. A worker that dies leaves a lease that runs out; the sweep hands its
rows to another worker. Broker messages only say "there is work for digest N".
"""

import time
from dataclasses import dataclass
from datetime import timedelta
from email.utils import formatdate

from flask import current_app
from sqlalchemy import and_, exists, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from newsletter import leases, mailer, pacing, settings
from newsletter.addresses import normalize_email
from newsletter.digest_mail import DigestMessages
from newsletter.extensions import db
from newsletter.models import (
    Delivery,
    DeliveryStatus,
    Digest,
    DigestStatus,
    Post,
    Subscriber,
    SubscriberStatus,
    digest_post,
    utcnow,
)

# Digests whose posts count as sent: they are no longer offered for a new digest.
COMMITTED = (DigestStatus.SCHEDULED, DigestStatus.SENDING, DigestStatus.PAUSED, DigestStatus.SENT)


class DigestError(ValueError):
    """The digest cannot do what was asked; the message says why."""


def unsent_posts():
    """Posts not yet in a digest that went (or is going) out, newest first."""
    committed = (
        select(digest_post.c.post_id)
        .join(Digest, Digest.id == digest_post.c.digest_id)
        .where(Digest.status.in_(COMMITTED))
    )
    return db.session.scalars(
        select(Post).where(Post.id.not_in(committed)).order_by(Post.published_at.desc())
    ).all()


def create_digest(subject, intro="", post_ids=None):
    """A draft digest of the given posts (default: every post not yet sent)."""
    subject = " ".join((subject or "").split())
    if not subject:
        raise DigestError("A digest needs a subject.")
    posts = unsent_posts()
    if post_ids is not None:
        chosen = set(post_ids)
        posts = [post for post in posts if post.id in chosen]
    if not posts:
        raise DigestError("There are no posts to send: import the feed or write a post first.")
    digest = Digest(subject=subject[:200], intro=intro or "", posts=posts)
    db.session.add(digest)
    db.session.commit()
    return digest


def start_sending(digest_id):
    """Owe the digest to every confirmed subscriber, and mark it sending.

    Safe to repeat: the (digest, subscriber) pairs are unique, so a repeat adds
    only subscribers confirmed since.
    """
    digest = db.session.get(Digest, digest_id)
    if digest is None:
        raise DigestError(f"There is no digest {digest_id}.")
    if digest.status == DigestStatus.SENT:
        raise DigestError("This digest was sent already.")
    if digest.status == DigestStatus.PAUSED:
        return
    now = utcnow()
    already = exists().where(
        Delivery.digest_id == digest_id, Delivery.subscriber_id == Subscriber.id
    )
    owed = insert(Delivery).from_select(
        ["digest_id", "subscriber_id", "status", "due_at", "attempts"],
        select(
            literal(digest_id),
            Subscriber.id,
            literal(DeliveryStatus.PENDING.value),
            literal(now),
            literal(0),
        ).where(Subscriber.status == SubscriberStatus.CONFIRMED, ~already),
    )
    try:
        db.session.execute(owed)
    except IntegrityError:
        # Another worker wrote the same deliveries at the same moment.
        db.session.rollback()
        digest = db.session.get(Digest, digest_id)
    digest.status = DigestStatus.SENDING
    digest.started_at = digest.started_at or now
    db.session.commit()


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    # Seconds until the earliest retry is due, when nothing else is left to do now.
    retry_in: float | None = None
    # The last batch found work, so there may be more.
    more: bool = False


def send_for(digest_id, seconds):
    """Send batch after batch for about ``seconds``, or until none is due.

    One task doing several batches costs one broker round trip for all of them
    instead of one each, which matters most on a polling broker.
    """
    deadline = time.monotonic() + seconds
    total = BatchResult()
    while True:
        result = send_batch(digest_id)
        for counted in ("claimed", "sent", "failed", "skipped", "retried"):
            setattr(total, counted, getattr(total, counted) + getattr(result, counted))
        total.retry_in, total.more = result.retry_in, bool(result.claimed)
        if not result.claimed or time.monotonic() >= deadline:
            return total


_message_makers = {}


def messages_for(digest):
    """One renderer per digest and process: the digest is rendered once, not per batch."""
    key = (id(current_app._get_current_object()), digest.id)
    if key not in _message_makers:
        _message_makers.clear()
        _message_makers[key] = DigestMessages(digest)
    return _message_makers[key]


def send_batch(digest_id):
    """Take one batch of the digest's due deliveries, send it, record what happened."""
    digest = db.session.get(Digest, digest_id)
    result = BatchResult()
    if digest is None or digest.status != DigestStatus.SENDING:
        return result
    maker = messages_for(digest)
    booking = pacing.book(current_app.config["DIGEST_BATCH_SIZE"])
    if booking is None:
        result.retry_in = pacing.RETRY_SECONDS
        return result
    recipients = _claim(digest_id, booking.size)
    result.claimed = len(recipients)
    if not recipients:
        return _when_idle(digest, result)
    outcome = {"sent": [], "skipped": [], "failed": [], "retry": [], "unsent": []}
    unrecorded = []
    record_every = current_app.config["DIGEST_RECORD_EVERY"]
    date = formatdate(usegmt=True)
    try:
        with mailer.connection() as sender:
            for position, (
                delivery_id,
                subscriber_id,
                email,
                name,
                nonce,
                status,
                attempts,
            ) in enumerate(recipients):
                if status != SubscriberStatus.CONFIRMED:
                    outcome["skipped"].append((delivery_id, subscriber_id, None))
                    continue
                raw = maker.build(subscriber_id, email, name, nonce, date=date)
                if not booking.take_turn():
                    outcome["unsent"] = [(row[0], None, None) for row in recipients[position:]]
                    break
                try:
                    sender.send(email, raw)
                except mailer.ConnectionFailure:
                    raise
                except mailer.PermanentFailure as error:
                    outcome["failed"].append((delivery_id, subscriber_id, str(error)))
                except mailer.TemporaryFailure as error:
                    outcome["retry"].append((delivery_id, attempts, str(error)))
                else:
                    outcome["sent"].append((delivery_id, subscriber_id, None))
                    unrecorded.append(delivery_id)
                    if len(unrecorded) >= record_every:
                        _mark_sent(unrecorded)
                        db.session.commit()
                        unrecorded = []
    except mailer.ConnectionFailure as error:
        done = {row[0] for rows in outcome.values() for row in rows}
        outcome["retry"] += [
            (row[0], row[6], str(error)) for row in recipients if row[0] not in done
        ]
    _mark_sent(unrecorded)
    _record(outcome, result)
    return result


def _claim(digest_id, size):
    claimed = leases.take_due(
        Delivery,
        Delivery.digest_id == digest_id,
        Delivery.status == DeliveryStatus.PENDING,
        order_by=Delivery.id,
        limit=size,
    )
    if not claimed:
        return []
    return db.session.execute(
        select(
            Delivery.id,
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.token_nonce,
            Subscriber.status,
            Delivery.attempts,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id.in_(claimed))
        .order_by(Delivery.id)
    ).all()


def _mark_sent(delivery_ids):
    """Record accepted messages, DIGEST_RECORD_EVERY at a time: a worker killed
    mid-batch repeats at most that many, not the whole batch."""
    if delivery_ids:
        db.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(delivery_ids))
            .values(status=DeliveryStatus.SENT, sent_at=utcnow(), lease_until=None)
        )


def _record(outcome, result):
    """Write the rest of a batch's results: a fixed number of statements, whatever its size."""
    now = utcnow()
    config = current_app.config
    sent = [row[0] for row in outcome["sent"]]
    if sent:
        reached = [row[1] for row in outcome["sent"]]
        db.session.execute(
            update(Subscriber)
            .where(Subscriber.id.in_(reached), Subscriber.hard_bounces > 0)
            .values(hard_bounces=0)
        )
    skipped = [row[0] for row in outcome["skipped"]]
    if skipped:
        db.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(skipped))
            .values(status=DeliveryStatus.SKIPPED, lease_until=None)
        )
    failed = outcome["failed"]
    retry = []
    for delivery_id, attempts, error in outcome["retry"]:
        if attempts >= config["SEND_MAX_ATTEMPTS"]:
            failed.append((delivery_id, None, error))
        else:
            retry.append((delivery_id, attempts, error))
    if failed:
        db.session.execute(
            update(Delivery),
            [
                {
                    "id": d,
                    "status": DeliveryStatus.FAILED,
                    "lease_until": None,
                    "last_error": e[:500],
                }
                for d, _, e in failed
            ],
        )
        bounced = [subscriber_id for _, subscriber_id, _ in failed if subscriber_id]
        if bounced:
            db.session.execute(
                update(Subscriber)
                .where(Subscriber.id.in_(bounced))
                .values(hard_bounces=Subscriber.hard_bounces + 1)
            )
            db.session.execute(
                update(Subscriber)
                .where(
                    Subscriber.id.in_(bounced),
                    Subscriber.hard_bounces >= config["BOUNCE_LIMIT"],
                    Subscriber.status == SubscriberStatus.CONFIRMED,
                )
                .values(status=SubscriberStatus.BOUNCED)
            )
    if retry:
        db.session.execute(
            update(Delivery),
            [
                {
                    "id": d,
                    "lease_until": None,
                    "due_at": now + timedelta(seconds=leases.retry_delay(attempts)),
                    "last_error": e[:500],
                }
                for d, attempts, e in retry
            ],
        )
    unsent = [row[0] for row in outcome["unsent"]]
    if unsent:
        db.session.execute(
            update(Delivery)
            .where(Delivery.id.in_(unsent))
            .values(lease_until=None, attempts=Delivery.attempts - 1)
        )
    db.session.commit()
    result.sent, result.skipped = len(sent), len(skipped)
    result.failed, result.retried = len(failed), len(retry)


def _when_idle(digest, result):
    """Nothing to claim now: finish the digest, or say when its next retry is due."""
    now = utcnow()
    pending = and_(Delivery.digest_id == digest.id, Delivery.status == DeliveryStatus.PENDING)
    next_due = db.session.scalar(select(func.min(Delivery.due_at)).where(pending))
    if next_due is None:
        finished = db.session.execute(
            update(Digest)
            .where(Digest.id == digest.id, Digest.status == DigestStatus.SENDING)
            .values(status=DigestStatus.SENT, finished_at=now)
        ).rowcount
        db.session.commit()
        if finished:
            _message_makers.clear()
    elif next_due > now:
        result.retry_in = (next_due - now).total_seconds()
    return result


def progress(digest_id):
    """Deliveries per status for one digest, every status present."""
    rows = db.session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.digest_id == digest_id)
        .group_by(Delivery.status)
    ).tuples()
    counts = dict(rows.all())
    return {status.value: counts.get(status.value, 0) for status in DeliveryStatus}


def set_paused(digest_id, paused):
    """Pause a sending digest, or resume a paused one. Returns True if it changed."""
    before, after = (
        (DigestStatus.SENDING, DigestStatus.PAUSED)
        if paused
        else (DigestStatus.PAUSED, DigestStatus.SENDING)
    )
    changed = db.session.execute(
        update(Digest).where(Digest.id == digest_id, Digest.status == before).values(status=after)
    ).rowcount
    db.session.commit()
    return bool(changed)


def stalled_digest_ids():
    """Sending digests whose hints were lost: due deliveries but no batch in any
    worker's hands, or none left at all but nobody marked the digest sent. A batch
    task settles either."""
    now = utcnow()
    pending = and_(Delivery.digest_id == Digest.id, Delivery.status == DeliveryStatus.PENDING)
    in_hand = exists().where(pending, Delivery.lease_until >= now)
    stalled = and_(exists().where(pending, Delivery.due_at <= now), ~in_hand)
    unfinished = ~exists().where(pending)
    return db.session.scalars(
        select(Digest.id).where(Digest.status == DigestStatus.SENDING, or_(stalled, unfinished))
    ).all()


def schedule(digest_id, at=None):
    """Send the digest at ``at`` (naive UTC; default now). Recorded before any hint is
    published, so the sweep starts it even if the hint is lost."""
    digest = db.session.get(Digest, digest_id)
    if digest is None or digest.status not in (DigestStatus.DRAFT, DigestStatus.SCHEDULED):
        raise DigestError("Only a draft can be scheduled.")
    digest.status = DigestStatus.SCHEDULED
    digest.scheduled_at = at or utcnow()
    db.session.commit()


def due_scheduled_digest_ids():
    return db.session.scalars(
        select(Digest.id).where(
            Digest.status == DigestStatus.SCHEDULED, Digest.scheduled_at <= utcnow()
        )
    ).all()


def send_test(digest_id, address):
    """Send one copy of a digest to an address, as a subscriber would get it."""
    digest = db.session.get(Digest, digest_id)
    if digest is None:
        raise DigestError(f"There is no digest {digest_id}.")
    address = normalize_email(address)
    raw = DigestMessages(digest).build(0, address, "", "test")
    with mailer.connection() as sender:
        sender.send(address, raw)


def history(limit=50):
    """Recent digests, newest first, each with its delivery counts."""
    found = db.session.scalars(select(Digest).order_by(Digest.id.desc()).limit(limit)).all()
    return [(digest, progress(digest.id)) for digest in found]


def run_periodic(now=None):
    """Send this week's digest if admins turned it on and its hour has come.

    Returns the new digest's id, or None. Runs at most once a day even if beat
    calls it often; a week without new posts sends nothing.
    """
    now = now or utcnow()
    chosen = settings.current()
    due = (
        chosen.periodic_enabled
        and now.weekday() == chosen.periodic_weekday
        and now.hour >= chosen.periodic_hour
        and (chosen.periodic_last_run_at is None or chosen.periodic_last_run_at.date() < now.date())
    )
    if not due:
        return None
    chosen.periodic_last_run_at = now
    db.session.commit()
    try:
        digest = create_digest(f"{current_app.config['SITE_NAME']}: {now:%d %B %Y}")
    except DigestError:
        return None
    schedule(digest.id)
    return digest.id
