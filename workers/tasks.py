"""Celery tasks: thin, idempotent wrappers that take ids and call the services.

The app publishes them by name (newsletter.sending.hints), from newsletter.core.task_names."""

from celery import shared_task
from flask import current_app

from newsletter.admins import accounts, audit
from newsletter.bounces import inbound
from newsletter.celery_app import SWEEP_INTERVAL_SECONDS
from newsletter.content import digest_deliveries, digests, posts
from newsletter.core import task_names
from newsletter.engagement import figures
from newsletter.sending import email_jobs, hints
from newsletter.subscribers import privacy
from newsletter.webhooks import outgoing


@shared_task(name=task_names.SEND_EMAIL_JOBS)
def send_email_jobs():
    """Send every email job that is due; another task follows while work is left,
    unless a sign-up has sent one already (see hints.commit_owing_jobs)."""
    report = email_jobs.send_due_jobs()
    if report.more:
        hints.hint_email_jobs()
    elif report.retry_in is not None:
        send_email_jobs.apply_async(countdown=report.retry_in)
    return report.summary()


@shared_task(name=task_names.SWEEP)
def sweep():
    """The sweep: re-publish work whose hint was lost (email jobs, stalled digests,
    inbound messages, outgoing webhooks and their retries), and start scheduled digests."""
    lost = email_jobs.any_lost_jobs()
    if lost:
        send_email_jobs.delay()
    for digest_id in digests.due_scheduled_digest_ids():
        start_digest.delay(digest_id)
    for digest_id in digest_deliveries.stalled_digest_ids():
        send_digest_batch.delay(digest_id)
    for inbound_id in inbound.unprocessed_ids():
        process_inbound.delay(inbound_id)
    if outgoing.any_due():
        deliver_webhooks.delay()
    for invitation_id in accounts.unsent_invitation_ids():
        send_admin_invitation.delay(invitation_id)
    return lost


@shared_task(name=task_names.START_DIGEST)
def start_digest(digest_id):
    """Owe the digest to a first chunk of subscribers, set batches sending it, and write
    the rest of the copies while they do."""
    digests.start_sending(digest_id)
    for _ in range(current_app.config["DIGEST_PARALLEL_BATCHES"]):
        send_digest_batch.delay(digest_id)
    while digests.owe_more(digest_id):
        pass


@shared_task(name=task_names.SEND_DIGEST_BATCH)
def send_digest_batch(digest_id):
    """Send batches for a few seconds, then hand the rest on: another hint while work is left."""
    report = digest_deliveries.send_for(digest_id, current_app.config["DIGEST_TASK_SECONDS"])
    if report.more:
        send_digest_batch.delay(digest_id)
    elif report.retry_in is not None:
        send_digest_batch.apply_async((digest_id,), countdown=report.retry_in)
    return report.summary()


@shared_task(name=task_names.PROCESS_INBOUND)
def process_inbound(inbound_id):
    """Turn a message the inbound listener stored into feedback; a repeat does nothing."""
    return inbound.process(inbound_id)


@shared_task(name=task_names.DELIVER_WEBHOOKS)
def deliver_webhooks():
    """Post the due outgoing webhooks for a few seconds; another task follows while some
    are due, or when a retry is due before the next sweep would find it."""
    report = outgoing.deliver_due()
    if report.more:
        deliver_webhooks.delay()
    elif report.retry_in is not None and report.retry_in < SWEEP_INTERVAL_SECONDS:
        deliver_webhooks.apply_async(countdown=report.retry_in)
    return report.summary()


@shared_task(name=task_names.DROP_OLD_IPS)
def drop_old_ips():
    """Forget IPs older than IP_RETENTION_DAYS."""
    return privacy.drop_old_ips()


@shared_task(name=task_names.DROP_OLD_AUDIT)
def drop_old_audit():
    """Forget audit entries older than AUDIT_RETENTION_DAYS, and their IPs sooner."""
    return audit.drop_old()


@shared_task(name=task_names.DROP_OLD_INBOUND)
def drop_old_inbound():
    """Forget inbound mail older than INBOUND_RETENTION_DAYS."""
    return inbound.drop_old()


@shared_task(name=task_names.FOLD_OLD_DELIVERIES)
def fold_old_deliveries():
    """Keep the delivery table bounded: old digests keep their totals, not their rows."""
    return digests.fold_old_deliveries()


@shared_task(name=task_names.FOLD_ENGAGEMENT)
def fold_engagement():
    """Fold old opens and clicks into their digests' totals (TRACKING_RETENTION_DAYS)."""
    return figures.fold_old_events()


@shared_task(name=task_names.IMPORT_FEED)
def import_feed():
    feed_url = current_app.config["FEED_URL"]
    if not feed_url:
        return None
    report = posts.import_feed(feed_url)
    return {"added": report.added, "updated": report.updated}


@shared_task(name=task_names.SEND_TEST_DIGEST)
def send_test_digest(digest_id, address):
    digests.send_test(digest_id, address)


@shared_task(name=task_names.SEND_ADMIN_INVITATION)
def send_admin_invitation(invitation_id):
    """Email an admin's invitation its link, unless it went out already."""
    return accounts.send_invitation(invitation_id)


@shared_task(name=task_names.RUN_PERIODIC_DIGEST)
def run_periodic_digest():
    """Make the digests whose schedule is due and start them (the sweep would too)."""
    digest_ids = digests.run_periodic()
    for digest_id in digest_ids:
        start_digest.delay(digest_id)
    return digest_ids
