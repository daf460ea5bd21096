"""Leases: how workers share rows of work (email jobs, digest deliveries).

A worker takes due rows with one conditional UPDATE … RETURNING, which sets a
lease; rows under a live lease are nobody else's. A worker that dies leaves a
lease that runs out, and the row is due again. On PostgreSQL the candidates are
picked with FOR UPDATE SKIP LOCKED, so workers never wait on each other.
"""

import random
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from newsletter.extensions import db
from newsletter.models import utcnow

# A hint for a retry may arrive a moment before its due time on another host's clock.
CLOCK_TOLERANCE = timedelta(seconds=1)
MAX_RETRY_DELAY = 3600


def unheld(model, now):
    """Rows of ``model`` that no worker holds now."""
    return or_(model.lease_until.is_(None), model.lease_until < now)


def take_due(model, *conditions, order_by, limit):
    """Lease up to ``limit`` due rows of ``model`` that match ``conditions``, count an
    attempt on each, commit, and return their ids."""
    now = utcnow()
    due = (
        select(model.id)
        .where(model.due_at <= now + CLOCK_TOLERANCE, unheld(model, now), *conditions)
        .order_by(order_by)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    lease = timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
    taken = db.session.scalars(
        update(model)
        .where(model.id.in_(due))
        .values(lease_until=now + lease, attempts=model.attempts + 1)
        .returning(model.id)
    ).all()
    db.session.commit()
    return taken


def retry_delay(attempts):
    """Exponential backoff with jitter, so a recovering server is not hit all at once."""
    base = current_app.config["SEND_RETRY_BASE_SECONDS"]
    return min(base * 2 ** (attempts - 1), MAX_RETRY_DELAY) * random.uniform(0.5, 1.5)
