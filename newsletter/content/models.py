"""What the data is about what is sent: newsletters, who chose them, posts, digests and
the admins' email templates."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter.core.models import utcnow
from newsletter.extensions import Model, db


class DigestSchedule(StrEnum):
    OFF = "off"
    DAILY = "daily"
    WEEKLY = "weekly"


class TrackingMode(StrEnum):
    """What a newsletter's digests let us learn of their reading (docs/engagement.md)."""

    # Nothing rewritten, no pixel: the digest is as written.
    OFF = "off"
    # Opens and clicks counted per digest and per link; no row names a subscriber.
    COUNTS = "counts"
    # Who opened and clicked what, on the subscriber's admin page and in their data.
    PER_SUBSCRIBER = "per-reader"


class Newsletter(Model):
    """One list subscribers may choose (the weekly digest, breaking news…): its digests go
    to its own subscribers only, by hand or on its own schedule (digests.run_periodic)."""

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
    # Whether its digests count opens and clicks, and how (TrackingMode).
    tracking: Mapped[str] = mapped_column(
        String(16), default=TrackingMode.OFF, server_default=TrackingMode.OFF
    )


class Subscription(Model):
    """A subscriber's choice of one newsletter. Mail goes to a subscriber for a newsletter
    while the choice is active and the subscriber confirmed (Subscriber.status), so
    leaving everything and leaving one list are two different things."""

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscriber.id", ondelete="CASCADE"), primary_key=True
    )
    newsletter_id: Mapped[int] = mapped_column(
        ForeignKey("newsletter.id", ondelete="CASCADE"), primary_key=True
    )
    active: Mapped[bool] = mapped_column(default=True)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Owing a digest walks one newsletter's subscribers in subscriber order.
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
    # Whose subscribers get it; unnamed, the first newsletter's.
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


class EmailTemplate(Model):
    """An admin's own source for one part (``html`` or ``text``) of an email template;
    without a row the email uses the file in templates/email/."""

    __tablename__ = "email_template"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    part: Mapped[str] = mapped_column(String(8), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
