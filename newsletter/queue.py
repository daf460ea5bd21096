"""Hints to the workers. The database already records what must be sent, so a
hint that cannot be published is logged, not fatal: the sweep finds the work."""

import logging

from kombu.exceptions import OperationalError

from newsletter import emails
from workers import tasks

log = logging.getLogger(__name__)


def hint_email_jobs():
    """Ask a worker to send the due email jobs, unless a hint is on its way already.
    Call it when emails.commit_owing_jobs says so."""
    if not emails.raise_hint():
        return
    try:
        tasks.send_email_jobs.delay()
    except (OperationalError, OSError) as error:
        emails.forget_hint()
        log.warning("broker unreachable, email jobs wait for the sweep: %s", error)


def start_digest_send(digest_id):
    """Ask a worker to start sending a digest; the sweep starts it if the broker is down."""
    try:
        tasks.start_digest.delay(digest_id)
    except (OperationalError, OSError) as error:
        log.warning("broker unreachable, digest %s waits for the sweep: %s", digest_id, error)


def send_test_copy(digest_id, address):
    tasks.send_test_digest.delay(digest_id, address)
