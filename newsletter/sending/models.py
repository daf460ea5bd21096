"""What the data is about mail owed: transactional email jobs, digest deliveries, and the
senders' shared pacing and wake-ups."""

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter.core.models import utcnow
from newsletter.extensions import Model

if TYPE_CHECKING:
    from newsletter.subscribers.models import Subscriber


class DomainPace(Model):
    """A recipient domain that asked us to slow down, and the pace every worker keeps
    for it (sending/domain_pacing.py)."""

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    interval_seconds: Mapped[float]
    # Unix time of its next turn.
    next_at: Mapped[float]


class EmailKind(StrEnum):
    CONFIRMATION = "confirmation"
    WELCOME = "welcome"
    # A preferences link that opens the subscriber's data, which they asked for by email.
    DATA_LINK = "data_link"


class JobStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    # Not needed any more, e.g. a confirmation for an address already confirmed.
    SKIPPED = "skipped"


class EmailJob(Model):
    """One transactional email owed to a subscriber.

    The row, not the broker message, is the record that the email must go out:
    a worker takes a lease on it, sends, and marks it sent; a sweep re-queues
    rows whose lease ran out, so a lost task or a killed worker delays mail but
    never loses it.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    finished_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    message_id: Mapped[str | None] = mapped_column(String(255))

    subscriber: Mapped["Subscriber"] = relationship(back_populates="jobs")

    __table_args__ = (Index("ix_email_job_status_due", "status", "due_at"),)


class Hint(Model):
    """Whether a hint to send email jobs is on its way to a worker (see sending/hints.py).

    One row per kind of work; the migration makes the row for email jobs.
    """

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    pending: Mapped[bool] = mapped_column(default=False)
    set_at: Mapped[datetime | None]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    # The subscriber left (or bounced) before their copy went out.
    SKIPPED = "skipped"


class Delivery(Model):
    """One subscriber's copy of one digest: the record that it must go out, and how it went.

    Unique per (digest, subscriber), so no subscriber ever gets a digest twice
    however often its send is started or resumed.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    digest_id: Mapped[int] = mapped_column(ForeignKey("digest.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        UniqueConstraint("digest_id", "subscriber_id"),
        Index("ix_delivery_digest_status_due", "digest_id", "status", "due_at"),
        Index("ix_delivery_subscriber_id", "subscriber_id"),
    )
