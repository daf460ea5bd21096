"""What the engine asks of each kind of email it sends, and the queries every kind shares.

Confirmation and welcome emails (``EmailJobs``) and digest copies
(``DigestDeliveries``) are rows of work that the engine treats alike; a ``Kind``
says what differs: which rows to claim, how to build each message, how fast it
may go out, and what to do when the relay refuses the message itself.
"""

from datetime import datetime
from typing import Protocol

from sqlalchemy import ColumnElement, func, null, select
from sqlalchemy.orm import InstrumentedAttribute

from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.sending import leases
from newsletter.sending.models import EmailKind
from newsletter.sending.outcomes import Claim, Email, WorkModel
from newsletter.sending.pacing import Booking
from newsletter.subscribers.models import Subscriber, SubscriberSnapshot


class Kind(Protocol):
    """What differs between the kinds of email the engine sends."""

    label: str
    # The column that says when a row's message was accepted: set at once, before
    # the row's status, which follows at the end of the batch.
    sent_column: str
    keeps_message_id: bool
    batch_size: int
    # Between batches that were not full, a run waits this long for more rows, and
    # it ends after ``linger_seconds`` without any.
    gather_seconds: float
    linger_seconds: float

    @property
    def model(self) -> WorkModel: ...

    def book(self, size: int) -> Booking | None:
        """Time to send up to ``size`` messages, or None when none is free now."""

    def claim(self, size: int) -> list[Claim]: ...

    def wanted(self, claim: Claim) -> bool:
        """Whether the subscriber still wants this message."""

    def build(self, claim: Claim, date: str) -> Email: ...

    def refused(self, reason: str) -> None:
        """The relay refuses the message itself, for everyone: say so in the batch's
        transaction, which the engine commits."""

    def when_idle(self) -> float | None:
        """Nothing to claim: settle what must be settled, and say in how many
        seconds the next row is due (None when none waits)."""

    def owed(self) -> tuple[ColumnElement[bool], ...]:
        """The conditions on ``model`` of the rows this kind still owes."""

    def waiting(self, note: str | None) -> None:
        """The mail waits for the relay, as ``note`` says; None: mail goes out again.
        In the batch's transaction."""


def unsent(kind: Kind) -> ColumnElement[bool]:
    """Rows whose message no relay has accepted yet: the only ones a claim may take."""
    sent_at: InstrumentedAttribute[datetime | None] = getattr(kind.model, kind.sent_column)
    return sent_at.is_(None)


def claim_rows(
    model: WorkModel,
    ids: list[int],
    email_kind_column: InstrumentedAttribute[str] | None = None,
    digest_id: int | None = None,
) -> list[Claim]:
    """The claimed rows with what their messages need of each subscriber, in one query;
    commits the claim. An email job's claim says which email it owes (read from
    ``email_kind_column``), a digest copy's which digest."""
    if not ids:
        db.session.commit()
        return []
    rows = db.session.execute(
        select(
            model.id,
            model.attempts,
            null() if email_kind_column is None else email_kind_column,
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.token_nonce,
            Subscriber.status,
            Subscriber.hard_bounces,
            Subscriber.locale,
        )
        .join(Subscriber, Subscriber.id == model.subscriber_id)
        .where(leases.among(model.id, ids))
        .order_by(model.id)
    ).all()
    # No transaction stays open while the batch is sent: it would keep PostgreSQL's
    # vacuum and SQLite's checkpoints from cleaning up behind the other workers.
    db.session.commit()
    return [
        Claim(
            row_id,
            attempts,
            SubscriberSnapshot(*subscriber),
            email_kind=None if email_kind is None else EmailKind(email_kind),
            digest_id=digest_id,
        )
        for row_id, attempts, email_kind, *subscriber in rows
    ]


def next_due_in(model: WorkModel, *open_rows: ColumnElement[bool]) -> float | None:
    """Seconds until the earliest of ``open_rows`` is due, if it lies ahead."""
    now = utcnow()
    next_due: datetime | None = db.session.scalar(select(func.min(model.due_at)).where(*open_rows))
    if next_due is None or next_due <= now:
        return None
    return (next_due - now).total_seconds()
