"""The newsletters subscribers choose from, and each subscriber's choice of them."""

import re
from dataclasses import dataclass
from typing import overload

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.content.models import (
    Digest,
    DigestSchedule,
    DigestStatus,
    Newsletter,
    Subscription,
    TrackingMode,
)
from newsletter.content.posts import CATEGORY_LENGTH
from newsletter.core.addresses import InvalidSignup
from newsletter.core.models import utcnow
from newsletter.core.row_ids import MAX_ROW_ID
from newsletter.core.writes import rows_changed
from newsletter.extensions import db
from newsletter.sending.models import Delivery, DeliveryStatus
from newsletter.subscribers.models import Subscriber, SubscriberStatus

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class NewsletterError(ValueError):
    """The newsletter cannot be made as asked; the message says why."""


class SlugTaken(NewsletterError):
    """Another newsletter has this slug."""


def create(slug: str, name: str, description: str = "", default_on=True, public=True):
    slug = (slug or "").strip().lower()
    if not SLUG.fullmatch(slug):
        raise NewsletterError("A slug is 1 to 64 lower-case letters, digits and hyphens.")
    if db.session.scalar(select(Newsletter.id).where(Newsletter.slug == slug)):
        raise SlugTaken(f"There is a newsletter {slug!r} already.")
    name = " ".join((name or "").split())
    if not name:
        raise NewsletterError("A newsletter needs a name.")
    newsletter = Newsletter(
        slug=slug,
        name=name[:200],
        description=description or "",
        default_on=default_on,
        public=public,
    )
    db.session.add(newsletter)
    try:
        db.session.commit()
    except IntegrityError:
        # Another request made the same slug between the check above and this commit.
        db.session.rollback()
        raise SlugTaken(f"There is a newsletter {slug!r} already.") from None
    return newsletter


def all_newsletters() -> list[Newsletter]:
    return list(db.session.scalars(select(Newsletter).order_by(Newsletter.id)))


def first() -> Newsletter:
    """The newsletter a digest goes to when none is named: the oldest."""
    # There is always one: the first migration makes it, and none is ever deleted.
    return db.session.execute(select(Newsletter).order_by(Newsletter.id).limit(1)).scalar_one()


def by_slug(slug: str) -> Newsletter:
    newsletter = db.session.scalar(select(Newsletter).where(Newsletter.slug == slug))
    if newsletter is None:
        raise NewsletterError(f"There is no newsletter {slug!r}.")
    return newsletter


def by_slug_or_id(key: str) -> Newsletter | None:
    """The newsletter a URL names by its slug or, failing that, by its id (a slug may
    be all digits, and then it wins)."""
    key = key.strip().lower()
    if not SLUG.fullmatch(key):
        return None
    found = db.session.scalar(select(Newsletter).where(Newsletter.slug == key))
    if found is None and key.isdigit() and int(key) <= MAX_ROW_ID:
        found = db.session.get(Newsletter, int(key))
    return found


def update_newsletter(
    newsletter: Newsletter,
    name: str | None = None,
    description: str | None = None,
    default_on: bool | None = None,
    public: bool | None = None,
    tracking: str | None = None,
) -> Newsletter:
    """Change what is given of a newsletter's name, description, default, archive
    visibility and tracking mode; its slug stays, since List-Id headers and subscribers'
    filters carry it."""
    if tracking is not None and tracking not in set(TrackingMode):
        raise NewsletterError(f"Tracking is one of {', '.join(TrackingMode)}.")
    if name is not None:
        name = " ".join(name.split())
        if not name:
            raise NewsletterError("A newsletter needs a name.")
        newsletter.name = name[:200]
    if description is not None:
        newsletter.description = description
    if default_on is not None:
        newsletter.default_on = default_on
    if public is not None:
        newsletter.public = public
    if tracking is not None:
        newsletter.tracking = str(tracking)
    db.session.commit()
    return newsletter


def subscriber_counts() -> dict[int, int]:
    """Per newsletter id, its subscribers: confirmed, with the newsletter on."""
    return dict(
        db.session.execute(
            select(Subscription.newsletter_id, func.count())
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscription.active.is_(True), Subscriber.status == SubscriberStatus.CONFIRMED)
            .group_by(Subscription.newsletter_id)
        )
        .tuples()
        .all()
    )


def slugs_by_subscriber(subscriber_ids: list[int]) -> dict[int, list[str]]:
    """Per subscriber, the slugs of the newsletters they have on, in one query."""
    chosen: dict[int, list[str]] = {subscriber_id: [] for subscriber_id in subscriber_ids}
    rows = db.session.execute(
        select(Subscription.subscriber_id, Newsletter.slug)
        .join(Newsletter, Newsletter.id == Subscription.newsletter_id)
        .where(Subscription.subscriber_id.in_(subscriber_ids), Subscription.active.is_(True))
        .order_by(Newsletter.id)
    )
    for subscriber_id, slug in rows:
        chosen[subscriber_id].append(slug)
    return chosen


@overload
def chosen_ids(slugs: None) -> None: ...
@overload
def chosen_ids(slugs: list[str]) -> list[int]: ...
def chosen_ids(slugs: list[str] | None) -> list[int] | None:
    """The ids of the newsletters a sign-up names (None: it names none, so the ones on
    by default). InvalidSignup for a name that is no newsletter's, or for none at all."""
    if slugs is None:
        return None
    wanted = {str(slug).strip().lower() for slug in slugs}
    found = dict(
        db.session.execute(
            select(Newsletter.slug, Newsletter.id).where(Newsletter.slug.in_(wanted))
        )
        .tuples()
        .all()
    )
    unknown = sorted(wanted - set(found))
    if unknown:
        raise InvalidSignup(_l("There is no newsletter %(names)s.", names=", ".join(unknown)))
    if not found:
        raise InvalidSignup(_l("Please choose at least one newsletter."))
    return sorted(found.values())


# A new subscriber's choice, in one statement: the newsletters named, or those on by default.
_JOIN_DEFAULTS = insert(Subscription.__table__).from_select(
    ["subscriber_id", "newsletter_id", "active", "changed_at"],
    select(bindparam("subscriber_id"), Newsletter.id, literal(True), bindparam("now")).where(
        Newsletter.default_on.is_(True)
    ),
)


def join_new_subscriber(connection, subscriber_id: int, newsletter_ids: list[int] | None) -> None:
    """Record a new subscriber's choice, in the caller's transaction."""
    if newsletter_ids is None:
        connection.execute(_JOIN_DEFAULTS, {"subscriber_id": subscriber_id, "now": utcnow()})
        return
    connection.execute(
        insert(Subscription.__table__),
        [
            {
                "subscriber_id": subscriber_id,
                "newsletter_id": newsletter_id,
                "active": True,
                "changed_at": utcnow(),
            }
            for newsletter_id in newsletter_ids
        ],
    )


def choose(subscriber_id: int, newsletter_ids: list[int] | None, only: bool = False) -> None:
    """Turn the named newsletters on for a subscriber (None: those on by default, unless the
    subscriber chose some already); with ``only``, turn every other one off. In the caller's
    transaction."""
    current = {
        row.newsletter_id: row
        for row in db.session.scalars(
            select(Subscription).where(Subscription.subscriber_id == subscriber_id)
        )
    }
    if newsletter_ids is None:
        if any(row.active for row in current.values()):
            return
        newsletter_ids = list(
            db.session.scalars(select(Newsletter.id).where(Newsletter.default_on.is_(True)))
        )
    now = utcnow()
    for newsletter_id in newsletter_ids:
        row = current.get(newsletter_id)
        if row is None:
            db.session.add(
                Subscription(
                    subscriber_id=subscriber_id, newsletter_id=newsletter_id, changed_at=now
                )
            )
        elif not row.active:
            row.active, row.changed_at = True, now
    if only:
        for newsletter_id, row in current.items():
            if newsletter_id not in newsletter_ids and row.active:
                row.active, row.changed_at = False, now
                _skip_unsent(subscriber_id, newsletter_id)


def leave(subscriber_id: int, newsletter_id: int) -> bool:
    """Turn one newsletter off for a subscriber; whether it was on. In the caller's transaction."""
    left = rows_changed(
        update(Subscription)
        .where(
            Subscription.subscriber_id == subscriber_id,
            Subscription.newsletter_id == newsletter_id,
            Subscription.active.is_(True),
        )
        .values(active=False, changed_at=utcnow())
    )
    _skip_unsent(subscriber_id, newsletter_id)
    return bool(left)


def chosen_by(subscriber_id: int) -> set[int]:
    """The newsletters a subscriber gets."""
    return set(
        db.session.scalars(
            select(Subscription.newsletter_id).where(
                Subscription.subscriber_id == subscriber_id, Subscription.active.is_(True)
            )
        )
    )


def joined_by(subscriber_id: int) -> list[Newsletter]:
    """The newsletters a subscriber gets, oldest first, to name them on a page."""
    return list(
        db.session.scalars(
            select(Newsletter)
            .join(Subscription, Subscription.newsletter_id == Newsletter.id)
            .where(Subscription.subscriber_id == subscriber_id, Subscription.active.is_(True))
            .order_by(Newsletter.id)
        )
    )


def _skip_unsent(subscriber_id: int, newsletter_id: int) -> None:
    """A subscriber who left a newsletter gets no copy still owed of its digests."""
    sending = select(Digest.id).where(
        Digest.newsletter_id == newsletter_id,
        Digest.status.in_([DigestStatus.SENDING, DigestStatus.PAUSED]),
    )
    db.session.execute(
        update(Delivery)
        .where(
            Delivery.subscriber_id == subscriber_id,
            Delivery.digest_id.in_(sending),
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.sent_at.is_(None),
            Delivery.lease_until.is_(None),
        )
        .values(status=DeliveryStatus.SKIPPED)
    )


def set_schedule(
    newsletter: Newsletter, schedule: str, weekday: int = 0, hour: int = 8, category: str = ""
) -> Newsletter:
    """Set the newsletter's digest schedule (see digests.run_periodic)."""
    for key, value in checked_schedule(schedule, weekday, hour, category).items():
        setattr(newsletter, key, value)
    db.session.commit()
    return newsletter


def checked_schedule(schedule: str, weekday: int, hour: int, category: str | None) -> dict:
    """A schedule's columns as stored: off, daily or weekly; a weekday (Monday is 0) and
    an hour in UTC; a feed category or None for every post. NewsletterError for one it
    cannot keep."""
    if schedule not in set(DigestSchedule):
        raise NewsletterError(f"A schedule is one of {', '.join(DigestSchedule)}.")
    for value, low, high, what in [(weekday, 0, 6, "weekday"), (hour, 0, 23, "hour")]:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise NewsletterError(f"The {what} is a whole number from {low} to {high}.")
    category = " ".join((category or "").split())
    if len(category) > CATEGORY_LENGTH:
        raise NewsletterError(f"A category is at most {CATEGORY_LENGTH} characters.")
    return {
        "schedule": str(schedule),
        "schedule_weekday": weekday,
        "schedule_hour": hour,
        "schedule_category": category or None,
    }


@dataclass(frozen=True)
class Overview:
    """One newsletter as the admins' list shows it."""

    newsletter: Newsletter
    # Confirmed subscribers who have it on: whom its next digest goes to.
    subscribers: int
    last_digest: Digest | None


def overview() -> list[Overview]:
    """Every newsletter, oldest first, with its subscribers and its latest digest."""
    subscribers = subscriber_counts()
    latest_ids = select(func.max(Digest.id)).group_by(Digest.newsletter_id)
    latest = {
        digest.newsletter_id: digest
        for digest in db.session.scalars(select(Digest).where(Digest.id.in_(latest_ids)))
    }
    return [
        Overview(newsletter, subscribers.get(newsletter.id, 0), latest.get(newsletter.id))
        for newsletter in all_newsletters()
    ]
