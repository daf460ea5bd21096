"""Leases: how workers share rows of work (email jobs, digest deliveries).

A worker takes due rows with one conditional UPDATE … RETURNING, which sets a
lease; rows under a live lease are nobody else's. A worker that dies leaves a
lease that runs out, and the row is due again. On PostgreSQL the candidates are
picked with FOR UPDATE SKIP LOCKED, so workers never wait on each other.
"""

import json
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ARRAY, ColumnElement, Integer, any_, bindparam, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute

from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.sending.outcomes import WorkModel

# A follow-up for a retry waits this much longer than the retry's delay: another
# host's clock may be a little behind.
CLOCK_TOLERANCE_SECONDS = 1.0
MAX_RETRY_DELAY = 3600


def unheld(model: WorkModel, now: datetime) -> ColumnElement[bool]:
    """Rows of ``model`` that no worker holds now."""
    return or_(model.lease_until.is_(None), model.lease_until < now)


def take_due(
    model: WorkModel,
    *conditions: ColumnElement[bool],
    order_by: InstrumentedAttribute[Any],
    limit: int,
) -> list[int]:
    """Lease up to ``limit`` due rows of ``model`` that match ``conditions``, count an
    attempt on each, and return their ids; the caller commits."""
    now = utcnow()
    due = (
        select(model.id)
        .where(model.due_at <= now, unheld(model, now), *conditions)
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
    return list(taken)


def among(column: InstrumentedAttribute[int], ids: Sequence[int]) -> ColumnElement[bool]:
    """``column IN ids`` as one parameter, whatever the number of ids: an array on
    PostgreSQL, a JSON list elsewhere. Two hundred separate parameters cost more to
    compile and parse than the query costs to run."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
    listed = func.json_each(json.dumps(list(ids))).table_valued("value")
    return column.in_(select(listed.c.value))


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter, so a recovering server is not hit all at once."""
    base: float = current_app.config["SEND_RETRY_BASE_SECONDS"]
    return min(base * 2.0 ** (attempts - 1), MAX_RETRY_DELAY) * random.uniform(0.5, 1.5)


def relay_wait(failures: int) -> float:
    """Seconds the mail waits after ``failures`` openings of the relay failed in a row:
    the same backoff, capped lower, since it goes on for as long as the relay is out."""
    cap: float = current_app.config["SEND_RELAY_WAIT_MAX_SECONDS"]
    return min(retry_delay(failures), cap)
