"""What the data is about reading: a tracked digest's links, the requests on them and on
its pixel, and the totals those are folded into (docs/engagement.md)."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.core.models import utcnow
from newsletter.extensions import Model


class DigestLink(Model):
    """One link of a tracked digest, recorded once when its body is first rendered for
    sending: a click token names the digest and the position, so ``/r/<token>`` can only
    lead to a link the digest itself carries. Position 0 is never stored: it is the
    trap link (engagement/rules.py)."""

    digest_id: Mapped[int] = mapped_column(
        ForeignKey("digest.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    url: Mapped[str] = mapped_column(String(2000))


class EngagementKind(StrEnum):
    OPEN = "open"
    CLICK = "click"


class EngagementEvent(Model):
    """One request on a tracked digest's pixel or link, written by its web process's
    event thread together with the others of the last moment. It keeps no IP address
    and no user agent, only what the request-by-request rules made of them
    (``machine``); the rules that look at a copy's requests together are applied when
    the events are counted. Folded into EngagementTotal and deleted:
    anonymous ones after an hour, a subscriber's after TRACKING_RETENTION_DAYS."""

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    digest_id: Mapped[int] = mapped_column(ForeignKey("digest.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    # The link's position in DigestLink (0: the trap); None for an open.
    position: Mapped[int | None]
    # A keyed hash of the copy (engagement.copy_key), so that one copy's requests are
    # seen together; nobody without the secret key can tell whose copy it is.
    copy_key: Mapped[str] = mapped_column(String(16))
    # The subscriber, only when their newsletter is tracked per subscriber and they did not
    # refuse it (nor did their browser, with Sec-GPC).
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE"), index=True
    )
    # Why this request alone was a machine's (engagement/rules.py); None: it looked human.
    machine: Mapped[str | None] = mapped_column(String(16))


class EngagementTotal(Model):
    """Folded events of one digest: opens (position 0), clicks on each link (its
    position) and on all of them together (position 0, trap hits included as machine)."""

    digest_id: Mapped[int] = mapped_column(
        ForeignKey("digest.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    human: Mapped[int] = mapped_column(default=0)
    machine: Mapped[int] = mapped_column(default=0)
    # Copies with at least one human request among the events folded.
    human_copies: Mapped[int] = mapped_column(default=0)
