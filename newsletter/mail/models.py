"""What the data is about the relay: why a session could not be opened."""

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.core.models import utcnow
from newsletter.extensions import Model


class RelayFailure(Model):
    """Why a session with a relay (``host:port``) could not be opened last time, until
    one opens again: /healthz reads it here, where every worker writes it."""

    relay: Mapped[str] = mapped_column(String(300), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # Openings that failed in a row: the mail waits longer after each (engine.py).
    failures: Mapped[int] = mapped_column(default=1, server_default="1")
