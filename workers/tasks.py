"""Celery tasks: thin, idempotent wrappers that take ids and call the services."""

from celery import shared_task
from flask import current_app

from newsletter import digests, emails, posts, queue


@shared_task(name="newsletter.send_email_jobs")
def send_email_jobs():
    """Send every email job that is due; another task follows while work is left,
    unless a sign-up has sent one already (see emails.commit_owing_jobs)."""
    report = emails.send_due_jobs()
    if report.more:
        queue.hint_email_jobs()
    elif report.retry_in is not None:
        send_email_jobs.apply_async(countdown=report.retry_in)
    return {"sent": report.sent, "failed": report.failed, "retried": report.retried}


@shared_task(name="newsletter.sweep")
def sweep():
    """The sweep: re-publish work whose hint was lost, and start scheduled digests."""
    lost = emails.any_lost_jobs()
    if lost:
        send_email_jobs.delay()
    for digest_id in digests.due_scheduled_digest_ids():
        start_digest.delay(digest_id)
    for digest_id in digests.stalled_digest_ids():
        send_digest_batch.delay(digest_id)
    return lost


@shared_task(name="newsletter.start_digest")
def start_digest(digest_id):
    digests.start_sending(digest_id)
    for _ in range(current_app.config["DIGEST_PARALLEL_BATCHES"]):
        send_digest_batch.delay(digest_id)


@shared_task(name="newsletter.send_digest_batch")
def send_digest_batch(digest_id):
    """Send batches for a few seconds, then hand the rest on: another hint while work is left."""
    result = digests.send_for(digest_id, current_app.config["DIGEST_TASK_SECONDS"])
    if result.more:
        send_digest_batch.delay(digest_id)
    elif result.retry_in is not None:
        send_digest_batch.apply_async((digest_id,), countdown=result.retry_in)
    return {"sent": result.sent, "failed": result.failed, "retried": result.retried}


@shared_task(name="newsletter.import_feed")
def import_feed():
    feed_url = current_app.config["FEED_URL"]
    if not feed_url:
        return None
    report = posts.import_feed(feed_url)
    return {"added": report.added, "updated": report.updated}


@shared_task(name="newsletter.send_test_digest")
def send_test_digest(digest_id, address):
    digests.send_test(digest_id, address)


@shared_task(name="newsletter.run_periodic_digest")
def run_periodic_digest():
    digest_id = digests.run_periodic()
    if digest_id is not None:
        start_digest.delay(digest_id)
    return digest_id
