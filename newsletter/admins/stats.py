"""What the admin dashboard shows: how the list moved day by day, and what is sending."""

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Date, case, exists, func, or_, select

from newsletter.bounces import feedback
from newsletter.bounces.feedback import COMPLAINT_SOURCE
from newsletter.bounces.models import FeedbackEvent, FeedbackKind
from newsletter.content import digests
from newsletter.content.models import Digest, DigestStatus
from newsletter.core.models import utcnow
from newsletter.engagement import figures as engagement_figures
from newsletter.engagement.models import DigestLink
from newsletter.extensions import db
from newsletter.sending.models import DeliveryStatus
from newsletter.subscribers import admin_actions
from newsletter.subscribers.models import CONSENT_MOVES, ConsentEvent, ConsentKind, SubscriberStatus

HISTORY_DAYS = 90
ACTIVE_SEND_STATUSES = (DigestStatus.SENDING, DigestStatus.PAUSED, DigestStatus.SCHEDULED)


@dataclass(frozen=True, slots=True)
class Day:
    """One UTC day of the list: subscribers who came and went, and those confirmed at its end."""

    day: date
    confirmed: int
    confirmations: int = 0
    unsubscribes: int = 0
    bounces: int = 0
    complaints: int = 0


def day_of(column):
    """The UTC day of a stored timestamp: date() is a function in SQLite and a cast in
    PostgreSQL, and SQLite's date comes back as text, which the Date type parses."""
    return func.date(column, type_=Date)


def daily_history(days: int = HISTORY_DAYS) -> list[Day]:
    """The last ``days`` UTC days, oldest first, today included.

    The number confirmed each day is walked back from today's count by each day's net
    change: confirmations less unsubscribes, bounces, complaints and erasures. It is
    approximate, because the logs do not say what status a subscriber left from: an
    unsubscribe, bounce or erasure of a subscriber still pending counts as a confirmed subscriber
    lost, and an erasure deletes the subscriber's own consent log, so an erased subscriber seems
    confirmed from the window's start until the erasure.
    """
    # Today's count is the start of the walk back, so the window always ends today.
    first = utcnow().date() - timedelta(days=days - 1)
    moves = _consent_moves(first) + _feedback_moves(first)
    confirmed = admin_actions.status_counts()[SubscriberStatus.CONFIRMED]
    history = []
    for offset in range(days - 1, -1, -1):
        day = first + timedelta(days=offset)
        history.append(
            Day(
                day=day,
                confirmed=confirmed,
                confirmations=moves[day, "confirmations"],
                unsubscribes=moves[day, "unsubscribes"],
                bounces=moves[day, "bounces"],
                complaints=moves[day, "complaints"],
            )
        )
        confirmed -= moves[day, "confirmations"] - moves[day, "losses"]
    history.reverse()
    return history


def _consent_moves(first: date) -> Counter[tuple[date, str]]:
    """Confirmations, unsubscribes and erasures per day since ``first``. A complaint
    also logs an unsubscribe; it is counted with the complaints instead."""
    move = case(
        (ConsentEvent.kind == ConsentKind.CONFIRM, "confirmations"),
        (ConsentEvent.kind == ConsentKind.ERASURE, "erasures"),
        else_="unsubscribes",
    )
    rows = db.session.execute(
        select(day_of(ConsentEvent.at), move, func.count())
        .where(
            ConsentEvent.at >= first,
            # The very kinds of ix_consent_event_moves, which this reads alone.
            ConsentEvent.kind.in_(CONSENT_MOVES),
            or_(
                ConsentEvent.kind != ConsentKind.UNSUBSCRIBE,
                ConsentEvent.source != COMPLAINT_SOURCE,
            ),
        )
        .group_by(day_of(ConsentEvent.at), move)
    )
    return _with_losses(rows, ("unsubscribes", "erasures"))


def _feedback_moves(first: date) -> Counter[tuple[date, str]]:
    """Subscribers lost to bounces and complaints per day since ``first``: only the reports
    that changed a subscriber's status, so that a subscriber who bounces twice counts once."""
    move = case((FeedbackEvent.kind == FeedbackKind.COMPLAINT, "complaints"), else_="bounces")
    rows = db.session.execute(
        select(day_of(FeedbackEvent.at), move, func.count())
        .where(
            FeedbackEvent.at >= first,
            FeedbackEvent.changed_status.is_(True),
            FeedbackEvent.kind.in_(
                [FeedbackKind.HARD_BOUNCE, FeedbackKind.SOFT_BOUNCE, FeedbackKind.COMPLAINT]
            ),
        )
        .group_by(day_of(FeedbackEvent.at), move)
    )
    return _with_losses(rows, ("bounces", "complaints"))


def _with_losses(rows, losses: tuple[str, ...]) -> Counter[tuple[date, str]]:
    """(day, move) -> count, plus (day, "losses"): the subscribers those moves took away."""
    counted: Counter[tuple[date, str]] = Counter()
    for day, move, count in rows:
        counted[day, move] += count
        if move in losses:
            counted[day, "losses"] += count
    return counted


def recent_digests(limit: int = 5) -> list[tuple[Digest, dict[str, int]]]:
    """The latest digests, newest first, each with its delivery counts and what came
    back (bounced, complained, unsubscribed) in one dictionary."""
    history = digests.history(limit)
    reactions = feedback.reactions([digest for digest, _counts in history])
    return [(digest, counts | reactions[digest.id]) for digest, counts in history]


@dataclass(frozen=True, slots=True)
class DigestEngagement(engagement_figures.Reach):
    """One tracked digest's opens and clicks beside its copies delivered."""

    digest: Digest


def recent_engagement(limit: int = 10) -> list[DigestEngagement]:
    """The latest sent digests that were tracked (their links recorded), newest first,
    each with its opens and clicks."""
    tracked = db.session.scalars(
        select(Digest)
        .where(
            Digest.status == DigestStatus.SENT,
            exists().where(DigestLink.digest_id == Digest.id),
        )
        .order_by(Digest.id.desc())
        .limit(limit)
    ).all()
    shown = []
    for digest in tracked:
        found = engagement_figures.figures(digest.id)
        delivered = digests.progress(digest.id)[DeliveryStatus.SENT.value]
        shown.append(DigestEngagement(delivered, found.opens, found.clicks, digest))
    return shown


def active_sends(counted=()) -> list[tuple[Digest, dict[str, int]]]:
    """Digests sending, paused or scheduled, oldest first, each with its progress.

    ``counted`` are digests with figures already counted (recent_digests): a sending
    digest's copies are counted once for the dashboard, not twice."""
    known = {
        digest.id: {status.value: figures[status.value] for status in DeliveryStatus}
        for digest, figures in counted
    }
    found = db.session.scalars(
        select(Digest).where(Digest.status.in_(ACTIVE_SEND_STATUSES)).order_by(Digest.id)
    ).all()
    return [
        (digest, known[digest.id] if digest.id in known else digests.progress(digest.id))
        for digest in found
    ]
