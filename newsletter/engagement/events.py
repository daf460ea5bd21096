"""A request on a tracked digest's link or pixel: where it leads, and the one small
row it writes.

The redirect is the hot path (``python -m bench clicks``): what a digest's tokens may
lead to is read once per process for a few seconds (its links never change once
recorded), and a click's row waits in the process's EventBuffer, which writes the rows
of many requests at once, each looking up its subscriber and their copy's delivery in
subqueries; no session, no CSRF, no rate limit, no database round trip.
"""

import atexit
import hashlib
import hmac
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Engine, String, bindparam, func, insert, literal, null, select
from sqlalchemy.exc import DBAPIError, OperationalError

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
log = logging.getLogger(__name__)
EVENT_BUFFER = "newsletter.event_buffer"
# How often a web process writes the events its requests gathered.
FLUSH_SECONDS = 0.05
# Events a process holds while its database does not answer; later ones are lost.
EVENTS_HELD_AT_MOST = 100_000


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
    trap = tracked.position == tokens.TRAP_POSITION
    if trap:
        url: str | None = f"{current_app.config['BASE_URL']}/"
    else:
        url = None if tracked.position is None else digest.links.get(tracked.position)
    if url is None:
        raise NotTracked()
    if digest.tracking == TrackingMode.OFF:
        return url
    if digest.announce_clicks:
        # Its clicks are written at once, so that an announcement's verdict sees the
        # copy's earlier requests (the trap's among them); the event and its announcement
        # commit together, or neither does.
        event_id, subscriber_id, at = _record(tracked, digest, EngagementKind.CLICK, seen, refused)
        if not trap:
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


class EventBuffer:
    """The web process's events on their way to the database: a request only appends
    its row here, and a thread of the process writes what gathered every FLUSH_SECONDS
    in one transaction (one multi-row INSERT per kind of statement), so the redirect
    waits for no database at all and the web processes no longer queue on SQLite's
    write lock. The price: a crash of the process loses the events of its last
    FLUSH_SECONDS; a process that exits normally (gunicorn's worker exit included)
    writes them first."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.lock = threading.Lock()
        # Held by a flush from first to last row, so that flushes never overlap.
        self.writing = threading.Lock()
        self.pending: list[tuple[tuple[bool, bool], dict]] = []
        # A forked process starts its own thread: threads do not survive a fork.
        self.pid: int | None = None

    def add(self, statement: tuple[bool, bool], row: dict) -> None:
        with self.lock:
            if self.pid != os.getpid():
                self.pid, self.pending, self.writing = os.getpid(), [], threading.Lock()
                threading.Thread(target=self._flush_forever, name="events", daemon=True).start()
                atexit.register(self.flush)
            if len(self.pending) < EVENTS_HELD_AT_MOST:
                self.pending.append((statement, row))

    def flush(self) -> None:
        """Write every event gathered so far; on a database error they wait for the next
        flush (a restarted database server loses none of them)."""
        with self.writing:
            with self.lock:
                taken, self.pending = self.pending, []
            if not taken:
                return
            rows: dict[tuple[bool, bool], list[dict]] = {}
            for statement, row in taken:
                rows.setdefault(statement, []).append(row)
            try:
                self._insert(rows)
            except OperationalError:
                # The database is away (restarting, or locked too long): the next flush
                # tries again.
                log.exception("%d engagement events not written, trying again", len(taken))
                with self.lock:
                    self.pending[:0] = taken[: EVENTS_HELD_AT_MOST - len(self.pending)]
            except DBAPIError:
                # A row the database refuses (its digest deleted meanwhile) must not hold
                # back the others: each is tried alone.
                for statement, batch in rows.items():
                    for row in batch:
                        try:
                            self._insert({statement: [row]})
                        except DBAPIError:
                            log.exception("an engagement event refused, dropped: %s", row["at"])

    def _insert(self, rows: dict[tuple[bool, bool], list[dict]]) -> None:
        with self.engine.begin() as connection:
            for statement, batch in rows.items():
                connection.execute(INSERT_EVENTS[statement], batch)

    def written(self) -> bool:
        """Whether every event gathered so far is in the database."""
        with self.lock:
            return not self.pending and not self.writing.locked()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:
                # The thread must outlive any one flush, or no event is written again.
                log.exception("writing engagement events failed")


def buffer() -> EventBuffer:
    """The process's EventBuffer for the current app."""
    extensions = current_app.extensions
    return extensions.get(EVENT_BUFFER) or extensions.setdefault(
        EVENT_BUFFER, EventBuffer(db.engine)
    )


def _write(
    tracked: tokens.Tracked,
    digest: TrackedDigest,
    kind: str,
    seen: rules.Seen,
    refused: bool,
) -> None:
    """One event into the process's EventBuffer."""
    buffer().add(*_event(tracked, digest, kind, seen, refused))


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
    """The statement of an event row, made once: the subscriber (``named``: when
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
        # Asked of every batch too: with RETURNING, SQLAlchemy sends a batch as one
        # multi-row INSERT (its "insertmanyvalues"), not one INSERT a row.
        .returning(event.c.id, event.c.subscriber_id)
    )


INSERT_EVENTS = {
    (named, timed): _insert_event(named, timed)
    for named in (True, False)
    for timed in (True, False)
}


def _event(
    tracked: tokens.Tracked,
    digest: TrackedDigest,
    kind: str,
    seen: rules.Seen,
    refused: bool,
) -> tuple[tuple[bool, bool], dict]:
    """The statement (by ``named`` and ``timed``) and the values of one event row; no IP
    address or user agent in it, only what the rules made of them. Its time is the
    request's, however late it is written."""
    now = utcnow()
    named = digest.tracking == TrackingMode.PER_SUBSCRIBER and not refused
    min_seconds = current_app.config["TRACKING_MIN_SECONDS"]
    return (named, digest.may_be_too_soon(now, min_seconds)), {
        "at": now,
        "digest_id": tracked.digest_id,
        "kind": kind,
        "position": tracked.position,
        "copy_key": copy_key(tracked.digest_id, tracked.nonce),
        "nonce": tracked.nonce,
        "machine": rules.request_rule(seen, kind, tracked.position),
        "delivered_after": rules.delivered_after(now, min_seconds),
    }


def _record(*event) -> tuple[int, int | None, datetime]:
    """One event row written at once, in the session's transaction: its id, the
    subscriber it names (or None) and its time."""
    statement, row = _event(*event)
    event_id, subscriber_id = db.session.connection().execute(INSERT_EVENTS[statement], row).one()
    return event_id, subscriber_id, row["at"]


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
