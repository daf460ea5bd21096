"""Digest copies, as the engine sends them: one ``Delivery`` row per subscriber.

A send starts by writing one row per confirmed subscriber in a single INSERT … SELECT
(digests.start_sending). Broker messages only say "there is work for digest N";
a batch task claims rows of that digest and sends them under the admins' rate
limit (pacing.py). When none is left the digest is marked sent.
"""

import functools
import logging

from flask import current_app
from sqlalchemy import ColumnElement, and_, exists, or_, select, update

from newsletter.content import digests
from newsletter.content.models import Digest, DigestStatus
from newsletter.core.models import utcnow
from newsletter.core.writes import rows_changed
from newsletter.engagement import links
from newsletter.extensions import db
from newsletter.mail import return_path
from newsletter.mail.digest import DigestMessages
from newsletter.mail.relay import Envelope
from newsletter.mail.templates import TemplateFailed
from newsletter.sending import engine, leases, outcome_writer, pacing
from newsletter.sending.kinds import claim_rows, next_due_in, unsent
from newsletter.sending.models import Delivery, DeliveryStatus
from newsletter.sending.outcomes import Claim, Email, RunReport, cut
from newsletter.sending.pacing import Booking
from newsletter.subscribers.models import SubscriberStatus
from newsletter.webhooks import outgoing

log = logging.getLogger("newsletter.sending")


class DigestDeliveries:
    model = Delivery
    sent_column = "sent_at"
    # A copy's Message-ID is signed from the digest and the subscriber, the same every time.
    keeps_message_id = False
    gather_seconds = 0.0
    linger_seconds = 0.0

    def __init__(self, digest: Digest):
        self.digest_id = digest.id
        self.label = f"digest {digest.id}"
        self.messages = messages_for(digest)
        self.batch_size = current_app.config["DIGEST_BATCH_SIZE"]
        # Whether a note that the digest waits for the relay may be on it, to be
        # cleared once copies go out again; nothing to clear costs no statement.
        self.may_wait = digest.paused_reason is not None

    def book(self, size: int) -> Booking | None:
        return pacing.book(size)

    def claim(self, size: int) -> list[Claim]:
        still_sending = select(Digest.id).where(
            Digest.id == self.digest_id, Digest.status == DigestStatus.SENDING
        )
        ids = leases.take_due(
            Delivery,
            Delivery.digest_id.in_(still_sending),
            Delivery.status == DeliveryStatus.PENDING,
            unsent(self),
            # The (digest, status, due_at) index gives the rows in this order, so a
            # claim reads a batch's worth of rows, not every row still pending.
            order_by=Delivery.due_at,
            limit=size,
        )
        return claim_rows(Delivery, ids, digest_id=self.digest_id)

    def wanted(self, claim: Claim) -> bool:
        return claim.subscriber.status == SubscriberStatus.CONFIRMED

    def build(self, claim: Claim, date: str) -> Email:
        subscriber = claim.subscriber
        message_id = self.messages.message_id(subscriber)
        raw = self.messages.build(subscriber, date, message_id)
        envelope = Envelope(
            subscriber.email,
            return_path.for_message(subscriber.token_nonce, return_path.DIGEST, self.digest_id),
        )
        return Email(envelope, raw, message_id)

    def refused(self, reason: str) -> None:
        """Pause the digest and say why: every copy would meet the same refusal."""
        pause(self.digest_id, reason)

    def waiting(self, note: str | None) -> None:
        """Say on the sending digest that it waits for the relay (its admin page shows
        ``paused_reason``), or clear that once copies go out again: at most one
        statement per run, none when there is nothing to clear."""
        if note is None and not self.may_wait:
            return
        self.may_wait = note is not None
        db.session.execute(
            update(Digest)
            .where(Digest.id == self.digest_id, Digest.status == DigestStatus.SENDING)
            .values(paused_reason=cut(note))
        )

    def owed(self) -> tuple[ColumnElement[bool], ...]:
        return (Delivery.digest_id == self.digest_id, Delivery.status == DeliveryStatus.PENDING)

    def when_idle(self) -> float | None:
        """Mark the digest sent when no copy is left to write or send; else say when
        the next retry is due. Copies the task that started the digest did not get
        to write (it died) are written here."""
        pending = and_(*self.owed())
        outcome_writer.settle_stragglers(self, pending)
        if db.session.scalar(select(exists().where(pending))):
            return next_due_in(Delivery, pending)
        if digests.owe_more(self.digest_id):
            return 0.0
        finished = rows_changed(
            update(Digest)
            .where(
                Digest.id == self.digest_id,
                Digest.status == DigestStatus.SENDING,
                Digest.owed_through.is_(None),
            )
            .values(status=DigestStatus.SENT, finished_at=utcnow(), paused_reason=None)
        )
        if finished:
            digests.keep_totals(self.digest_id)
            outgoing.digest_sent(self.digest_id)
        db.session.commit()
        if finished:
            _message_makers.clear()
        return None


_message_makers: dict[tuple[int, int], DigestMessages] = {}


def messages_for(digest: Digest) -> DigestMessages:
    """One renderer per digest and process: the digest is rendered once, not per batch.
    A tracked newsletter's digest has its links recorded (links.positions_for)."""
    # current_app is a proxy, typed as the Flask app it stands for.
    key = (id(current_app._get_current_object()), digest.id)  # type: ignore[attr-defined]
    if key not in _message_makers:
        _message_makers.clear()
        track = (
            functools.partial(links.positions_for, digest.id)
            if links.is_tracked(digest.newsletter)
            else None
        )
        _message_makers[key] = DigestMessages(digest, track_links=track)
    return _message_makers[key]


def pause(digest_id: int, reason: str) -> None:
    """Pause a sending digest, saying why on its page; its copies stay owed, for the
    admin to resume. The caller commits."""
    db.session.execute(
        update(Digest)
        .where(Digest.id == digest_id, Digest.status == DigestStatus.SENDING)
        .values(status=DigestStatus.PAUSED, paused_reason=cut(reason))
    )


def send_for(digest_id: int, seconds: float) -> RunReport:
    """Send the digest's due copies, batch after batch, for about ``seconds``.

    A digest whose template fails is paused, not sent with another: the admin fixes
    it and resumes, and every copy goes out once, as they wrote it."""
    digest = db.session.get(Digest, digest_id)
    if digest is None or digest.status != DigestStatus.SENDING:
        return RunReport()
    try:
        deliveries = DigestDeliveries(digest)
    except TemplateFailed as failure:
        log.warning("digest %d paused: %s", digest_id, failure)
        pause(digest_id, str(failure))
        db.session.commit()
        return RunReport()
    return engine.run(deliveries, seconds)


def stalled_digest_ids() -> list[int]:
    """Sending digests whose hints were lost: due deliveries but no batch in any
    worker's hands, or none left at all but nobody marked the digest sent. A batch
    task settles either."""
    now = utcnow()
    pending = and_(Delivery.digest_id == Digest.id, Delivery.status == DeliveryStatus.PENDING)
    in_hand = exists().where(pending, Delivery.lease_until >= now)
    stalled = and_(exists().where(pending, Delivery.due_at <= now), ~in_hand)
    unfinished = ~exists().where(pending)
    return list(
        db.session.scalars(
            select(Digest.id).where(Digest.status == DigestStatus.SENDING, or_(stalled, unfinished))
        )
    )
