"""Configuration classes, read from the environment.

Every setting read from the environment has its why-comment above it: the docs'
configuration page is built from these comments (scripts/config_doc.py), so keep one
above each setting, or one above a group of settings with no blank line between.

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
    # Signs sessions and every token, and seals the TOTP and webhook secrets in the
    # database; a comma-separated list rotates keys (the first signs and seals, all
    # verify and open). Unset: generated once and kept in the instance folder.
    SECRET_KEY = os.environ.get("SECRET_KEY")
    # SQLAlchemy URL (`sqlite:///…`, `postgresql+psycopg://…`).
    # Unset: a SQLite file in the instance folder (`instance/newsletter.sqlite`, WAL mode).
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL")
    # The Celery broker (`redis://…`, `amqp://…`).
    # Unset: the embedded SQLite broker in the instance folder (`instance/broker.sqlite`).
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL")
    # The queue name: lets several deployments share one broker, each on a queue of its
    # own. Unset: `celery`.
    CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE")

    # The SMTP relay (Flask-Mail's names): server, port, login; `MAIL_USE_TLS` is
    # STARTTLS, `MAIL_USE_SSL` TLS from the first byte (port 465). The password goes
    # only over TLS, or to a relay on this machine (`localhost`, 127.0.0.0/8, `::1`):
    # see "The relay's certificate". Unset: mail goes to the local outbox.
    MAIL_SERVER = os.environ.get("MAIL_SERVER")
    MAIL_PORT = _env_int("MAIL_PORT", 25)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_USE_TLS = _env_bool("MAIL_USE_TLS")
    MAIL_USE_SSL = _env_bool("MAIL_USE_SSL")
    # The relay's certificate is always checked, against the system's CAs unless this
    # names a PEM file of the CAs that sign it, trusted instead (a private relay's own
    # CA). Unset: the system's CAs.
    MAIL_TLS_CA_FILE = os.environ.get("MAIL_TLS_CA_FILE")
    # The From address; its domain also ends every Message-ID.
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "Newsletter <newsletter@localhost>")
    # Flask-Mail suppresses sending whenever TESTING is on; we never want that,
    # because the tests talk to a real SMTP server.
    MAIL_SUPPRESS_SEND = False
    # Moves the outbox, where mail goes when no MAIL_SERVER is set (a Maildir, readable
    # at /outbox/ from this machine). Unset: `instance/outbox`.
    OUTBOX_DIR = os.environ.get("OUTBOX_DIR")

    # The newsletter's name in pages and emails.
    SITE_NAME = os.environ.get("SITE_NAME", "The Newsletter")
    # The language (`en` or `de`, i18n.LANGUAGES) of subscribers whose browser asked for none
    # of ours, and of their emails (see "Languages"); any other value stops the app at
    # start.
    DEFAULT_LOCALE = os.environ.get("DEFAULT_LOCALE", "en")
    # The public URL that links in emails start with; https there makes cookies
    # TLS-only and tells browsers to stay on https.
    BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    # Seconds a confirmation link stays valid (48 h).
    CONFIRM_MAX_AGE = _env_int("CONFIRM_MAX_AGE", 48 * 3600)
    # Seconds a preferences link works (90 days); every digest carries a fresh one.
    # Unsubscribe links never expire.
    PREFERENCES_MAX_AGE = _env_int("PREFERENCES_MAX_AGE", 90 * 24 * 3600)
    # Seconds an emailed invitation to become an admin works, once (72 h; see "Admins,
    # roles and the audit log"): short, as whoever holds the link becomes an admin.
    ADMIN_INVITATION_MAX_AGE = _env_int("ADMIN_INVITATION_MAX_AGE", 72 * 3600)
    # Days after which the IPs of sign-ups, confirmations and consent-log events are
    # dropped, hourly by the beat task `newsletter.drop_old_ips` (0: kept).
    IP_RETENTION_DAYS = _env_int("IP_RETENTION_DAYS", 90)
    # Days the audit log of admins', API keys' and commands' actions keeps an entry: the
    # beat task `newsletter.drop_old_audit` deletes older ones hourly; their IPs go after
    # IP_RETENTION_DAYS (0: kept).
    AUDIT_RETENTION_DAYS = _env_int("AUDIT_RETENTION_DAYS", 365)
    # A pending address gets at most one confirmation email per this many seconds,
    # so a form cannot be used to flood somebody's inbox; a subscriber gets at most one
    # "link to my data" email per this many seconds, for the same reason.
    CONFIRM_RESEND_INTERVAL = _env_int("CONFIRM_RESEND_INTERVAL", 60)
    # Confirmation emails one address may get in 24 hours, whatever the number of
    # sign-ups or IPs; the same cap, counted apart, for "link to my data" emails.
    CONFIRM_MAX_PER_DAY = _env_int("CONFIRM_MAX_PER_DAY", 3)
    # Tries at the 6-digit code per confirmation email, right or wrong.
    CONFIRM_CODE_ATTEMPTS = _env_int("CONFIRM_CODE_ATTEMPTS", 5)
    # The site's RSS/Atom feed that digests are built from.
    FEED_URL = os.environ.get("FEED_URL")
    # How often beat pulls FEED_URL, in seconds.
    FEED_POLL_SECONDS = _env_int("FEED_POLL_SECONDS", 900)

    # Seconds a worker may hold an email job before another may take it over.
    SEND_LEASE_SECONDS = _env_int("SEND_LEASE_SECONDS", 120)
    # Attempts at any one email before it fails, whatever stops it (a 4xx, a connection
    # dropped under it, a worker killed while holding it): each claim of its row counts
    # one, so a message that keeps failing (or killing its worker) is not tried forever.
    # A relay with which no session opens costs no attempt: the mail waits for it.
    SEND_MAX_ATTEMPTS = _env_int("SEND_MAX_ATTEMPTS", 8)
    # First wait after a temporary failure; it doubles with each attempt (with jitter).
    SEND_RETRY_BASE_SECONDS = _env_int("SEND_RETRY_BASE_SECONDS", 30)
    # While no session with the relay opens (down, its certificate or our login refused)
    # the mail waits, its attempts untouched, for as long as it takes, and tries again
    # after the same backoff, counted in failed openings, but never more than this many
    # seconds apart: an outage may last hours, and the mail should follow soon after it
    # ends.
    SEND_RELAY_WAIT_MAX_SECONDS = _env_int("SEND_RELAY_WAIT_MAX_SECONDS", 900)
    # A digest goes out in batches of this many deliveries, each taken at once by a
    # worker and sent over one SMTP connection.
    DIGEST_BATCH_SIZE = _env_int("DIGEST_BATCH_SIZE", 200)
    # Batches of one digest in flight at once, spread over all workers (set it to at
    # least the number of worker processes).
    DIGEST_PARALLEL_BATCHES = _env_int("DIGEST_PARALLEL_BATCHES", 4)
    # A batch task goes on with the next batch for this many seconds before it hands
    # the rest to a new task (so pausing or a worker's warm shutdown waits at most this
    # long).
    DIGEST_TASK_SECONDS = _env_int("DIGEST_TASK_SECONDS", 3)
    # Delivery rows of digests finished this many days ago are folded into totals on
    # the digest and deleted, so the table holds about this many days of digests.
    # 0 keeps them forever.
    DELIVERY_RETENTION_DAYS = _env_int("DELIVERY_RETENTION_DAYS", 90)
    # Engagement tracking (docs/engagement.md), for newsletters that turn it on. A
    # click on the invisible trap link, which no person can see or reach, marks every
    # request on that copy this many seconds either side of it as a machine's: link
    # scanners fetch every link of a message at once, the trap among them.
    TRACKING_TRAP_WINDOW_SECONDS = _env_int("TRACKING_TRAP_WINDOW_SECONDS", 10)
    # A request this soon after the copy was handed to the relay is a machine's: no
    # person reads a digest and clicks within seconds of its delivery, a gateway that
    # scans mail on arrival does.
    TRACKING_MIN_SECONDS = _env_int("TRACKING_MIN_SECONDS", 5)
    # Distinct links of one copy requested within this many seconds of each other are a
    # machine's: a person opens one article, a scanner all of them.
    TRACKING_BURST_SECONDS = _env_int("TRACKING_BURST_SECONDS", 2)
    # Days a subscriber's opens and clicks (per-subscriber tracking) are kept before they are
    # folded into each digest's totals and deleted by the beat task
    # `newsletter.fold_engagement`; anonymous ones go within the hour.
    TRACKING_RETENTION_DAYS = _env_int("TRACKING_RETENTION_DAYS", 90)
    # Refusals of the subscriber's address in a row (5xx to RCPT, or 5.1.x / 5.2.x) after
    # which it is marked bounced; a refusal of the message itself never counts.
    BOUNCE_LIMIT = _env_int("BOUNCE_LIMIT", 3)
    # Days the inbound listener's messages are kept once processed (their raw mail holds
    # other people's words); the beat task `newsletter.drop_old_inbound` deletes older
    # ones hourly (0: kept).
    INBOUND_RETENTION_DAYS = _env_int("INBOUND_RETENTION_DAYS", 30)
    # Connections, then messages, the inbound listener takes from one client address a
    # minute (more: `421 4.7.0`, try later): bounces come a few at a time, a flood does
    # not; the refusal is temporary, so a real MTA waits.
    INBOUND_CONNECTIONS_PER_MINUTE = _env_int("INBOUND_CONNECTIONS_PER_MINUTE", 60)
    INBOUND_MESSAGES_PER_MINUTE = _env_int("INBOUND_MESSAGES_PER_MINUTE", 120)
    # Soft bounces reported (mailbox full, a final 4.x.x) within BOUNCE_SOFT_DAYS after
    # which a subscriber is marked bounced; a delivery reported after them clears them.
    BOUNCE_SOFT_LIMIT = _env_int("BOUNCE_SOFT_LIMIT", 3)
    BOUNCE_SOFT_DAYS = _env_int("BOUNCE_SOFT_DAYS", 30)
    # DKIM-sign every email (off unless the first two are set); the domain defaults to
    # MAIL_DEFAULT_SENDER's. dkimpy signs in pure Python, about 8 ms a message with
    # RSA-2048: at high volume, sign at the relay instead.
    DKIM_SELECTOR = os.environ.get("DKIM_SELECTOR")
    DKIM_PRIVATE_KEY_PATH = os.environ.get("DKIM_PRIVATE_KEY_PATH")
    DKIM_DOMAIN = os.environ.get("DKIM_DOMAIN")
    # The return path: every email's envelope sender is a VERP form of it,
    # `bounces+<token>@domain`, whose token (47 characters of base32: the subscription's
    # random nonce, the digest or email it was, and a MAC under the secret key) names the
    # subscriber and the message, so a bounce or complaint that quotes it finds them (nobody
    # can make one for another subscriber); `flask inbound` takes mail for it (see "What
    # comes back"). Unset: the sender's address.
    BOUNCE_ADDRESS = os.environ.get("BOUNCE_ADDRESS")
    # Adds `<mailto:LOCAL+TOKEN@DOMAIN?subject=unsubscribe>` to List-Unsubscribe, the
    # token (45 characters of base32) signed for the subscriber and the newsletter;
    # `flask inbound` unsubscribes whom a genuine token names, as the one-click link
    # does, and refuses the bare address.
    LIST_UNSUBSCRIBE_MAILTO = os.environ.get("LIST_UNSUBSCRIBE_MAILTO")
    # Provider events (see "Provider webhooks"): each of /webhooks/mailgun, /ses,
    # /postmark and /sendgrid answers 404 until its setting is set. Mailgun's webhook
    # signing key; the ARNs of the Amazon SNS topics that SES publishes to (space- or
    # comma-separated), without which a message signed by SNS could come from anybody's
    # topic; the HTTP basic-auth user and password written into Postmark's webhook URL
    # (both or neither, or the app does not start); the public key of SendGrid's Signed
    # Event Webhook (base64, as SendGrid shows it; a value that is no ECDSA key stops the
    # app at start).
    MAILGUN_WEBHOOK_SIGNING_KEY = os.environ.get("MAILGUN_WEBHOOK_SIGNING_KEY")
    SES_WEBHOOK_TOPIC_ARN = os.environ.get("SES_WEBHOOK_TOPIC_ARN")
    POSTMARK_WEBHOOK_USER = os.environ.get("POSTMARK_WEBHOOK_USER")
    POSTMARK_WEBHOOK_PASSWORD = os.environ.get("POSTMARK_WEBHOOK_PASSWORD")
    SENDGRID_WEBHOOK_PUBLIC_KEY = os.environ.get("SENDGRID_WEBHOOK_PUBLIC_KEY")
    # Outgoing webhooks (see "Outgoing webhooks"): seconds an endpoint has to answer;
    # attempts at one event before it fails; the first wait after a failed attempt (it
    # doubles each time).
    WEBHOOK_TIMEOUT_SECONDS = _env_int("WEBHOOK_TIMEOUT_SECONDS", 5)
    WEBHOOK_MAX_ATTEMPTS = _env_int("WEBHOOK_MAX_ATTEMPTS", 8)
    WEBHOOK_RETRY_BASE_SECONDS = _env_int("WEBHOOK_RETRY_BASE_SECONDS", 30)
    # Outgoing webhooks reach public addresses only, so that an API key cannot make the
    # worker probe the private network: every loopback, private, link-local, CGNAT,
    # unique-local or otherwise internal address is refused. These networks
    # (comma-separated CIDRs, e.g. "10.1.2.0/24, fd00:1::/64") admit internal receivers
    # the operator trusts; a value that is no network stops the app at start. Unset:
    # public addresses only.
    WEBHOOK_ALLOWED_NETWORKS = os.environ.get("WEBHOOK_ALLOWED_NETWORKS", "")
    # Look the address's domain up in DNS at sign-up (off: no network in the request
    # path).
    EMAIL_CHECK_DELIVERABILITY = _env_bool("EMAIL_CHECK_DELIVERABILITY")

    # Also refuse addresses at the throwaway-mail domains of the disposable-email-domains
    # package (and the domains under them), as if admins had blocked them.
    BLOCK_DISPOSABLE_DOMAINS = _env_bool("BLOCK_DISPOSABLE_DOMAINS")
    # `altcha`, `turnstile` or `hcaptcha`: the check that a person signs up, on the form
    # and the API alike (see "Abuse and privacy"); any other value stops the app from
    # starting. Unset: no check.
    CAPTCHA_PROVIDER = (os.environ.get("CAPTCHA_PROVIDER") or "").strip().lower() or None
    # Turnstile's or hCaptcha's site key (shown in the form's widget) and secret key
    # (sent to its siteverify endpoint); both needed with those providers.
    CAPTCHA_SITE_KEY = os.environ.get("CAPTCHA_SITE_KEY")
    CAPTCHA_SECRET_KEY = os.environ.get("CAPTCHA_SECRET_KEY")
    # The siteverify endpoint to ask, e.g. a proxy's. Unset: the provider's
    # (`https://challenges.cloudflare.com/turnstile/v0/siteverify`,
    # `https://api.hcaptcha.com/siteverify`).
    CAPTCHA_VERIFY_URL = os.environ.get("CAPTCHA_VERIFY_URL")
    # Signs ALTCHA challenges; set the same on every web process. Unset: a key derived
    # from SECRET_KEY.
    ALTCHA_HMAC_KEY = os.environ.get("ALTCHA_HMAC_KEY")
    # PBKDF2 iterations per try of an ALTCHA proof of work (a browser makes about 256 tries).
    ALTCHA_COST = _env_int("ALTCHA_COST", 5000)

    # Where rate-limit counters (per client address, Flask-Limiter syntax) live, shared
    # by every web process: `redis://…` for several hosts; `memory://` counts per
    # process (only for a single process). Unset: the Redis broker when
    # CELERY_BROKER_URL is `redis://…`, else `instance/limits.sqlite` (every process on
    # one host).
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI")
    # Sign-ups (form and API together) per client address.
    SIGNUP_RATE_LIMIT = os.environ.get("SIGNUP_RATE_LIMIT", "20/minute;200/hour")
    # Sign-ups for any one address, from all clients together.
    SIGNUP_ADDRESS_RATE_LIMIT = os.environ.get("SIGNUP_ADDRESS_RATE_LIMIT", "10/hour")
    # Sites that may show the sign-up box of /embed in a frame (space-separated origins,
    # e.g. "https://news.example https://*.news.example"); every other page, and /embed
    # for every other site, refuses to be framed; a wrong one stops the app at start
    # with the reason. Unset: only this service's own pages may frame it.
    EMBED_ORIGINS = os.environ.get("EMBED_ORIGINS", "")
    # Behind this many reverse proxies (each adding X-Forwarded-For/-Proto/-Host), the
    # client's address is the one the nearest proxy saw, for rate limits and the consent
    # record; 0: no proxy, the headers are ignored (anyone could send them).
    TRUSTED_PROXIES = _env_int("TRUSTED_PROXIES", 0)
    # Bytes a request body may have (1 MiB); larger ones get 413 with the limit.
    MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 1024 * 1024)
    # Bytes a CSV upload to the admin's import may have (64 MiB).
    UPLOAD_MAX_CONTENT_LENGTH = _env_int("UPLOAD_MAX_CONTENT_LENGTH", 64 * 1024 * 1024)
    # Admin login attempts per client address.
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
