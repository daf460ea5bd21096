"""Digests: composing one from the posts not yet sent, scheduling it, owing it to
every confirmed subscriber, pausing it and reading its progress.

The ``delivery`` rows written by ``start_sending`` are the record of what must go
out; newsletter.content.digest_deliveries sends them.
"""

import logging
import secrets
from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import and_, delete, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from newsletter.content import newsletters, posts
from newsletter.content.models import (
    Digest,
    DigestSchedule,
    DigestStatus,
    Newsletter,
    Post,
    PostCategory,
    Subscription,
    digest_post,
)
from newsletter.core.addresses import normalize_email
from newsletter.core.models import utcnow
from newsletter.core.writes import rows_changed
from newsletter.extensions import db
from newsletter.mail import relay
from newsletter.mail.digest import DigestMessages
from newsletter.mail.templates import TemplateFailed
from newsletter.sending import hints
from newsletter.sending.models import Delivery, DeliveryStatus
from newsletter.subscribers.models import Subscriber, SubscriberSnapshot, SubscriberStatus

# Delivery rows deleted per statement when old ones are folded away.
FOLD_CHUNK = 10_000
# Subscribers whose copies of a digest are written per statement as it starts.
OWE_CHUNK = 10_000
# Digests whose posts count as sent: they are no longer offered for a new digest.
COMMITTED = (DigestStatus.SCHEDULED, DigestStatus.SENDING, DigestStatus.PAUSED, DigestStatus.SENT)

log = logging.getLogger(__name__)


class DigestError(ValueError):
    """The digest cannot do what was asked; the message says why."""


def unsent_posts(newsletter_id: int | None = None, category: str | None = None) -> list[Post]:
    """Posts not yet in a digest that went (or is going) out, newest first. With a
    newsletter, not yet in one of its digests: a post sent in another may still go in
    this one. With a category, only the posts the feed put in it."""
    committed = (
        select(digest_post.c.post_id)
        .join(Digest, Digest.id == digest_post.c.digest_id)
        .where(Digest.status.in_(COMMITTED))
    )
    if newsletter_id is not None:
        committed = committed.where(Digest.newsletter_id == newsletter_id)
    statement = select(Post).where(Post.id.not_in(committed))
    if category:
        in_category = select(PostCategory.post_id).where(
            PostCategory.name == posts.category_key(category)
        )
        statement = statement.where(Post.id.in_(in_category))
    return list(db.session.scalars(statement.order_by(Post.published_at.desc())))


def create_digest(
    subject: str,
    intro: str = "",
    post_ids: list[int] | None = None,
    newsletter_id: int | None = None,
) -> Digest:
    """A draft digest of the given posts (default: every post not yet sent in the
    newsletter) for a newsletter's subscribers (default: the first newsletter's)."""
    subject = " ".join((subject or "").split())
    if not subject:
        raise DigestError("A digest needs a subject.")
    if newsletter_id is None:
        newsletter_id = newsletters.first().id
    chosen = unsent_posts(newsletter_id)
    if post_ids is not None:
        wanted = set(post_ids)
        chosen = [post for post in chosen if post.id in wanted]
    if not chosen:
        raise DigestError("There are no posts to send: import the feed or write a post first.")
    digest = Digest(
        subject=subject[:200], intro=intro or "", posts=chosen, newsletter_id=newsletter_id
    )
    db.session.add(digest)
    db.session.commit()
    return digest


def start_sending(digest_id: int) -> None:
    """Mark the digest sending and owe it to the first chunk of confirmed subscribers;
    ``owe_more`` writes the rest while those go out, so a large list's first copies
    leave at once instead of after every row is written.

    Safe to repeat: the (digest, subscriber) pairs are unique, so a repeat adds
    only subscribers confirmed since.
    """
    digest = db.session.get(Digest, digest_id)
    if digest is None:
        raise DigestError(f"There is no digest {digest_id}.")
    if digest.status == DigestStatus.SENT:
        raise DigestError("This digest was sent already.")
    if digest.status == DigestStatus.PAUSED:
        return
    digest.status = DigestStatus.SENDING
    digest.started_at = digest.started_at or utcnow()
    digest.owed_through = 0
    db.session.commit()
    owe_more(digest_id)


def owe_more(digest_id: int) -> bool:
    """Write the copies owed to the next OWE_CHUNK confirmed subscribers of the digest's
    newsletter (by id).
    False when there was nothing left to write: every copy is written already.

    Whoever moves the digest's ``owed_through`` on writes that chunk, in the same
    transaction: two workers never write the same chunk, and a worker that dies
    mid-chunk leaves it for the next."""
    owing = db.session.execute(
        select(Digest.owed_through, Digest.newsletter_id).where(Digest.id == digest_id)
    ).first()
    if owing is None or owing.owed_through is None:
        return False
    through, newsletter_id = owing
    confirmed = and_(
        Subscriber.status == SubscriberStatus.CONFIRMED,
        Subscriber.id > through,
        Subscriber.id.in_(
            select(Subscription.subscriber_id).where(
                Subscription.newsletter_id == newsletter_id, Subscription.active.is_(True)
            )
        ),
    )
    chunk_end = db.session.scalar(
        select(Subscriber.id)
        .where(confirmed)
        .order_by(Subscriber.id)
        .offset(OWE_CHUNK - 1)
        .limit(1)
    )
    moved = rows_changed(
        update(Digest)
        .where(Digest.id == digest_id, Digest.owed_through == through)
        .values(owed_through=chunk_end)
    )
    if moved:
        in_chunk = confirmed if chunk_end is None else and_(confirmed, Subscriber.id <= chunk_end)
        _owe(digest_id, in_chunk)
    db.session.commit()
    return True


def _owe(digest_id: int, subscribers) -> None:
    """Write the digest's copies for ``subscribers``, but for those it has already
    (a repeated start): the unique (digest, subscriber) pair skips them. An
    anti-join would have the planner read the growing table once per subscriber."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    db.session.execute(
        dialect.insert(Delivery)
        .from_select(
            ["digest_id", "subscriber_id", "status", "due_at", "attempts"],
            select(
                literal(digest_id),
                Subscriber.id,
                literal(DeliveryStatus.PENDING.value),
                literal(utcnow()),
                literal(0),
            ).where(subscribers),
        )
        .on_conflict_do_nothing(index_elements=["digest_id", "subscriber_id"])
    )


def progress(digest_id: int) -> dict[str, int]:
    """Deliveries per status for one digest, every status present; the kept totals
    once it is sent (keep_totals)."""
    digest = db.session.get(Digest, digest_id)
    if digest is not None and digest.sent_count is not None:
        return {
            DeliveryStatus.PENDING.value: 0,
            DeliveryStatus.SENT.value: digest.sent_count,
            # Kept together with sent_count (keep_totals).
            DeliveryStatus.FAILED.value: digest.failed_count or 0,
            DeliveryStatus.SKIPPED.value: digest.skipped_count or 0,
        }
    rows = db.session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.digest_id == digest_id)
        .group_by(Delivery.status)
    ).tuples()
    counts = dict(rows.all())
    return {status.value: counts.get(status.value, 0) for status in DeliveryStatus}


def set_paused(digest_id: int, paused: bool) -> bool:
    """Pause a sending digest, or resume a paused one. Returns True if it changed."""
    before, after = (
        (DigestStatus.SENDING, DigestStatus.PAUSED)
        if paused
        else (DigestStatus.PAUSED, DigestStatus.SENDING)
    )
    changed = rows_changed(
        update(Digest)
        .where(Digest.id == digest_id, Digest.status == before)
        .values(status=after, paused_reason=None)
    )
    db.session.commit()
    return bool(changed)


def schedule(digest_id: int, at: datetime | None = None) -> None:
    """Send the digest at ``at`` (naive UTC; default now). Recorded before any hint is
    published, so the sweep starts it even if the hint is lost."""
    digest = db.session.get(Digest, digest_id)
    if digest is None or digest.status not in (DigestStatus.DRAFT, DigestStatus.SCHEDULED):
        raise DigestError("Only a draft can be scheduled.")
    digest.status = DigestStatus.SCHEDULED
    digest.scheduled_at = at or utcnow()
    db.session.commit()


def send_now(digest_id: int) -> None:
    """Send a draft (or scheduled) digest at once: due now, and a worker woken to start it."""
    schedule(digest_id)
    hints.start_digest_send(digest_id)


def pause(digest_id: int) -> None:
    """Pause a digest that is sending: the copies not sent yet wait until it resumes."""
    if not set_paused(digest_id, paused=True):
        raise DigestError("Only a digest that is sending can pause.")


def resume(digest_id: int) -> None:
    """Resume a paused digest, and wake a worker to go on with it."""
    if not set_paused(digest_id, paused=False):
        raise DigestError("Only a digest that is paused can resume.")
    hints.start_digest_send(digest_id)


def is_under_way(digest: Digest) -> bool:
    """Whether the digest is sending, or about to: just after "Send now" it is still
    scheduled, and due, until a worker starts it."""
    due = (
        digest.status == DigestStatus.SCHEDULED
        and digest.scheduled_at is not None
        and digest.scheduled_at <= utcnow()
    )
    return due or digest.status == DigestStatus.SENDING


def due_scheduled_digest_ids() -> list[int]:
    return list(
        db.session.scalars(
            select(Digest.id).where(
                Digest.status == DigestStatus.SCHEDULED, Digest.scheduled_at <= utcnow()
            )
        )
    )


def send_test(digest_id: int, address: str) -> None:
    """Send one copy of a digest to an address, as a subscriber would get it."""
    digest = db.session.get(Digest, digest_id)
    if digest is None:
        raise DigestError(f"There is no digest {digest_id}.")
    address = normalize_email(address)
    try:
        messages = DigestMessages(digest)
    except TemplateFailed as failure:
        # The digest's page tells the admin; a copy from another template would mislead.
        log.warning("test copy of digest %d not sent: %s", digest_id, failure)
        return
    # A nonce no subscription has: the copy's links, Message-ID and mailto name nobody.
    nonce = secrets.token_hex(16)
    raw = messages.build(SubscriberSnapshot(0, address, "", nonce, SubscriberStatus.CONFIRMED))
    with relay.connection() as sender:
        sender.send(relay.Envelope(address), raw, before_commit=lambda: None)


def fold_old_deliveries(now: datetime | None = None, chunk: int = FOLD_CHUNK) -> int:
    """Fold the delivery rows of digests finished DELIVERY_RETENTION_DAYS ago into
    totals on each digest, and delete them a chunk at a time. Returns how many
    digests were folded.

    Safe to stop at any point and run again: the totals are written once, before
    any row goes, and deleting goes on where it stopped.
    """
    days = current_app.config["DELIVERY_RETENTION_DAYS"]
    if not days:
        return 0
    before = (now or utcnow()) - timedelta(days=days)
    old = db.session.scalars(
        select(Digest.id).where(
            Digest.status == DigestStatus.SENT,
            Digest.finished_at < before,
            Digest.folded_at.is_(None),
        )
    ).all()
    for digest_id in old:
        keep_totals(digest_id)
        db.session.commit()
        while _delete_some_deliveries(digest_id, chunk):
            pass
        db.session.execute(update(Digest).where(Digest.id == digest_id).values(folded_at=utcnow()))
        db.session.commit()
    return len(old)


def keep_totals(digest_id: int) -> None:
    """Write a finished digest's delivery counts on it, once: no copy changes status
    after the last is sent, and counting 200,000 copies each time the dashboard lists
    the digest is what it would cost otherwise. The caller commits."""
    digest = db.session.get_one(Digest, digest_id)
    if digest.sent_count is None:
        counts = progress(digest_id)
        digest.sent_count = counts[DeliveryStatus.SENT.value]
        digest.failed_count = counts[DeliveryStatus.FAILED.value]
        digest.skipped_count = counts[DeliveryStatus.SKIPPED.value]


def _delete_some_deliveries(digest_id: int, chunk: int) -> int:
    some = select(Delivery.id).where(Delivery.digest_id == digest_id).limit(chunk)
    deleted = rows_changed(delete(Delivery).where(Delivery.id.in_(some)))
    db.session.commit()
    return deleted


def history(limit: int = 50) -> list[tuple[Digest, dict[str, int]]]:
    """Recent digests, newest first, each with its delivery counts."""
    found = db.session.scalars(select(Digest).order_by(Digest.id.desc()).limit(limit)).all()
    return [(digest, progress(digest.id)) for digest in found]


def newest_page(page: int, per_page: int):
    """One page of digests, newest first."""
    statement = select(Digest).order_by(Digest.id.desc())
    return db.paginate(statement, page=page, per_page=per_page, error_out=False)


# How long one turn of a schedule lasts: it makes at most one digest in that time.
PERIOD_DAYS: dict[str, int] = {DigestSchedule.DAILY: 1, DigestSchedule.WEEKLY: 7}


def run_periodic(now: datetime | None = None) -> list[int]:
    """Make and schedule the digest of every newsletter whose turn has come: its posts
    not yet sent in it (only those of its feed category, when it names one). Returns the
    new digests' ids; a newsletter without new posts sends nothing until its next turn.

    Beat calls this every few minutes, and two beats may run: each newsletter's turn is
    taken by a conditional UPDATE of its last run, which one caller wins, in the same
    transaction as its digest."""
    now = now or utcnow()
    scheduled = db.session.scalars(
        select(Newsletter).where(Newsletter.schedule.in_(list(PERIOD_DAYS))).order_by(Newsletter.id)
    ).all()
    made = []
    for newsletter in scheduled:
        if not _turn_has_come(newsletter, now):
            continue
        digest_id = _scheduled_digest(newsletter, now) if _take_turn(newsletter, now) else None
        db.session.commit()
        if digest_id is not None:
            made.append(digest_id)
    return made


def _turn_start(schedule: str, now: datetime) -> datetime:
    """The earliest last run that still counts as this turn's: today's (daily), or one
    of the last seven days' (weekly, so moving its weekday never sends twice in a week)."""
    today = datetime.combine(now.date(), time())
    return today - timedelta(days=PERIOD_DAYS[schedule] - 1)


def _turn_has_come(newsletter: Newsletter, now: datetime) -> bool:
    if (
        newsletter.schedule == DigestSchedule.WEEKLY
        and now.weekday() != newsletter.schedule_weekday
    ):
        return False
    last_run = newsletter.schedule_last_run_at
    return now.hour >= newsletter.schedule_hour and (
        last_run is None or last_run < _turn_start(newsletter.schedule, now)
    )


def _take_turn(newsletter: Newsletter, now: datetime) -> bool:
    """Whether this caller won the newsletter's turn (uncommitted: its digest joins the
    same transaction, so a turn is never taken without it)."""
    taken = rows_changed(
        update(Newsletter)
        .where(
            Newsletter.id == newsletter.id,
            Newsletter.schedule == newsletter.schedule,
            or_(
                Newsletter.schedule_last_run_at.is_(None),
                Newsletter.schedule_last_run_at < _turn_start(newsletter.schedule, now),
            ),
        )
        .values(schedule_last_run_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(taken)


def _scheduled_digest(newsletter: Newsletter, now: datetime) -> int | None:
    """The newsletter's digest of its new posts, scheduled to go at once; None without any."""
    new_posts = unsent_posts(newsletter.id, newsletter.schedule_category)
    if not new_posts:
        return None
    digest = Digest(
        subject=f"{newsletter.name}: {now:%d %B %Y}"[:200],
        newsletter_id=newsletter.id,
        posts=new_posts,
        status=DigestStatus.SCHEDULED,
        scheduled_at=utcnow(),
    )
    db.session.add(digest)
    db.session.flush()
    return digest.id
