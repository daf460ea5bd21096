"""Hints to the workers: broker messages that say "there is work".

The database records what must be sent; a hint only wakes a worker. One that
cannot be published is logged, not fatal: the sweep finds the work. Tasks are
published by name, so the web side never imports the worker side.

Sign-ups in a burst share one hint instead of a task each: the ``hint`` row's
flag says one is on its way.
"""

import logging

from flask import current_app
from kombu.exceptions import OperationalError
from sqlalchemy import select, update

from newsletter.core import task_names
from newsletter.core.models import utcnow
from newsletter.core.writes import rows_changed
from newsletter.extensions import db
from newsletter.sending.models import Hint

log = logging.getLogger(__name__)

EMAIL_HINT = "email"

_HINT_PENDING = select(Hint.pending).where(Hint.name == EMAIL_HINT).with_for_update(read=True)


def publish(task_name: str, *args: object) -> None:
    current_app.extensions["celery"].send_task(task_name, args)


def commit_owing_jobs() -> bool:
    """Commit a transaction that wrote email jobs; True when no hint may be on its
    way, so the caller must raise one (``hint_email_jobs``).

    The flag is read inside the transaction, under a share lock on PostgreSQL and
    under the write lock the transaction already holds on SQLite, so a worker
    cannot clear it until the jobs are committed. A worker clears the flag before
    it looks for due jobs. So either the flag is up, and the worker that clears it
    will find these jobs, or it is down and the caller raises it.
    """
    # The jobs must be written before the flag is read, and the connection does not
    # flush the session by itself; it skips the ORM's costlier path for a plain read.
    db.session.flush()
    pending = db.session.connection().execute(_HINT_PENDING).scalar()
    db.session.commit()
    return pending is not True


def hint_email_jobs() -> None:
    """Ask a worker to send the due email jobs, unless a hint is on its way already."""
    if not _raise_flag():
        return
    try:
        publish(task_names.SEND_EMAIL_JOBS)
    except (OperationalError, OSError) as error:
        clear_flag()
        log.warning("broker unreachable, email jobs wait for the sweep: %s", error)


def _raise_flag() -> bool:
    """Raise the flag: True when this caller raised it and must publish the hint.
    With no flag row (the migration makes it; emptying the table loses it), every
    caller publishes."""
    raised = rows_changed(
        update(Hint)
        .where(Hint.name == EMAIL_HINT, Hint.pending.is_(False))
        .values(pending=True, set_at=utcnow())
    )
    db.session.commit()
    return raised == 1 or db.session.get(Hint, EMAIL_HINT) is None


def clear_flag() -> None:
    """A worker took the hint, or it could not be published: the next transaction
    that owes jobs raises it again."""
    db.session.execute(update(Hint).where(Hint.name == EMAIL_HINT).values(pending=False))
    db.session.commit()


def hint_webhooks() -> None:
    """Ask a worker to post the due outgoing webhooks; the sweep does if the broker is down."""
    try:
        publish(task_names.DELIVER_WEBHOOKS)
    except (OperationalError, OSError) as error:
        log.warning("broker unreachable, outgoing webhooks wait for the sweep: %s", error)


def start_digest_send(digest_id: int) -> None:
    """Ask a worker to start sending a digest; the sweep starts it if the broker is down."""
    try:
        publish(task_names.START_DIGEST, digest_id)
    except (OperationalError, OSError) as error:
        log.warning("broker unreachable, digest %s waits for the sweep: %s", digest_id, error)


def send_test_copy(digest_id: int, address: str) -> bool:
    """Ask a worker to send one test copy; False when the broker cannot be reached
    (a test copy is not worth keeping for later: the admin is waiting for it)."""
    try:
        publish(task_names.SEND_TEST_DIGEST, digest_id, address)
    except (OperationalError, OSError) as error:
        log.warning("broker unreachable, no test copy of digest %s: %s", digest_id, error)
        return False
    return True


def send_invitation(invitation_id: int) -> None:
    """Ask a worker to email an admin's invitation; the sweep sends it if the broker is down."""
    try:
        publish(task_names.SEND_ADMIN_INVITATION, invitation_id)
    except (OperationalError, OSError) as error:
        log.warning(
            "broker unreachable, invitation %s waits for the sweep: %s", invitation_id, error
        )
