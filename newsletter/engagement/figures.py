"""Counting a digest's opens and clicks, a person's apart from a machine's; folding old
events into per-digest totals; a subscriber's own events, for them and for the admins."""

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import ColumnElement, and_, delete, or_, select

from newsletter.content.models import Digest
from newsletter.core import tokens
from newsletter.core.models import utcnow
from newsletter.engagement import rules
from newsletter.engagement.models import (
    DigestLink,
    EngagementEvent,
    EngagementKind,
    EngagementTotal,
)
from newsletter.extensions import db

# Anonymous events (counts mode, subscribers who refused, Sec-GPC) are folded this soon:
# long enough for every rule that reads a copy's requests together (seconds), short
# enough that no copy's requests stay linkable for long.
ANONYMOUS_KEPT = timedelta(hours=1)
FOLD_CHUNK = 5000
ALL_LINKS = 0


@dataclass
class Counts:
    human: int = 0
    machine: int = 0
    # Copies with at least one human request: unique opens or clicks (an estimate once
    # events are folded in more than one go).
    human_copies: int = 0


@dataclass(frozen=True)
class LinkCounts:
    position: int
    url: str
    counts: Counts


@dataclass
class Figures:
    opens: Counts = field(default_factory=Counts)
    # Every click, the trap's among the machine ones.
    clicks: Counts = field(default_factory=Counts)
    links: list[LinkCounts] = field(default_factory=list)


def _tally(events) -> dict[tuple[int, str, int], Counts]:
    """Counts per (digest, kind, position) of events (digest_id, copy_key and a
    rules.Request each), the copy rules applied to each copy's requests together.
    Opens are counted at position 0; clicks at their link's and all at ALL_LINKS."""
    config = current_app.config
    by_copy = defaultdict(list)
    for digest_id, key, request in events:
        by_copy[digest_id, key].append(request)
    counted: defaultdict[tuple[int, str, int], Counts] = defaultdict(Counts)
    for (digest_id, _key), requests in by_copy.items():
        requests.sort(key=lambda request: request.at)
        verdicts = rules.copy_machine(
            requests, config["TRACKING_TRAP_WINDOW_SECONDS"], config["TRACKING_BURST_SECONDS"]
        )
        human_in = set()
        for request, machine in zip(requests, verdicts, strict=True):
            if request.kind == EngagementKind.OPEN:
                places = [ALL_LINKS]
            else:
                trap = request.position == tokens.TRAP_POSITION
                places = [ALL_LINKS] if trap else [ALL_LINKS, request.position]
            for position in places:
                counts = counted[digest_id, request.kind, position]
                if machine:
                    counts.machine += 1
                else:
                    counts.human += 1
                    human_in.add((digest_id, request.kind, position))
        for place in human_in:
            counted[place].human_copies += 1
    return counted


def _events(where, limit=None):
    """Events as ``_tally`` reads them, each with its id, oldest first."""
    rows = db.session.execute(
        select(
            EngagementEvent.id,
            EngagementEvent.digest_id,
            EngagementEvent.copy_key,
            EngagementEvent.at,
            EngagementEvent.kind,
            EngagementEvent.position,
            EngagementEvent.machine,
        )
        .where(where)
        .order_by(EngagementEvent.id)
        .limit(limit)
    )
    return [(row.id, (row.digest_id, row.copy_key, rules.Request(*row[3:]))) for row in rows]


def figures(digest_id: int) -> Figures:
    """A digest's opens and clicks, folded totals and recent events together."""
    counted: defaultdict[tuple[str, int], Counts] = defaultdict(Counts)
    for total in db.session.scalars(
        select(EngagementTotal).where(EngagementTotal.digest_id == digest_id)
    ):
        counted[total.kind, total.position] = Counts(total.human, total.machine, total.human_copies)
    live = [event for _id, event in _events(EngagementEvent.digest_id == digest_id)]
    for (_digest, kind, position), counts in _tally(live).items():
        _add(counted[kind, position], counts)
    links = db.session.execute(
        select(DigestLink.position, DigestLink.url)
        .where(DigestLink.digest_id == digest_id)
        .order_by(DigestLink.position)
    )
    return Figures(
        opens=counted[EngagementKind.OPEN, ALL_LINKS],
        clicks=counted[EngagementKind.CLICK, ALL_LINKS],
        links=[
            LinkCounts(position, url, counted[EngagementKind.CLICK, position])
            for position, url in links
        ],
    )


def rate(copies: int, delivered: int) -> float | None:
    """Copies with a person's open or click per copy delivered; None before any was."""
    return copies / delivered if delivered else None


@dataclass(frozen=True, slots=True)
class Reach:
    """A digest's copies delivered beside its opens and clicks: the rates admins read."""

    delivered: int
    opens: Counts
    clicks: Counts

    @property
    def open_rate(self) -> float | None:
        """Subscribers who opened it (people, unique, estimated) per copy delivered."""
        return rate(self.opens.human_copies, self.delivered)

    @property
    def click_rate(self) -> float | None:
        """Subscribers who followed a link of it (people, unique) per copy delivered."""
        return rate(self.clicks.human_copies, self.delivered)


def links_csv(found: Figures) -> Iterator[str]:
    """A digest's links and their clicks as CSV lines, a header first. Every URL is a
    web link (mail/digest.py tracks no other), so no cell can pass for a formula."""
    yield _csv_line(["position", "url", "human_clicks", "machine_clicks", "human_readers"])
    for link in found.links:
        counts = link.counts
        yield _csv_line(
            [link.position, link.url, counts.human, counts.machine, counts.human_copies]
        )


def _csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def _add(into: Counts, more: Counts) -> None:
    into.human += more.human
    into.machine += more.machine
    into.human_copies += more.human_copies


def fold_old_events(now: datetime | None = None) -> int:
    """Fold events into their digests' totals and delete them: anonymous ones after
    ANONYMOUS_KEPT, a subscriber's after TRACKING_RETENTION_DAYS (0: kept). How many went."""
    now = now or utcnow()
    old: ColumnElement[bool] = EngagementEvent.subscriber_id.is_(None) & (
        EngagementEvent.at < now - ANONYMOUS_KEPT
    )
    days = current_app.config["TRACKING_RETENTION_DAYS"]
    if days:
        old = or_(old, EngagementEvent.at < now - timedelta(days=days))
    folded = 0
    while chunk := _events(old, FOLD_CHUNK):
        for (digest_id, kind, position), counts in _tally([e for _id, e in chunk]).items():
            total = db.session.get(EngagementTotal, (digest_id, kind, position))
            if total is None:
                total = EngagementTotal(
                    digest_id=digest_id, kind=kind, position=position, human=0, machine=0,
                    human_copies=0,
                )  # fmt: skip
                db.session.add(total)
            total.human += counts.human
            total.machine += counts.machine
            total.human_copies += counts.human_copies
        ids = [event_id for event_id, _event in chunk]
        db.session.execute(delete(EngagementEvent).where(EngagementEvent.id.in_(ids)))
        db.session.commit()
        folded += len(ids)
    return folded


@dataclass(frozen=True)
class SubscriberEvent:
    at: datetime
    kind: str
    subject: str
    # The link followed; None for an open (and for the trap).
    url: str | None
    machine: bool


def subscriber_events(subscriber_id: int) -> list[SubscriberEvent]:
    """What a subscriber of newsletters tracked per subscriber opened and clicked, newest
    first, each as a person's or a machine's."""
    rows = db.session.execute(
        select(EngagementEvent, Digest.subject, DigestLink.url)
        .join(Digest, Digest.id == EngagementEvent.digest_id)
        .outerjoin(
            DigestLink,
            and_(
                DigestLink.digest_id == EngagementEvent.digest_id,
                DigestLink.position == EngagementEvent.position,
            ),
        )
        .where(EngagementEvent.subscriber_id == subscriber_id)
        .order_by(EngagementEvent.at)
    ).all()
    config = current_app.config
    by_digest = defaultdict(list)
    for row in rows:
        by_digest[row[0].digest_id].append(row)
    listed = []
    for same_digest in by_digest.values():
        verdicts = rules.copy_machine(
            [rules.Request(e.at, e.kind, e.position, e.machine) for e, *_ in same_digest],
            config["TRACKING_TRAP_WINDOW_SECONDS"],
            config["TRACKING_BURST_SECONDS"],
        )
        listed += [
            SubscriberEvent(event.at, event.kind, subject, url, machine)
            for (event, subject, url), machine in zip(same_digest, verdicts, strict=True)
        ]
    return sorted(listed, key=lambda event: event.at, reverse=True)
