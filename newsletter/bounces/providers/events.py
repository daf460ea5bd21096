"""What every provider's webhook shares: its refusals, the order in which a request is
proved and taken (``receive``), its replay guard, and how a batch of its events reaches
``feedback``."""

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.exc import DataError, IntegrityError

from newsletter.bounces import feedback
from newsletter.bounces.models import FeedbackKind, WebhookReplay
from newsletter.core.models import utcnow
from newsletter.extensions import db

log = logging.getLogger(__name__)

# An event's kind besides the FeedbackKinds: the message reached the mailbox, which
# clears the subscriber's soft bounces (feedback.delivered) and is not kept.
DELIVERED = "delivered"
# What the feedback_event columns take.
STATUS_LENGTH = 16
DETAIL_LENGTH = 500
REFERENCE_LENGTH = 200


class Refused(Exception):
    """The request is not taken: nothing it says changes anything."""

    status = 403


class Malformed(Refused):
    """Not what the provider sends: no JSON, or JSON of the wrong shape."""

    status = 400


class Unauthenticated(Refused):
    """No credentials, or wrong ones (HTTP basic auth)."""

    status = 401


class Replayed(Refused):
    """A signed request taken before, sent again."""

    status = 409


class Unreachable(Refused):
    """The provider could not be asked what we needed (its certificate); it sends the
    request again later."""

    status = 502


@dataclass(frozen=True)
class Event:
    """One event of a provider's, as ``feedback`` takes it; any field may be missing."""

    # A FeedbackKind, or DELIVERED.
    kind: str
    reference: object = None
    return_path: object = None
    message_id: object = None
    address: object = None
    status: object = None
    detail: object = None

    def report(self, source: str) -> feedback.Report:
        """The report, every field text that the database takes (providers' JSON may
        hold numbers, or NUL characters, which PostgreSQL refuses in text)."""
        reference = _text(self.reference)
        if reference and len(reference) > REFERENCE_LENGTH:
            reference = hashlib.sha256(reference.encode()).hexdigest()
        return feedback.Report(
            # A delivery has no FeedbackKind: feedback.delivered reads only the subscriber's names.
            FeedbackKind(self.kind) if self.kind != DELIVERED else None,
            source,
            reference=reference,
            return_path=_text(self.return_path),
            message_id=_text(self.message_id),
            address=_text(self.address),
            # The provider signed the request: its word on the recipient counts.
            address_is_vouched_for=True,
            status=_text(self.status, STATUS_LENGTH),
            detail=_text(self.detail, DETAIL_LENGTH),
        )


@dataclass(frozen=True)
class Signed:
    """What a provider's valid signature vouches for: when the request was signed
    (seconds since the epoch), a token that no other request of the provider's carries,
    and how long either side of that moment the request may be taken."""

    at: float
    token: str
    fresh_for: timedelta


@dataclass
class Tally:
    """What one request's events did; the answer's body and the log line."""

    recorded: int = 0
    # Reported before (a provider's retry, or the same event in another batch).
    repeated: int = 0
    delivered: int = 0
    # Events that change nothing here: opens, clicks, failures still being retried.
    ignored: int = 0
    # Events not of the shape the provider sends, skipped.
    malformed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def __str__(self) -> str:
        return ", ".join(f"{name} {count}" for name, count in asdict(self).items())


def receive(
    source: str,
    verify: Callable[[], Signed | None],
    read_batch: Callable[[], Iterable[object]],
    read_event: Callable[[Any], list[Event]],
) -> Tally:
    """One request of a provider's, in the order that lets no forged, stale or replayed
    request change anything: ``verify`` (Refused unless the provider sent it; None for a
    provider that signs nothing, proved by a password, whose events count once by their
    own references), the signature's freshness, ``read_batch`` (Malformed unless it is
    of the provider's shape), and then each event, with the signed request taken once."""
    signed = verify()
    if signed is None:
        return apply(source, read_batch(), read_event)
    check_fresh(signed.at, signed.fresh_for)
    batch = read_batch()
    with taken_once(source, signed.token, signed.fresh_for):
        return apply(source, batch, read_event)


def parse_json(body: bytes, expected: str) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise Malformed(f"The body is not JSON: send {expected}.") from None


def check_fresh(signed_at: float, window: timedelta) -> None:
    """Refuse a request signed longer ago (or further ahead, for a clock that runs
    fast) than ``window``: an old signed request, captured, cannot be sent again later."""
    # Written as "not within", so that a NaN is refused too.
    if not abs(time.time() - signed_at) <= window.total_seconds():
        raise Refused(
            f"The request's timestamp is more than {window.total_seconds():.0f} seconds "
            "from now: signed too long ago, or the clocks differ."
        )


@contextmanager
def taken_once(provider: str, token: str, window: timedelta) -> Iterator[None]:
    """Record a signed request's token for what the block does; Replayed if it was
    taken before. Should the block fail (the request then answers 5xx), the token is
    given back, so that the provider's retry is taken; what the block recorded counts
    once anyway. Tokens are kept twice as long as a timestamp stays fresh (a timestamp
    may run ``window`` ahead), and then dropped, since the freshness check refuses
    their requests anyway."""
    now = utcnow()
    digest = hashlib.sha256(token.encode()).hexdigest()
    db.session.execute(
        delete(WebhookReplay).where(
            WebhookReplay.provider == provider, WebhookReplay.seen_at < now - 2 * window
        )
    )
    try:
        db.session.execute(
            insert(WebhookReplay).values(provider=provider, token=digest, seen_at=now)
        )
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Replayed("This request was received before.") from None
    try:
        yield
    except Exception:
        db.session.rollback()
        db.session.execute(
            delete(WebhookReplay).where(
                WebhookReplay.provider == provider, WebhookReplay.token == digest
            )
        )
        db.session.commit()
        raise


def apply(
    source: str, raw_events: Iterable[object], read_event: Callable[[Any], list[Event]]
) -> Tally:
    """Read each of a provider's events with ``read_event`` and hand what it says to
    ``feedback``; an event that cannot be read is skipped and logged, so one bad event
    never stops the others."""
    tally = Tally()
    for number, raw_event in enumerate(raw_events):
        try:
            events = read_event(raw_event)
        except (KeyError, TypeError, AttributeError, ValueError, RecursionError) as error:
            log.warning(
                "%s webhook: event %d skipped, not as %s sends it: %r",
                source,
                number,
                source,
                error,
            )
            tally.malformed += 1
            continue
        if not events:
            tally.ignored += 1
        for event in events:
            try:
                _apply_one(source, event, tally)
            except DataError as error:
                # A value the database cannot take (a Message-ID naming a row id past
                # INTEGER, say): this event's fault, not the database's.
                db.session.rollback()
                log.warning("%s webhook: event %d skipped: %s", source, number, error.orig)
                tally.malformed += 1
    return tally


def _apply_one(source: str, event: Event, tally: Tally) -> None:
    report = event.report(source)
    if event.kind == DELIVERED:
        feedback.delivered(report)
        tally.delivered += 1
    elif feedback.record(report) is None:
        tally.repeated += 1
    else:
        tally.recorded += 1


def _text(value: object, length: int | None = None) -> str | None:
    if value is None or value == "":
        return None
    return str(value).replace("\x00", "")[:length]
