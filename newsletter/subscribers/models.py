"""What the data is about the people on the list: subscribers, their consent, and the
sign-up defences' records."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter.core.models import new_token_nonce, utcnow
from newsletter.extensions import Model

if TYPE_CHECKING:
    from newsletter.content.models import Subscription
    from newsletter.sending.models import EmailJob


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Subscriber(Model):
    """A subscriber's address and the record of their consent.

    ``token_nonce`` is random per subscription and goes into every token made for
    it, so links from a deleted subscription never act on a re-created one.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16), default=SubscriberStatus.PENDING, index=True)
    # Names the subscription in its links (tokens.py), which never carry the row id.
    token_nonce: Mapped[str] = mapped_column(
        String(32), default=new_token_nonce, index=True, unique=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Consent: when and where the subscriber asked, and when they confirmed.
    signup_at: Mapped[datetime] = mapped_column(default=utcnow)
    signup_source: Mapped[str] = mapped_column(String(32))
    signup_ip: Mapped[str | None] = mapped_column(String(45))
    confirmed_at: Mapped[datetime | None]
    confirm_ip: Mapped[str | None] = mapped_column(String(45))
    unsubscribed_at: Mapped[datetime | None]
    # Permanent refusals of digest mail in a row; at BOUNCE_LIMIT the address is bounced.
    hard_bounces: Mapped[int] = mapped_column(default=0)
    # Wrong confirmation codes typed since the last confirmation email was owed.
    code_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    # Soft bounces before this count no more: a delivery was reported after them.
    soft_bounces_cleared_at: Mapped[datetime | None]
    # The language of the subscriber's emails and pages (i18n.LANGUAGES): their browser's at
    # sign-up, or their choice on the preferences page; None: DEFAULT_LOCALE.
    locale: Mapped[str | None] = mapped_column(String(16))
    # The subscriber said "don't track me" on their preferences page: what they open and
    # click is counted with no name on it, even in a newsletter tracked per subscriber.
    tracking_refused: Mapped[bool] = mapped_column(default=False, server_default=false())

    jobs: Mapped[list["EmailJob"]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", passive_deletes=True
    )
    subscriptions: Mapped[list["Subscription"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self):
        return f"<Subscriber {self.id} {self.email} {self.status}>"


class SubscriberTally(Model):
    """Changes to the number of subscribers in a status, appended by triggers on
    subscriber (migration 0029) whatever code changed it: summed per status they are
    the counts the admin sees, without reading every subscriber. A migration that
    rebuilds subscriber on SQLite must create the triggers again."""

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    delta: Mapped[int]


class ConsentKind(StrEnum):
    SIGNUP = "signup"
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    # On or off one newsletter, still on others (off the last one is an unsubscribe).
    JOIN = "join"
    LEAVE = "leave"
    ERASURE = "erasure"


# The kinds that move subscribers in or out of the list (stats.daily_history).
CONSENT_MOVES = (ConsentKind.CONFIRM, ConsentKind.UNSUBSCRIBE, ConsentKind.ERASURE)


MOVES_WHERE = "kind IN ({})".format(", ".join(f"'{kind}'" for kind in CONSENT_MOVES))


class ConsentEvent(Model):
    """The consent log: every sign-up, confirmation, unsubscribe (from everything or from
    one newsletter) and erasure, appended
    and never rewritten, but for its IP, which is dropped after IP_RETENTION_DAYS. An
    erasure deletes the subscriber's events and leaves one without a subscriber."""

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Where it came from: form, api, import, preferences, link, code, one-click, admin…
    source: Mapped[str] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(45))
    # The newsletter a subscriber left from its own email's link; None: everything.
    newsletter_id: Mapped[int | None] = mapped_column(
        ForeignKey("newsletter.id", ondelete="SET NULL")
    )

    # The dashboard's daily moves (stats.daily_history) read these columns of these
    # kinds only, from the index alone; sign-ups, most of the log, stay out of it.
    __table_args__ = (
        Index(
            "ix_consent_event_moves",
            "at",
            "kind",
            "source",
            postgresql_where=text(MOVES_WHERE),
            sqlite_where=text(MOVES_WHERE),
        ),
    )


class BlockedDomain(Model):
    """A domain whose addresses, and those of every domain under it, may not subscribe
    (blocked_domains.py), in its IDNA ASCII form. The key is the index every sign-up's
    lookup uses."""

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class SpentChallenge(Model):
    """A solved ALTCHA challenge (captcha.py), kept until it expires so that its
    payload counts once."""

    signature: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


@dataclass(frozen=True, slots=True)
class SubscriberSnapshot:
    """What a message needs of its subscriber, read with the row that owes it."""

    id: int
    email: str
    name: str
    token_nonce: str
    status: str
    # Refusals of the address in a row so far: a message that gets through clears them.
    hard_bounces: int = 0
    # The language of their emails; None: DEFAULT_LOCALE.
    locale: str | None = None
