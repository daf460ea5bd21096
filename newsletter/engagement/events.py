"""A request on a tracked digest's link or pixel: where it leads, and the one small
row it writes."""

import hashlib
import hmac

from flask import current_app
from sqlalchemy import and_, insert, select

from newsletter.content.models import Digest, Newsletter, TrackingMode
from newsletter.core import tokens
from newsletter.core.models import utcnow
from newsletter.engagement import rules
from newsletter.engagement.models import DigestLink, EngagementEvent, EngagementKind
from newsletter.extensions import db
from newsletter.sending.models import Delivery
from newsletter.subscribers.models import Subscriber


class NotTracked(LookupError):
    """The token names no link of any digest: a 404."""


def copy_key(digest_id: int, nonce: str) -> str:
    """Names one copy in its events, so that its requests can be read together, without
    naming its reader: a keyed hash, which nobody without the secret key can trace."""
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
    found = db.session.execute(
        select(Newsletter.tracking, DigestLink.url)
        .select_from(Digest)
        .join(Newsletter, Newsletter.id == Digest.newsletter_id)
        .outerjoin(
            DigestLink,
            and_(DigestLink.digest_id == Digest.id, DigestLink.position == tracked.position),
        )
        .where(Digest.id == tracked.digest_id, Digest.newsletter_id == tracked.newsletter_id)
    ).first()
    trap = tracked.position == rules.TRAP_POSITION
    if found is None or (found.url is None and not trap):
        raise NotTracked()
    _record(tracked, found.tracking, EngagementKind.CLICK, seen, refused)
    return f"{current_app.config['BASE_URL']}/" if trap else found.url


def open_(token: str, seen: rules.Seen, refused: bool) -> None:
    """Record an open of the copy an open token names, when its newsletter is tracked.
    TokenInvalid for a token we did not sign, NotTracked for no digest of ours."""
    tracked = tokens.read_tracked(tokens.OPEN, token)
    tracking = db.session.scalar(
        select(Newsletter.tracking)
        .join(Digest, Digest.newsletter_id == Newsletter.id)
        .where(Digest.id == tracked.digest_id, Newsletter.id == tracked.newsletter_id)
    )
    if tracking is None:
        raise NotTracked()
    _record(tracked, tracking, EngagementKind.OPEN, seen, refused)


def _record(tracked: tokens.Tracked, tracking: str, kind: str, seen: rules.Seen, refused: bool):
    """One row, no more; no IP address or user agent in it, only what the rules made of
    them. Nothing for a newsletter tracked no longer."""
    if tracking == TrackingMode.OFF:
        db.session.rollback()
        return
    reader = db.session.execute(
        select(Subscriber.id, Subscriber.tracking_refused, Delivery.sent_at)
        .outerjoin(
            Delivery,
            and_(Delivery.subscriber_id == Subscriber.id, Delivery.digest_id == tracked.digest_id),
        )
        .where(Subscriber.token_nonce == tracked.nonce)
    ).first()
    now = utcnow()
    named = (
        tracking == TrackingMode.PER_READER
        and reader is not None
        and not reader.tracking_refused
        and not refused
    )
    db.session.execute(
        insert(EngagementEvent).values(
            at=now,
            digest_id=tracked.digest_id,
            kind=kind,
            position=tracked.position,
            copy_key=copy_key(tracked.digest_id, tracked.nonce),
            subscriber_id=reader.id if named and reader is not None else None,
            machine=rules.request_rule(
                seen,
                kind,
                tracked.position,
                reader.sent_at if reader is not None else None,
                now,
                current_app.config["TRACKING_MIN_SECONDS"],
            ),
        )
    )
    db.session.commit()
