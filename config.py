"""Configuration classes, read from the environment (every name is in the README).

Values left as ``None`` get their embedded default in ``create_app``, because
those defaults live in the instance folder, which only the app knows.
"""

import os
from typing import ClassVar


def _env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL")
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL")
    # Lets several deployments share one broker, each on a queue of its own.
    CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE")

    MAIL_SERVER = os.environ.get("MAIL_SERVER")
    MAIL_PORT = _env_int("MAIL_PORT", 25)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_USE_TLS = _env_bool("MAIL_USE_TLS")
    MAIL_USE_SSL = _env_bool("MAIL_USE_SSL")
    # The relay's certificate is always checked, against the system's CAs unless this
    # names a PEM file of the CAs to trust instead (a private relay's own CA).
    MAIL_TLS_CA_FILE = os.environ.get("MAIL_TLS_CA_FILE")
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "Newsletter <newsletter@localhost>")
    # Flask-Mail suppresses sending whenever TESTING is on; we never want that,
    # because the tests talk to a real SMTP server.
    MAIL_SUPPRESS_SEND = False
    # Where mail goes when no MAIL_SERVER is set; defaults to instance/outbox.
    OUTBOX_DIR = os.environ.get("OUTBOX_DIR")

    SITE_NAME = os.environ.get("SITE_NAME", "The Newsletter")
    # The language of readers whose browser asked for none of ours (i18n.LANGUAGES),
    # and of their emails.
    DEFAULT_LOCALE = os.environ.get("DEFAULT_LOCALE", "en")
    BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    CONFIRM_MAX_AGE = _env_int("CONFIRM_MAX_AGE", 48 * 3600)
    # Seconds a preferences link works; every digest carries a fresh one. Unsubscribe
    # links never expire.
    PREFERENCES_MAX_AGE = _env_int("PREFERENCES_MAX_AGE", 90 * 24 * 3600)
    # Seconds an emailed invitation to become an admin works (once): short, as whoever
    # holds the link becomes an admin.
    ADMIN_INVITATION_MAX_AGE = _env_int("ADMIN_INVITATION_MAX_AGE", 72 * 3600)
    # Days after which the IPs of sign-ups, confirmations and consent events are
    # dropped (0: kept).
    IP_RETENTION_DAYS = _env_int("IP_RETENTION_DAYS", 90)
    # Days the audit log of admins', API keys' and commands' actions is kept (0: kept).
    AUDIT_RETENTION_DAYS = _env_int("AUDIT_RETENTION_DAYS", 365)
    # A pending address gets at most one confirmation email per this many seconds,
    # so a form cannot be used to flood somebody's inbox; a reader gets at most one
    # "link to my data" email per this many seconds, for the same reason.
    CONFIRM_RESEND_INTERVAL = _env_int("CONFIRM_RESEND_INTERVAL", 60)
    # And at most this many in 24 hours, whatever the number of sign-ups or IPs (and
    # as many data-link emails, counted apart).
    CONFIRM_MAX_PER_DAY = _env_int("CONFIRM_MAX_PER_DAY", 3)
    # Wrong confirmation codes allowed per confirmation email.
    CONFIRM_CODE_ATTEMPTS = _env_int("CONFIRM_CODE_ATTEMPTS", 5)
    FEED_URL = os.environ.get("FEED_URL")
    # How often beat pulls FEED_URL, in seconds.
    FEED_POLL_SECONDS = _env_int("FEED_POLL_SECONDS", 900)

    # Seconds a worker may hold an email job before another may take it over.
    SEND_LEASE_SECONDS = _env_int("SEND_LEASE_SECONDS", 120)
    # Attempts at any one email before it fails: each claim of its row counts one,
    # so a message that keeps failing (or killing its worker) is not tried forever.
    SEND_MAX_ATTEMPTS = _env_int("SEND_MAX_ATTEMPTS", 8)
    # First wait after a transient failure; it doubles with each attempt (with jitter).
    SEND_RETRY_BASE_SECONDS = _env_int("SEND_RETRY_BASE_SECONDS", 30)
    # While no session with the relay opens (down, its certificate or login refused)
    # the mail waits, its attempts untouched, and tries again after the same backoff,
    # counted in failed openings, but never more than this many seconds apart: an
    # outage may last hours, and the mail should follow soon after it ends.
    SEND_RELAY_WAIT_MAX_SECONDS = _env_int("SEND_RELAY_WAIT_MAX_SECONDS", 900)
    # A digest goes out in batches of this many, each over one SMTP connection;
    # this many batches are in flight at once (spread over all workers).
    DIGEST_BATCH_SIZE = _env_int("DIGEST_BATCH_SIZE", 200)
    DIGEST_PARALLEL_BATCHES = _env_int("DIGEST_PARALLEL_BATCHES", 4)
    # A batch task goes on with the next batch for this many seconds before it hands
    # the rest to a new task (so pausing or stopping a worker waits at most this long).
    DIGEST_TASK_SECONDS = _env_int("DIGEST_TASK_SECONDS", 3)
    # Delivery rows of digests finished this many days ago are folded into totals on
    # the digest and deleted, so the table holds about this many days of digests.
    # 0 keeps them forever.
    DELIVERY_RETENTION_DAYS = _env_int("DELIVERY_RETENTION_DAYS", 90)
    # Permanent refusals in a row after which an address is marked bounced.
    BOUNCE_LIMIT = _env_int("BOUNCE_LIMIT", 3)
    # Days the inbound listener's messages are kept once processed (0: kept).
    INBOUND_RETENTION_DAYS = _env_int("INBOUND_RETENTION_DAYS", 30)
    # What the inbound listener takes from one client address per minute: bounces come
    # a few at a time, a flood does not; the refusal is temporary, so a real MTA waits.
    INBOUND_CONNECTIONS_PER_MINUTE = _env_int("INBOUND_CONNECTIONS_PER_MINUTE", 60)
    INBOUND_MESSAGES_PER_MINUTE = _env_int("INBOUND_MESSAGES_PER_MINUTE", 120)
    # Soft bounces reported (mailbox full…) within BOUNCE_SOFT_DAYS after which an
    # address is marked bounced.
    BOUNCE_SOFT_LIMIT = _env_int("BOUNCE_SOFT_LIMIT", 3)
    BOUNCE_SOFT_DAYS = _env_int("BOUNCE_SOFT_DAYS", 30)
    # DKIM signing of every email (off unless both are set); the domain defaults to
    # MAIL_DEFAULT_SENDER's.
    DKIM_SELECTOR = os.environ.get("DKIM_SELECTOR")
    DKIM_PRIVATE_KEY_PATH = os.environ.get("DKIM_PRIVATE_KEY_PATH")
    DKIM_DOMAIN = os.environ.get("DKIM_DOMAIN")
    # The return path: every email's envelope sender is a VERP form of it
    # (bounces+<token>@…) that names its reader and message. Unset: the sender's address.
    BOUNCE_ADDRESS = os.environ.get("BOUNCE_ADDRESS")
    # An address for mailto: unsubscribes, added to List-Unsubscribe when set.
    LIST_UNSUBSCRIBE_MAILTO = os.environ.get("LIST_UNSUBSCRIBE_MAILTO")
    # Providers' webhooks (/webhooks/…, provider_events/): each answers 404 until its
    # setting is set. Mailgun's webhook signing key; the SNS topics (ARNs, space- or
    # comma-separated) that SES publishes to, without which a message signed by SNS
    # could come from anybody's topic; the basic-auth user and password written into
    # Postmark's webhook URL; SendGrid's Signed Event Webhook public key (base64).
    MAILGUN_WEBHOOK_SIGNING_KEY = os.environ.get("MAILGUN_WEBHOOK_SIGNING_KEY")
    SES_WEBHOOK_TOPIC_ARN = os.environ.get("SES_WEBHOOK_TOPIC_ARN")
    POSTMARK_WEBHOOK_USER = os.environ.get("POSTMARK_WEBHOOK_USER")
    POSTMARK_WEBHOOK_PASSWORD = os.environ.get("POSTMARK_WEBHOOK_PASSWORD")
    SENDGRID_WEBHOOK_PUBLIC_KEY = os.environ.get("SENDGRID_WEBHOOK_PUBLIC_KEY")
    # Outgoing webhooks (outgoing.py): seconds an endpoint has to answer; attempts at one
    # event before it fails; the first wait after a failed attempt (it doubles each time).
    WEBHOOK_TIMEOUT_SECONDS = _env_int("WEBHOOK_TIMEOUT_SECONDS", 5)
    WEBHOOK_MAX_ATTEMPTS = _env_int("WEBHOOK_MAX_ATTEMPTS", 8)
    WEBHOOK_RETRY_BASE_SECONDS = _env_int("WEBHOOK_RETRY_BASE_SECONDS", 30)
    # Outgoing webhooks reach public addresses only, so that an API key cannot make the
    # worker probe the private network; these networks (comma-separated CIDRs, e.g.
    # "10.1.2.0/24, fd00::/64") admit internal receivers the operator trusts.
    WEBHOOK_ALLOWED_NETWORKS = os.environ.get("WEBHOOK_ALLOWED_NETWORKS", "")
    # Check addresses' domains in DNS at sign-up (off: no network in the request path).
    EMAIL_CHECK_DELIVERABILITY = _env_bool("EMAIL_CHECK_DELIVERABILITY")

    # Refuse addresses at the throwaway-mail domains of the disposable-email-domains
    # package, as if admins had blocked them.
    BLOCK_DISPOSABLE_DOMAINS = _env_bool("BLOCK_DISPOSABLE_DOMAINS")
    # altcha, turnstile or hcaptcha guards sign-ups (form and API); unset, none does.
    CAPTCHA_PROVIDER = (os.environ.get("CAPTCHA_PROVIDER") or "").strip().lower() or None
    # Turnstile's or hCaptcha's keys, and the siteverify URL (the provider's by default).
    CAPTCHA_SITE_KEY = os.environ.get("CAPTCHA_SITE_KEY")
    CAPTCHA_SECRET_KEY = os.environ.get("CAPTCHA_SECRET_KEY")
    CAPTCHA_VERIFY_URL = os.environ.get("CAPTCHA_VERIFY_URL")
    # Signs ALTCHA challenges; by default a key derived from SECRET_KEY.
    ALTCHA_HMAC_KEY = os.environ.get("ALTCHA_HMAC_KEY")
    # PBKDF2 iterations per try of an ALTCHA proof of work (a browser makes about 256 tries).
    ALTCHA_COST = _env_int("ALTCHA_COST", 5000)

    # Rate limits per client address (Flask-Limiter syntax). Their counters are shared
    # by every web process: in the Redis broker when there is one, else in a SQLite
    # file in the instance folder (one host); memory:// would count per process.
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI")
    SIGNUP_RATE_LIMIT = os.environ.get("SIGNUP_RATE_LIMIT", "20/minute;200/hour")
    # Sign-ups for any one address, from all clients together.
    SIGNUP_ADDRESS_RATE_LIMIT = os.environ.get("SIGNUP_ADDRESS_RATE_LIMIT", "10/hour")
    # Sites that may show the sign-up box of /embed in a frame (space-separated origins,
    # e.g. "https://news.example https://*.news.example"); every other page, and /embed
    # for every other site, refuses to be framed.
    EMBED_ORIGINS = os.environ.get("EMBED_ORIGINS", "")
    # Behind this many reverse proxies (each adding X-Forwarded-For/-Proto/-Host), the
    # client's address is the one the nearest proxy saw; 0: no proxy, the headers are
    # ignored (anyone could send them).
    TRUSTED_PROXIES = _env_int("TRUSTED_PROXIES", 0)
    # Bytes a request body may have; a CSV upload to the admin may have more.
    MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 1024 * 1024)
    UPLOAD_MAX_CONTENT_LENGTH = _env_int("UPLOAD_MAX_CONTENT_LENGTH", 64 * 1024 * 1024)
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "5/minute;30/hour")
    # Failed logins (passwords and codes) to one admin account from one client address.
    # Not from all clients together: that would let anyone keep the owner out.
    LOGIN_ACCOUNT_RATE_LIMIT = os.environ.get("LOGIN_ACCOUNT_RATE_LIMIT", "10/hour")
    # Every this many failed logins to one account within an hour, from anywhere, log a
    # WARNING and an audit entry (admins.login_failures): an attack spread over many
    # addresses is seen, and the right password still works. 0: no warning.
    LOGIN_ACCOUNT_ALERT = _env_int("LOGIN_ACCOUNT_ALERT", 10)

    SQLALCHEMY_ENGINE_OPTIONS: ClassVar = {"pool_pre_ping": True}


class TestConfig(Config):
    """Defaults for the test suite; fixtures fill in database, broker and SMTP."""

    TESTING = True
    SECRET_KEY = "test-secret"
    MAIL_SERVER = None
    CONFIRM_RESEND_INTERVAL = 0
    SEND_LEASE_SECONDS = 30
    SEND_RETRY_BASE_SECONDS = 1
    EMAIL_CHECK_DELIVERABILITY = False
    RATELIMIT_ENABLED = False
    # Each app its own counters: a test's limits never meet another test's hits.
    RATELIMIT_STORAGE_URI = "memory://"
