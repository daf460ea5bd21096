"""A request on a tracked digest's link or pixel: where it leads, and the one small
row it writes.

The redirect is the hot path (``python -m bench clicks``): what a digest's tokens may
lead to is read once per process for a few seconds (its links never change once
recorded), so a click costs one INSERT, which looks up the subscriber and their copy's
delivery in subqueries, on a connection the process keeps (EventConnection); no
session, no CSRF, no rate limit.
"""

import hashlib
import hmac
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Connection, String, bindparam, func, insert, literal, null, select
from sqlalchemy.exc import DBAPIError

from newsletter.content.models import Digest, Newsletter, TrackingMode
from newsletter.core import tokens
from newsletter.core.models import utcnow
from newsletter.engagement import rules
from newsletter.engagement.models import DigestLink, EngagementEvent, EngagementKind
from newsletter.extensions import db
from newsletter.sending.models import Delivery
from newsletter.subscribers.models import Subscriber
from newsletter.webhooks import outgoing

# How long a process trusts what it read of a digest: an admin's change of the
# newsletter's tracking, or a new endpoint for email.clicked, counts from then on.
DIGEST_READ_SECONDS = 10
# Digests a process remembers; more (an attack with old tokens) starts it afresh.
DIGESTS_REMEMBERED = 1000
EVENT_CONNECTION = "newsletter.event_connection"


class NotTracked(LookupError):
    """The token names no link of any digest: a 404."""


@dataclass(frozen=True, slots=True)
class TrackedDigest:
    """What a digest's tokens may lead to, and what its requests record."""

    newsletter_id: int
    tracking: str
    # Its recorded links by position (the trap, 0, is not among them).
    links: dict[int, str]
    # An outgoing webhook endpoint takes email.clicked.
    announce_clicks: bool
    # When its last copy was done; None while it is still being sent.
    finished_at: datetime | None

    def may_be_too_soon(self, now: datetime, min_seconds: int) -> bool:
        """Whether a copy may have been delivered less than ``min_seconds`` ago
        (rules.TOO_SOON): not once the digest finished longer ago than that."""
        return self.finished_at is None or self.finished_at > rules.delivered_after(
            now, min_seconds
        )


def copy_key(digest_id: int, nonce: str) -> str:
    """Names one copy in its events, so that its requests can be read together, without
    naming its subscriber: a keyed hash, which nobody without the secret key can trace."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"engagement:{digest_id}:{nonce}".encode(), hashlib.sha256).hexdigest()[
        :16
    ]


def click(token: str, seen: rules.Seen, refused: bool) -> str:
    """Where a click token leads (the trap: the home page), after recording the click
    when the digest's newsletter is tracked; ``refused``: the browser asked not to be
    tracked (Sec-GPC), so the click is counted but names nobody. TokenInvalid for a
    token we did not sign, NotTracked for a link the digest does not carry."""
    tracked = tokens.read_tracked(tokens.CLICK, token)
    digest = _digest(tracked)
    trap = tracked.position == rules.TRAP_POSITION
    if trap:
        url: str | None = f"{current_app.config['BASE_URL']}/"
    else:
        url = None if tracked.position is None else digest.links.get(tracked.position)
    if url is None:
        raise NotTracked()
    if digest.tracking == TrackingMode.OFF:
        return url
    if digest.announce_clicks and not trap:
        # The event and its announcement commit together, or neither does.
        event_id, subscriber_id, at = _record(
            db.session.connection(), tracked, digest, EngagementKind.CLICK, seen, refused
        )
        machine = _copy_verdict(event_id, tracked)
        outgoing.email_clicked(tracked.digest_id, url, machine, subscriber_id, at)
        db.session.commit()
    else:
        _write(tracked, digest, EngagementKind.CLICK, seen, refused)
    return url


def open_(token: str, seen: rules.Seen, refused: bool) -> None:
    """Record an open of the copy an open token names, when its newsletter is tracked.
    TokenInvalid for a token we did not sign, NotTracked for no digest of ours."""
    tracked = tokens.read_tracked(tokens.OPEN, token)
    digest = _digest(tracked)
    if digest.tracking != TrackingMode.OFF:
        _write(tracked, digest, EngagementKind.OPEN, seen, refused)


class EventConnection:
    """The web process's own connection for events, kept open and in autocommit, its
    threads taking turns on it (a write takes a fraction of a millisecond): a click then
    costs one INSERT and nothing else, where a pooled connection would add a liveness
    ping, BEGIN, COMMIT and a rollback on its return. On PostgreSQL it commits
    asynchronously (``synchronous_commit = off``), as the delivery records do: waiting
    for the disk at each click would hold the redirect to the disk's pace. A killed web
    process loses nothing by it; a crash of the server itself may lose the last
    fraction of a second of counts."""

    def __init__(self):
        self.lock = threading.Lock()
        self.connection: Connection | None = None
        # A forked process makes its own: a connection is never shared across a fork.
        self.pid: int | None = None

    def record(self, *event) -> tuple[int, int | None, datetime]:
        """``_record`` on this connection; once more on a new one if it was lost (a
        restarted database server)."""
        with self.lock:
            try:
                return _record(self._open(), *event)
            except DBAPIError as error:
                if not error.connection_invalidated:
                    raise
                self.connection = None
                return _record(self._open(), *event)

    def _open(self) -> Connection:
        if self.connection is None or self.connection.invalidated or self.pid != os.getpid():
            connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET synchronous_commit = off")
            self.connection, self.pid = connection, os.getpid()
        return self.connection


def _write(*event) -> None:
    """One event through the process's EventConnection."""
    extensions = current_app.extensions
    held = extensions.get(EVENT_CONNECTION) or extensions.setdefault(
        EVENT_CONNECTION, EventConnection()
    )
    held.record(*event)


def _digest(tracked: tokens.Tracked) -> TrackedDigest:
    """The digest a token names, as this process read it at most DIGEST_READ_SECONDS
    ago; NotTracked if it is gone, or is not of the newsletter the token names."""
    remembered = current_app.extensions.setdefault("newsletter.tracked_digests", {})
    now = time.monotonic()
    read_at, digest = remembered.get(tracked.digest_id, (None, None))
    if read_at is None or now - read_at > DIGEST_READ_SECONDS:
        if len(remembered) >= DIGESTS_REMEMBERED:
            remembered.clear()
        digest = _read_digest(tracked.digest_id)
        remembered[tracked.digest_id] = (now, digest)
    if digest is None or digest.newsletter_id != tracked.newsletter_id:
        raise NotTracked()
    return digest


def _read_digest(digest_id: int) -> TrackedDigest | None:
    found = db.session.execute(
        select(Digest.newsletter_id, Newsletter.tracking, Digest.finished_at)
        .join(Newsletter, Newsletter.id == Digest.newsletter_id)
        .where(Digest.id == digest_id)
    ).first()
    if found is None:
        return None
    links = db.session.execute(
        select(DigestLink.position, DigestLink.url).where(DigestLink.digest_id == digest_id)
    )
    return TrackedDigest(
        found.newsletter_id,
        found.tracking,
        dict(links.tuples().all()),
        outgoing.taken(outgoing.EMAIL_CLICKED),
        found.finished_at,
    )


def _insert_event(named: bool, timed: bool):
    """The one statement a request writes, made once: the subscriber (``named``: when
    their newsletter is tracked per subscriber and nobody refused it) and, ``timed``,
    whether their copy was delivered too recently (rules.TOO_SOON) are found by the
    database."""
    subscriber = Subscriber.__table__
    subscriber_id = (
        select(subscriber.c.id)
        .where(
            subscriber.c.token_nonce == bindparam("nonce"), subscriber.c.tracking_refused.is_(False)
        )
        .scalar_subquery()
        if named
        else null()
    )
    delivery = Delivery.__table__
    machine = bindparam("machine", type_=String)
    too_soon = (
        select(literal(rules.TOO_SOON))
        .select_from(delivery.join(subscriber, subscriber.c.id == delivery.c.subscriber_id))
        .where(
            subscriber.c.token_nonce == bindparam("nonce"),
            delivery.c.digest_id == bindparam("digest_id"),
            delivery.c.sent_at > bindparam("delivered_after"),
        )
        .scalar_subquery()
    )
    event = EngagementEvent.__table__
    return (
        insert(event)
        .values(
            at=bindparam("at"),
            digest_id=bindparam("digest_id"),
            kind=bindparam("kind"),
            position=bindparam("position"),
            copy_key=bindparam("copy_key"),
            subscriber_id=subscriber_id,
            machine=func.coalesce(machine, too_soon) if timed else machine,
        )
        .returning(event.c.id, event.c.subscriber_id)
    )


INSERT_EVENT = {
    (named, timed): _insert_event(named, timed)
    for named in (True, False)
    for timed in (True, False)
}


def _record(
    connection: Connection,
    tracked: tokens.Tracked,
    digest: TrackedDigest,
    kind: str,
    seen: rules.Seen,
    refused: bool,
) -> tuple[int, int | None, datetime]:
    """One row, no more; no IP address or user agent in it, only what the rules made of
    them. Its id, the subscriber it names (or None) and its time. Written through a
    connection, not the session, whose bookkeeping would cost the redirect more than
    the row itself."""
    now = utcnow()
    named = digest.tracking == TrackingMode.PER_SUBSCRIBER and not refused
    min_seconds = current_app.config["TRACKING_MIN_SECONDS"]
    event_id, subscriber_id = connection.execute(
        INSERT_EVENT[named, digest.may_be_too_soon(now, min_seconds)],
        {
            "at": now,
            "digest_id": tracked.digest_id,
            "kind": kind,
            "position": tracked.position,
            "copy_key": copy_key(tracked.digest_id, tracked.nonce),
            "nonce": tracked.nonce,
            "machine": rules.request_rule(seen, kind, tracked.position),
            "delivered_after": rules.delivered_after(now, min_seconds),
        },
    ).one()
    return event_id, subscriber_id, now


def _copy_verdict(event_id: int, tracked: tokens.Tracked) -> bool:
    """Whether a click is a machine's by every rule, as far as its copy's requests so far
    tell: a trap request or another link that comes later can still change its count."""
    config = current_app.config
    window = max(config["TRACKING_TRAP_WINDOW_SECONDS"], config["TRACKING_BURST_SECONDS"])
    rows = db.session.execute(
        select(
            EngagementEvent.id,
            EngagementEvent.at,
            EngagementEvent.kind,
            EngagementEvent.position,
            EngagementEvent.machine,
        )
        .where(
            EngagementEvent.digest_id == tracked.digest_id,
            EngagementEvent.copy_key == copy_key(tracked.digest_id, tracked.nonce),
            EngagementEvent.at >= utcnow() - timedelta(seconds=window),
        )
        .order_by(EngagementEvent.at)
    ).all()
    verdicts = rules.copy_machine(
        [rules.Request(*row[1:]) for row in rows],
        config["TRACKING_TRAP_WINDOW_SECONDS"],
        config["TRACKING_BURST_SECONDS"],
    )
    return next(machine for row, machine in zip(rows, verdicts, strict=True) if row.id == event_id)
