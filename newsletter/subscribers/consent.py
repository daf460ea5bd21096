"""The consent log: each subscriber's sign-up, confirmation, join, leave and
unsubscribe, with where it came from. Rows are only ever appended, in the caller's
transaction; privacy.py hands them out and erases them, stats.py counts them."""

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, insert

from newsletter.extensions import db
from newsletter.subscribers.models import ConsentEvent, ConsentKind

# Built once: the sign-up path appends with Core, whose statement costs less than the
# ORM's flush.
_APPEND = insert(ConsentEvent.__table__)


def log_consent(
    subscriber_id: int | None,
    kind: ConsentKind,
    source: str,
    ip: str | None,
    newsletter_id: int | None = None,
) -> None:
    """Append to the consent log, in the caller's transaction."""
    db.session.add(
        ConsentEvent(
            subscriber_id=subscriber_id,
            kind=kind,
            source=source,
            ip=ip,
            newsletter_id=newsletter_id,
        )
    )


def log_signup(connection: Connection, subscriber_id: int, source: str, ip: str | None) -> None:
    """Append a new address's sign-up on the caller's connection (the fast sign-up path)."""
    connection.execute(
        _APPEND,
        {"subscriber_id": subscriber_id, "kind": ConsentKind.SIGNUP, "source": source, "ip": ip},
    )


def log_many(
    subscriber_ids: Iterable[int], kinds: list[ConsentKind], source: str, at: datetime
) -> None:
    """Append each of ``kinds`` for each subscriber in one statement (an import's
    consent came with the file)."""
    rows = [
        {"subscriber_id": subscriber_id, "kind": kind, "source": source, "at": at}
        for subscriber_id in subscriber_ids
        for kind in kinds
    ]
    if rows:
        db.session.execute(insert(ConsentEvent), rows)
