"""Slowing down for one recipient domain when its mail system asks.

A 421 at a recipient, or a 4.7.x reply (RFC 3463: "security or policy status",
which is how Gmail, Yahoo and Microsoft say "too many messages, slow down"), gives
that domain a pace of its own, kept in the database so that every worker on every
host keeps it: at most one message per ``interval_seconds``. Each request to slow
down doubles the interval (from START_SECONDS up to MAX_SECONDS); each message that
goes through shrinks it by a tenth, until the domain is back to full speed and
its row is deleted. A message whose domain's next turn is still ahead is handed
back for that moment, its attempt uncounted.

A batch reads the set of paced domains once (nearly always empty); only messages
to those domains pay for a turn, one conditional UPDATE each.
"""

import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.core.writes import rows_changed
from newsletter.extensions import db
from newsletter.sending.models import DomainPace

START_SECONDS = 1.0
MAX_SECONDS = 300.0
RECOVERY = 0.9
# Below this interval the domain is at full speed again.
FULL_SPEED_SECONDS = 0.05


class BatchTurns:
    """One batch's dealings with the paced domains: the set of them, read once as the
    batch starts, and the domains that ask to slow down during it."""

    def __init__(self) -> None:
        self.paced = paced_domains()
        self.slowed: set[str] = set()

    def next_turn(self, address: str) -> datetime | None:
        """None when a message to ``address`` may go now as far as its domain is
        concerned; else when the domain's next turn comes (UTC)."""
        domain = domain_of(address)
        if domain in self.slowed:
            # Its pace is written when the batch ends: until then, a first step.
            next_at: float | None = time.time() + START_SECONDS
        elif domain in self.paced:
            next_at = take_turn(domain)
        else:
            return None
        if next_at is None:
            return None
        return datetime.fromtimestamp(next_at, UTC).replace(tzinfo=None)

    def asked_to_slow_down(self, address: str) -> None:
        self.slowed.add(domain_of(address))

    def adjust(self, sent_to: Iterable[str]) -> None:
        """Slow the domains that asked during this batch; step the paced ones that
        messages went through to back towards full speed. Commits, if anything changed."""
        through = Counter(
            domain
            for domain in map(domain_of, sent_to)
            if domain in self.paced and domain not in self.slowed
        )
        if not (self.slowed or through):
            return
        slow_down(self.slowed)
        went_through(through)
        db.session.commit()


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def paced_domains() -> set[str]:
    return set(db.session.scalars(select(DomainPace.domain)))


def take_turn(domain: str, now: float | None = None) -> float | None:
    """Take the domain's next turn if it has come (None: send now), else say when it
    comes (Unix time). Commits."""
    now = time.time() if now is None else now
    table = DomainPace.__table__
    taken = rows_changed(
        update(table)
        .where(table.c.domain == domain, table.c.next_at <= now)
        .values(next_at=now + table.c.interval_seconds)
    )
    next_at = (
        None
        if taken
        else db.session.scalar(select(table.c.next_at).where(table.c.domain == domain))
    )
    db.session.commit()
    return next_at


def slow_down(domains: Iterable[str], now: float | None = None) -> None:
    """The domains asked us to slow down: double their interval, or start one. In the
    caller's transaction."""
    now = time.time() if now is None else now
    for domain in set(domains):
        pace = db.session.get(DomainPace, domain)
        if pace is None:
            try:
                with db.session.begin_nested():
                    db.session.add(
                        DomainPace(
                            domain=domain,
                            interval_seconds=START_SECONDS,
                            next_at=now + START_SECONDS,
                        )
                    )
                continue
            except IntegrityError:
                pace = db.session.get_one(DomainPace, domain)
        pace.interval_seconds = min(MAX_SECONDS, max(START_SECONDS, pace.interval_seconds * 2))
        pace.next_at = now + pace.interval_seconds


def went_through(sent: Counter[str]) -> None:
    """Messages to paced domains got through: each shrinks its domain's interval, and a
    domain back at full speed is no longer paced. In the caller's transaction."""
    table = DomainPace.__table__
    for domain, count in sent.items():
        db.session.execute(
            update(table)
            .where(table.c.domain == domain)
            .values(interval_seconds=table.c.interval_seconds * RECOVERY**count)
        )
    if sent:
        db.session.execute(
            delete(table).where(
                table.c.domain.in_(list(sent)), table.c.interval_seconds < FULL_SPEED_SECONDS
            )
        )
