"""What the data is about outgoing webhooks: the endpoints and the events owed to them."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter import secret_box
from newsletter.core.models import utcnow
from newsletter.extensions import Model


class WebhookEndpoint(Model):
    """A URL that admins asked us to post events to (outgoing.py), signed per the
    Standard Webhooks specification with its own secret."""

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # The events it takes, comma-separated (outgoing.EVENTS).
    events: Mapped[str] = mapped_column(String(200))
    # whsec_ and the base64 of the key's bytes, as the receiver is given it, sealed
    # (secret_box): whoever reads the row cannot sign as us. Read and set ``secret``.
    sealed_secret: Mapped[str] = mapped_column("secret", String(secret_box.SEALED_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A deactivated endpoint keeps its history but gets no new deliveries.
    active: Mapped[bool] = mapped_column(default=True, index=True)
    # How its latest attempt went: the HTTP status (None: no answer) and what failed.
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_delivery_at: Mapped[datetime | None]

    @property
    def event_list(self) -> list[str]:
        return self.events.split(",")

    @property
    def secret(self) -> str:
        return secret_box.open_sealed(self.sealed_secret, secret_box.WEBHOOK)

    @secret.setter
    def secret(self, plaintext: str) -> None:
        self.sealed_secret = secret_box.seal(plaintext, secret_box.WEBHOOK)


class WebhookDeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class WebhookDelivery(Model):
    """One event owed to one endpoint: the record that it must be posted, and how it went.
    Written in the transaction that made the event happen."""

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(40))
    # The exact JSON body posted (and signed), the same on every attempt.
    payload: Mapped[str] = mapped_column(Text)
    # The webhook-id header: the same on every attempt, so a receiver can drop repeats.
    webhook_id: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    # When the next attempt may start; a worker taking it moves this on by a lease.
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=WebhookDeliveryStatus.PENDING)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))

    endpoint: Mapped[WebhookEndpoint] = relationship()

    __table_args__ = (Index("ix_webhook_delivery_status_due_at", "status", "due_at"),)
