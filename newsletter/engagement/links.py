"""A tracked digest's links: recorded once, so that a click token, which names a
position, can only lead to a link the digest itself carries (never an open redirect)."""

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from newsletter.content.models import Newsletter, TrackingMode
from newsletter.engagement.models import DigestLink
from newsletter.extensions import db

URL_LENGTH = DigestLink.url.type.length


def is_tracked(newsletter: Newsletter | None) -> bool:
    return newsletter is not None and newsletter.tracking != TrackingMode.OFF


def positions_for(digest_id: int, urls: list[str]) -> dict[str, int]:
    """Each link's position, as recorded for the digest: the first render for sending
    records them (1, 2, …; 0 is the trap), and every later one, in any worker, finds
    them. A link the record lacks (longer than a URL may be) stays as written."""
    recorded = _recorded(digest_id)
    if not recorded:
        rows = [
            {"digest_id": digest_id, "position": position, "url": url}
            for position, url in enumerate((u for u in urls if len(u) <= URL_LENGTH), 1)
        ]
        if rows:
            try:
                db.session.execute(insert(DigestLink), rows)
                db.session.commit()
            except IntegrityError:
                # Another worker recorded them first: theirs stand.
                db.session.rollback()
            recorded = _recorded(digest_id)
    return recorded


def _recorded(digest_id: int) -> dict[str, int]:
    rows = db.session.execute(
        select(DigestLink.url, DigestLink.position)
        .where(DigestLink.digest_id == digest_id)
        .order_by(DigestLink.position.desc())
    )
    # Highest position first, so the same URL twice keeps its first position.
    return dict(rows.tuples().all())
