"""What the data is: subscribers and the emails owed to them."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter import secret_box
from newsletter.extensions import Model, db


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_token_nonce() -> str:
    return secrets.token_hex(16)


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Subscriber(Model):
    """A reader's address and the record of their consent.

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

    # Consent: when and where the reader asked, and when they confirmed.
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
    # The language of the reader's emails and pages (i18n.LANGUAGES): their browser's at
    # sign-up, or their choice on the preferences page; None: DEFAULT_LOCALE.
    locale: Mapped[str | None] = mapped_column(String(16))

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


# The kinds that move readers in or out of the list (stats.daily_history).
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
    # The newsletter a reader left from its own email's link; None: everything.
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


class SuppressedAddress(Model):
    """An address never to be added or mailed again, kept only as a keyed hash
    (suppression.address_hash), nothing to read it back from: it was erased, or it
    bounced, or its owner reported us as spam; this outlives the subscriber's row."""

    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(default=utcnow)
    # erased, bounced or complained
    reason: Mapped[str] = mapped_column(String(16), default="erased", server_default="erased")


class DomainPace(Model):
    """A recipient domain that asked us to slow down, and the pace every worker keeps
    for it (sending/domain_pacing.py)."""

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    interval_seconds: Mapped[float]
    # Unix time of its next turn.
    next_at: Mapped[float]


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
    # Whether it changed the reader's status (bounced, complained, unsubscribed).
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


class WebhookReplay(Model):
    """A signed webhook request already taken (bounces/providers/), kept while a copy of it
    could still pass the freshness check, so that a copy is refused."""

    # mailgun, ses, sendgrid
    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The SHA-256 (hex) of what makes the request unique (Mailgun's token, SNS's
    # MessageId, SendGrid's signature): one length, whatever a request sends.
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


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


@dataclass(frozen=True, slots=True)
class Reader:
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


class EmailKind(StrEnum):
    CONFIRMATION = "confirmation"
    WELCOME = "welcome"
    # A preferences link that opens the reader's data, which they asked for by email.
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

    subscriber: Mapped[Subscriber] = relationship(back_populates="jobs")

    __table_args__ = (Index("ix_email_job_status_due", "status", "due_at"),)


class Hint(Model):
    """Whether a hint to send email jobs is on its way to a worker (see sending/hints.py).

    One row per kind of work; the migration makes the row for email jobs.
    """

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    pending: Mapped[bool] = mapped_column(default=False)
    set_at: Mapped[datetime | None]


class RelayFailure(Model):
    """Why a session with a relay (``host:port``) could not be opened last time, until
    one opens again: /healthz reads it here, where every worker writes it."""

    relay: Mapped[str] = mapped_column(String(300), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # Openings that failed in a row: the mail waits longer after each (engine.py).
    failures: Mapped[int] = mapped_column(default=1, server_default="1")


class Admin(UserMixin, Model):
    """Somebody who may log in to /admin. The password is stored only as a hash."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Part of every session's id: a new one (at logout, or a new password) ends every
    # session made before, copied cookies included.
    session_token: Mapped[str] = mapped_column(String(32), default=new_token_nonce)
    # Two-factor login (TOTP): no secret means it is off. The time step of the last code
    # accepted, so that a code seen over a shoulder or in a proxy's log is not taken again.
    # The secret is sealed (secret_box): a copy of the table is no copy of the phone.
    # Read and set ``totp_secret``.
    sealed_totp_secret: Mapped[str | None] = mapped_column(
        "totp_secret", String(secret_box.SEALED_LENGTH)
    )
    totp_last_step: Mapped[int | None]
    # What this admin may do (roles.py): owner, editor or viewer.
    role: Mapped[str] = mapped_column(String(16), default="owner", server_default="owner")

    def get_id(self) -> str:
        return f"{self.id}.{self.session_token}"

    @property
    def totp_secret(self) -> str | None:
        sealed = self.sealed_totp_secret
        return None if sealed is None else secret_box.open_sealed(sealed, secret_box.TOTP)

    @totp_secret.setter
    def totp_secret(self, plaintext: str | None) -> None:
        self.sealed_totp_secret = (
            None if plaintext is None else secret_box.seal(plaintext, secret_box.TOTP)
        )


class ApiKey(Model):
    """A key that a script sends as ``Authorization: Bearer …`` to use /api/v1
    (api_keys.py). Only its SHA-256 is kept: the key itself is shown once, when made."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The key's first characters, so that admins can tell which key a script holds.
    prefix: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # The scopes the key may use, space-separated; None: every scope (keys made before
    # scopes existed, or made without naming any).
    scopes: Mapped[str | None] = mapped_column(String(200))
    # After this the key is refused as if revoked; None: it never expires.
    expires_at: Mapped[datetime | None]


class AdminInvitation(Model):
    """An owner's invitation to become an admin (accounts.invite): the emailed link names
    it, and works once, until ADMIN_INVITATION_MAX_AGE has passed."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    # Who invited, by name: the invitation outlives the admin who sent it.
    invited_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set once the email went out; the sweep sends those still unsent.
    sent_at: Mapped[datetime | None]
    # Set when the link was used: it never works again.
    accepted_at: Mapped[datetime | None]
    # Part of the link, so a link cannot be made from the row id alone.
    nonce: Mapped[str] = mapped_column(String(32), default=new_token_nonce)


class AuditEntry(Model):
    """One thing an admin, an API key or an operator's command did (audit.py). Rows are
    only ever added, and deleted after AUDIT_RETENTION_DAYS; the actor is kept by name
    too, so an entry outlives the admin or key it names."""

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # admin, api_key, command or system; the actor's row id where it has one.
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None]
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(48), index=True)
    target: Mapped[str | None] = mapped_column(String(320))
    detail: Mapped[str | None] = mapped_column(Text)
    # Dropped after IP_RETENTION_DAYS, as the consent log's are.
    ip: Mapped[str | None] = mapped_column(String(45))


class RecoveryCode(Model):
    """A code that stands in for the authenticator app once; only its SHA-256 is kept."""

    id: Mapped[int] = mapped_column(primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admin.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class DigestSchedule(StrEnum):
    OFF = "off"
    DAILY = "daily"
    WEEKLY = "weekly"


class Newsletter(Model):
    """One list readers may choose (the weekly digest, breaking news…): its digests go
    to its own readers only, by hand or on its own schedule (digests.run_periodic)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    # In URLs, the API and the List-Id header: letters, digits and hyphens.
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # A sign-up that names no newsletter gets those that are on by default.
    default_on: Mapped[bool] = mapped_column(default=True)
    # Its sent digests are in the public archive.
    public: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Its digest of new posts: off, daily or weekly, on a weekday (Monday is 0) at an hour,
    # both in UTC; only posts in the feed category named, when one is.
    schedule: Mapped[str] = mapped_column(
        String(8), default=DigestSchedule.OFF, server_default=DigestSchedule.OFF
    )
    schedule_weekday: Mapped[int] = mapped_column(default=0, server_default="0")
    schedule_hour: Mapped[int] = mapped_column(default=8, server_default="8")
    schedule_category: Mapped[str | None] = mapped_column(String(100))
    # When the schedule last made (or found nothing for) a digest: one per day or week.
    schedule_last_run_at: Mapped[datetime | None]


class Subscription(Model):
    """A reader's choice of one newsletter. Mail goes to a reader for a newsletter
    while the choice is active and the reader confirmed (Subscriber.status), so
    leaving everything and leaving one list are two different things."""

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE"), primary_key=True
    )
    newsletter_id: Mapped[int] = mapped_column(
        ForeignKey("newsletter.id", ondelete="CASCADE"), primary_key=True
    )
    active: Mapped[bool] = mapped_column(default=True)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Owing a digest walks one newsletter's readers in subscriber order.
    __table_args__ = (
        Index("ix_subscription_newsletter_active", "newsletter_id", "active", "subscriber_id"),
    )


class Post(Model):
    """An article of the site, pulled from its feed or written by hand.

    ``summary_html`` is always sanitized before it is stored, so it is safe to
    put into an email as it is. A post written by hand keeps its Markdown in
    ``summary_markdown``, which ``summary_html`` is rendered from; a feed's post has
    none, its HTML came from the feed.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    guid: Mapped[str] = mapped_column(String(500), unique=True)
    link: Mapped[str] = mapped_column(String(2000), index=True)
    title: Mapped[str] = mapped_column(String(500))
    summary_html: Mapped[str] = mapped_column(Text, default="")
    summary_markdown: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A post an admin edited is no longer overwritten by the feed.
    edited_at: Mapped[datetime | None]

    categories: Mapped[list["PostCategory"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def category_names(self) -> set[str]:
        return {category.name for category in self.categories}


class PostCategory(Model):
    """A category the feed gave a post (RSS ``<category>``, Atom ``<category term>``),
    case-folded so that a newsletter's filter matches however either is written."""

    post_id: Mapped[int] = mapped_column(
        ForeignKey("post.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)

    # A newsletter's filter looks its posts up by category.
    __table_args__ = (Index("ix_post_category_name", "name", "post_id"),)


digest_post = Table(
    "digest_post",
    db.metadata,
    Column("digest_id", ForeignKey("digest.id", ondelete="CASCADE"), primary_key=True),
    Column("post_id", ForeignKey("post.id", ondelete="CASCADE"), primary_key=True),
)


class DigestStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"


def _first_newsletter_id(context) -> int | None:
    return context.connection.scalar(select(func.min(Newsletter.__table__.c.id)))


class Digest(Model):
    """One issue of a newsletter: a subject, an intro and the posts it carries."""

    id: Mapped[int] = mapped_column(primary_key=True)
    # Whose readers get it; unnamed, the first newsletter's.
    newsletter_id: Mapped[int] = mapped_column(
        ForeignKey("newsletter.id"), index=True, default=_first_newsletter_id
    )
    subject: Mapped[str] = mapped_column(String(200))
    # Markdown, rendered whenever the email is (markup.to_html).
    intro: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=DigestStatus.DRAFT, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    scheduled_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # While its copies are being written (digests.owe_more): the highest subscriber id
    # that has one. None before the send starts and once every copy is written.
    owed_through: Mapped[int | None]
    # Why sending stopped by itself: the relay refused the message for everyone.
    paused_reason: Mapped[str | None] = mapped_column(String(500))
    # Totals kept once it is sent (digests.keep_totals): its delivery rows are counted
    # no more, and are folded away later (digests.fold_old_deliveries).
    sent_count: Mapped[int | None]
    failed_count: Mapped[int | None]
    skipped_count: Mapped[int | None]
    folded_at: Mapped[datetime | None]

    newsletter: Mapped[Newsletter] = relationship()
    posts: Mapped[list[Post]] = relationship(
        secondary=digest_post, order_by=Post.published_at.desc()
    )

    @property
    def sent_at(self) -> datetime | None:
        """When it went out, as the archive shows it: when sending finished, or began."""
        return self.finished_at or self.started_at


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


class EmailTemplate(Model):
    """An admin's own source for one part (``html`` or ``text``) of an email template;
    without a row the email uses the file in templates/email/."""

    __tablename__ = "email_template"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    part: Mapped[str] = mapped_column(String(8), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
