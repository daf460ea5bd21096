"""What the data is about mail that came back: bounces, complaints, unsubscribes by mail,
and the inbound messages and provider webhooks they came in."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.core.models import utcnow
from newsletter.extensions import Model


class FeedbackKind(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    # A mail to the unsubscribe address (LIST_UNSUBSCRIBE_MAILTO).
    UNSUBSCRIBE = "unsubscribe"


class FeedbackEvent(Model):
    """What came back about a message sent: a bounce, a complaint or an unsubscribe by
    mail, from the inbound listener or a provider's webhook (feedback.py)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE"), index=True
    )
    digest_id: Mapped[int | None] = mapped_column(
        ForeignKey("digest.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    # Where it came from: dsn, arf, mailto, mailgun, ses, postmark, sendgrid…
    source: Mapped[str] = mapped_column(String(16))
    # The enhanced status code of a bounce (5.1.1) and the receiving system's words.
    status: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(500))
    # The report's own id at its source (a provider's event id, a report's Message-ID):
    # the same report twice counts once.
    reference: Mapped[str | None] = mapped_column(String(200))
    # Whether it changed the subscriber's status (bounced, complained, unsubscribed).
    changed_status: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (UniqueConstraint("source", "reference"),)


class InboundMessage(Model):
    """A message the inbound listener accepted for its addresses (a bounce, a
    complaint report, an unsubscribe by mail, or anything else sent there), kept as
    it came and committed before the sender was told 250: nothing acknowledged is
    lost. Processing (inbound.py) sets ``processed_at`` with what it made of it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The envelope: "" is the null sender that delivery reports come from; the
    # recipients (a few at most), comma-separated: one row per message, not per recipient.
    mail_from: Mapped[str] = mapped_column(String(320))
    rcpt_to: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # Unset until processed; the sweep looks for such rows.
    processed_at: Mapped[datetime | None] = mapped_column(index=True)
    # What it became ("hard_bounce 5.1.1 for …"), or "ignored: why", or "failed: error".
    outcome: Mapped[str | None] = mapped_column(Text)


class WebhookReplay(Model):
    """A signed webhook request already taken (bounces/providers/), kept while a copy of it
    could still pass the freshness check, so that a copy is refused."""

    # mailgun, ses, sendgrid
    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The SHA-256 (hex) of what makes the request unique (Mailgun's token, SNS's
    # MessageId, SendGrid's signature): one length, whatever a request sends.
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
