"""What became of each row of a batch, written at the batch's end in a fixed number of
statements, whatever its size.

A sent message's time was recorded as it went out (recorder.py); its status follows
here. Failed rows keep their error; rows to retry get a later due time, or fail when
out of attempts; rows never tried go back (their attempt uncounted), at once, at their
domain's next turn, or when the relay is tried again; the relay's refusals of subscribers'
addresses count towards a bounce (relay_bounces.py).
"""

from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, select, update

from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.sending import leases, relay_bounces
from newsletter.sending.kinds import Kind, unsent
from newsletter.sending.outcomes import Outcome, Verdict, WorkModel, cut

# One row's new values, for an UPDATE by primary key of many rows at once.
Row = dict[str, Any]


def write(
    kind: Kind,
    outcomes: list[Outcome],
    refused_reason: str | None = None,
    relay_wait: float | None = None,
) -> None:
    """Write every outcome of a batch and commit. ``refused_reason``: why the relay
    refuses the message itself, if it does; ``relay_wait``: the seconds the mail waits,
    when the relay could not be opened."""
    model = kind.model
    by_verdict: dict[Verdict, list[Outcome]] = {verdict: [] for verdict in Verdict}
    for outcome in outcomes:
        by_verdict[outcome.verdict].append(outcome)
    failed = [_failed_row(outcome) for outcome in by_verdict[Verdict.FAILED]]
    retry = _retries(by_verdict[Verdict.RETRY], failed)
    if failed:
        db.session.execute(update(model), failed)
    if retry:
        db.session.execute(update(model), retry)
    _update_ids(model, by_verdict[Verdict.SENT], status="sent", lease_until=None)
    _update_ids(model, by_verdict[Verdict.SKIPPED], status="skipped", lease_until=None)
    _update_ids(
        model, by_verdict[Verdict.HANDED_BACK], lease_until=None, attempts=model.attempts - 1
    )
    deferred = [
        {"id": outcome.claim.row_id, "lease_until": None, "due_at": outcome.due_at,
         "attempts": outcome.claim.attempts - 1}
        for outcome in by_verdict[Verdict.DEFERRED]
    ]  # fmt: skip
    if deferred:
        db.session.execute(update(model), deferred)
    relay_bounces.count(
        [outcome for outcome in by_verdict[Verdict.FAILED] if outcome.blames_subscriber],
        by_verdict[Verdict.SENT],
    )
    if by_verdict[Verdict.WAITING]:
        _wait_for_relay(kind, by_verdict[Verdict.WAITING], relay_wait or 0.0)
    elif by_verdict[Verdict.SENT]:
        kind.waiting(None)
    if refused_reason:
        # In the same transaction as the rows handed back, so no batch takes them first.
        kind.refused(refused_reason)
    db.session.commit()


def _wait_for_relay(kind: Kind, outcomes: list[Outcome], seconds: float) -> None:
    """The batch's rows go back with their attempts, and everything the kind owes
    that is due before the relay's next try waits for it too: neither the sweep nor
    another batch knocks on the relay before then, and none of it loses an attempt."""
    model = kind.model
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    reason = outcomes[0].error or "the relay is unavailable"
    # Rows another worker is pushing (or claiming) are skipped, not waited for: it
    # takes care of them, and two pushes never lock the same rows in turn.
    due_before = (
        select(model.id)
        .where(*kind.owed(), unsent(kind), leases.unheld(model, now), model.due_at < until)
        .with_for_update(skip_locked=True)
    )
    db.session.execute(update(model).where(model.id.in_(due_before)).values(due_at=until))
    ids = [outcome.claim.row_id for outcome in outcomes]
    db.session.execute(
        update(model)
        .where(leases.among(model.id, ids))
        .values(lease_until=None, due_at=until, attempts=model.attempts - 1, last_error=cut(reason))
    )
    kind.waiting(f"Waiting for the relay, next try at {until:%H:%M:%S} UTC: {reason}")


def _retries(outcomes: list[Outcome], failed: list[Row]) -> list[Row]:
    """Rows to try again later; those out of attempts join ``failed``."""
    now = utcnow()
    retry = []
    for outcome in outcomes:
        claim = outcome.claim
        if claim.attempts >= current_app.config["SEND_MAX_ATTEMPTS"]:
            failed.append(_failed_row(outcome))
            continue
        delay = timedelta(seconds=leases.retry_delay(claim.attempts))
        retry.append(
            {"id": claim.row_id, "lease_until": None, "due_at": now + delay,
             "last_error": cut(outcome.error)}
        )  # fmt: skip
    return retry


def _failed_row(outcome: Outcome) -> Row:
    return {
        "id": outcome.claim.row_id,
        "status": "failed",
        "lease_until": None,
        "last_error": cut(outcome.error),
    }


def _update_ids(model: WorkModel, outcomes: list[Outcome], **values: Any) -> None:
    if outcomes:
        ids = [outcome.claim.row_id for outcome in outcomes]
        db.session.execute(update(model).where(leases.among(model.id, ids)).values(**values))


def settle_stragglers(kind: Kind, *open_rows: ColumnElement[bool]) -> None:
    """Rows whose message went out but whose worker died before their status followed:
    once their lease has run out, they are sent."""
    model = kind.model
    db.session.execute(
        update(model)
        .where(*open_rows, ~unsent(kind), leases.unheld(model, utcnow()))
        .values(status="sent", lease_until=None)
    )
    db.session.commit()
