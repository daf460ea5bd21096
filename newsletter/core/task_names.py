"""The Celery tasks' names, written once. The workers register their tasks under them
(workers/tasks.py); beat's schedule (celery_app.py) and the app's hints
(sending/hints.py) publish by name, since the app never imports the workers."""

SEND_EMAIL_JOBS = "newsletter.send_email_jobs"
START_DIGEST = "newsletter.start_digest"
SEND_DIGEST_BATCH = "newsletter.send_digest_batch"
SEND_TEST_DIGEST = "newsletter.send_test_digest"
PROCESS_INBOUND = "newsletter.process_inbound"
DELIVER_WEBHOOKS = "newsletter.deliver_webhooks"
SEND_ADMIN_INVITATION = "newsletter.send_admin_invitation"
SWEEP = "newsletter.sweep"
RUN_PERIODIC_DIGEST = "newsletter.run_periodic_digest"
FOLD_OLD_DELIVERIES = "newsletter.fold_old_deliveries"
DROP_OLD_IPS = "newsletter.drop_old_ips"
DROP_OLD_AUDIT = "newsletter.drop_old_audit"
DROP_OLD_INBOUND = "newsletter.drop_old_inbound"
FOLD_ENGAGEMENT = "newsletter.fold_engagement"
IMPORT_FEED = "newsletter.import_feed"
