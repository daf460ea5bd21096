"""Celery tasks: thin, idempotent wrappers that take ids and call the services."""

from celery import shared_task
from flask import current_app

from newsletter import emails, posts


@shared_task(name="newsletter.send_email_job")
def send_email_job(job_id):
    outcome = emails.send_email_job(job_id)
    if outcome.retry_in is not None:
        send_email_job.apply_async((job_id,), countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="newsletter.requeue_lost_email_jobs")
def requeue_lost_email_jobs():
    job_ids = emails.lost_job_ids()
    for job_id in job_ids:
        send_email_job.delay(job_id)
    return len(job_ids)


@shared_task(name="newsletter.import_feed")
def import_feed():
    feed_url = current_app.config["FEED_URL"]
    if not feed_url:
        return None
    report = posts.import_feed(feed_url)
    return {"added": report.added, "updated": report.updated}
