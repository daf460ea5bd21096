"""What the data is, shared by every domain: the site's settings and the suppression list."""

import secrets
from datetime import UTC, datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.extensions import Model


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_token_nonce() -> str:
    return secrets.token_hex(16)


class SuppressedAddress(Model):
    """An address never to be added or mailed again, kept only as a keyed hash
    (suppression.address_hash), nothing to read it back from: it was erased, or it
    bounced, or its owner reported us as spam; this outlives the subscriber's row."""

    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(default=utcnow)
    # erased, bounced or complained
    reason: Mapped[str] = mapped_column(String(16), default="erased", server_default="erased")


class Settings(Model):
    """What admins set in the admin area; a single row."""

    id: Mapped[int] = mapped_column(primary_key=True)
    welcome_enabled: Mapped[bool] = mapped_column(default=True)
    welcome_subject: Mapped[str] = mapped_column(String(200), default="Welcome aboard")
    welcome_intro: Mapped[str] = mapped_column(
        Text, default="Thank you for subscribing. Here is what we published lately."
    )
    # Digest messages per second over all workers; 0 means as fast as they go.
    send_rate_limit: Mapped[int] = mapped_column(default=0, server_default="0")
    # Unix time up to which sending is booked under that limit (see sending/pacing.py).
    send_clock: Mapped[float] = mapped_column(default=0.0, server_default="0")
