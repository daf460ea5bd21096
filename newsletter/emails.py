"""Transactional emails: what each one says, and sending one job exactly once."""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import formataddr, formatdate, make_msgid

from flask import current_app, render_template
from sqlalchemy import or_, select, update

from newsletter import mailer, rawmail, settings, tokens
from newsletter.digest_mail import DigestMessages, sender_domain
from newsletter.extensions import db
from newsletter.mailer import PermanentFailure, TemporaryFailure, smtp_address
from newsletter.models import EmailJob, EmailKind, JobStatus, Post, SubscriberStatus, utcnow

WELCOME_POSTS = 5

# A hint for a retry may arrive a moment before its due time on another host's clock.
CLOCK_TOLERANCE = timedelta(seconds=1)
# Jobs this much past due with no live lease have lost their hint.
SWEEP_GRACE = timedelta(seconds=10)
MAX_RETRY_DELAY = 3600


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None = None


def link(path):
    return f"{current_app.config['BASE_URL']}{path}"


@dataclass(frozen=True)
class Email:
    """A message ready for SMTP."""

    to: str
    raw: bytes
    message_id: str


def build_confirmation(subscriber):
    """The email whose link confirms a pending subscription."""
    context = {
        "subscriber": subscriber,
        "site_name": current_app.config["SITE_NAME"],
        "confirm_url": link(f"/confirm/{tokens.make_token(tokens.CONFIRM, subscriber)}"),
        "max_age_hours": current_app.config["CONFIRM_MAX_AGE"] // 3600,
    }
    message_id = make_msgid(domain=sender_domain())
    headers = (
        _confirmation_headers()
        + (
            f"To: {formataddr((subscriber.name, smtp_address(subscriber.email)))}\r\n"
            f"Date: {formatdate(usegmt=True)}\r\n"
            f"Message-ID: {message_id}\r\n"
        ).encode()
    )
    raw = rawmail.Alternative().message(
        headers,
        rawmail.qp(render_template("email/confirmation.txt", **context)),
        rawmail.qp(render_template("email/confirmation.html", **context)),
    )
    return Email(subscriber.email, raw, message_id)


def _confirmation_headers():
    """From and Subject, made once per app: the stdlib's header encoding is slow."""
    key = "newsletter.confirmation_headers"
    if key not in current_app.extensions:
        config = current_app.config
        current_app.extensions[key] = rawmail.fixed_headers(
            From=config["MAIL_DEFAULT_SENDER"],
            Subject=f"Confirm your subscription to {config['SITE_NAME']}",
        )
    return current_app.extensions[key]


@dataclass
class WelcomeIssue:
    """The welcome email is a digest of the latest posts, made like every digest."""

    subject: str
    intro: str
    posts: list
    id: str = "welcome"
    created_at: datetime = field(default_factory=utcnow)


def build_welcome(subscriber):
    """The email a reader gets right after confirming: a hello and the latest posts."""
    chosen = settings.current()
    latest = db.session.scalars(
        select(Post).order_by(Post.published_at.desc()).limit(WELCOME_POSTS)
    ).all()
    issue = WelcomeIssue(chosen.welcome_subject, chosen.welcome_intro, latest)
    messages = DigestMessages(issue)
    raw = messages.build(subscriber.id, subscriber.email, subscriber.name, subscriber.token_nonce)
    return Email(subscriber.email, raw, messages.message_id(subscriber.id))


BUILDERS = {EmailKind.CONFIRMATION: build_confirmation, EmailKind.WELCOME: build_welcome}
WANTED_STATUS = {
    EmailKind.CONFIRMATION: SubscriberStatus.PENDING,
    EmailKind.WELCOME: SubscriberStatus.CONFIRMED,
}


def still_wanted(job):
    return job.subscriber.status == WANTED_STATUS[job.kind]


def send_email_job(job_id):
    """Send the email a job stands for, unless another worker holds it or it is done.

    Safe to call any number of times for the same job: only the caller that takes
    the lease sends, and a finished job is never sent again.
    """
    job = _claim(job_id)
    if job is None:
        return Outcome("not-claimed")
    if not still_wanted(job):
        return _finish(job, JobStatus.SKIPPED)
    try:
        email = BUILDERS[job.kind](job.subscriber)
        with mailer.connection() as sender:
            sender.send(email.to, email.raw)
    except TemporaryFailure as error:
        return _retry_later(job, str(error))
    except PermanentFailure as error:
        return _finish(job, JobStatus.FAILED, error=str(error))
    job.message_id = email.message_id
    return _finish(job, JobStatus.SENT)


def _claim(job_id):
    now = utcnow()
    lease = timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
    claimed = db.session.execute(
        update(EmailJob)
        .where(
            EmailJob.id == job_id,
            EmailJob.status == JobStatus.QUEUED,
            EmailJob.due_at <= now + CLOCK_TOLERANCE,
            or_(EmailJob.lease_until.is_(None), EmailJob.lease_until < now),
        )
        .values(lease_until=now + lease, attempts=EmailJob.attempts + 1)
    ).rowcount
    db.session.commit()
    return db.session.get(EmailJob, job_id) if claimed else None


def _finish(job, status, error=None):
    job.status = status
    job.finished_at = utcnow()
    job.lease_until = None
    if error:
        job.last_error = error[:500]
    db.session.commit()
    return Outcome(status)


def _retry_later(job, error):
    if job.attempts >= current_app.config["SEND_MAX_ATTEMPTS"]:
        return _finish(job, JobStatus.FAILED, error=error)
    delay = retry_delay(job.attempts)
    job.due_at = utcnow() + timedelta(seconds=delay)
    job.lease_until = None
    job.last_error = error[:500]
    db.session.commit()
    return Outcome("retry", retry_in=delay)


def retry_delay(attempts):
    """Exponential backoff with jitter, so a recovering server is not hit all at once."""
    base = current_app.config["SEND_RETRY_BASE_SECONDS"]
    return min(base * 2 ** (attempts - 1), MAX_RETRY_DELAY) * random.uniform(0.5, 1.5)


def lost_job_ids(limit=1000):
    """Queued jobs past due that nobody holds: their broker hint was lost."""
    now = utcnow()
    return db.session.scalars(
        select(EmailJob.id)
        .where(
            EmailJob.status == JobStatus.QUEUED,
            EmailJob.due_at <= now - SWEEP_GRACE,
            or_(EmailJob.lease_until.is_(None), EmailJob.lease_until < now),
        )
        .order_by(EmailJob.due_at)
        .limit(limit)
    ).all()
