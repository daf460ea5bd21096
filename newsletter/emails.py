"""Transactional emails: what each one says, and sending each job once, in batches."""

import time
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import formataddr, formatdate, make_msgid
from functools import cached_property

from flask import current_app, render_template
from sqlalchemy import exists, select, update

from newsletter import leases, mailer, rawmail, settings, tokens
from newsletter.digest_mail import DigestMessages, sender_domain
from newsletter.extensions import db
from newsletter.mailer import ConnectionFailure, PermanentFailure, TemporaryFailure, smtp_address
from newsletter.models import (
    EmailJob,
    EmailKind,
    Hint,
    JobStatus,
    Post,
    Subscriber,
    SubscriberStatus,
    utcnow,
)

WELCOME_POSTS = 5
EMAIL_HINT = "email"
# Jobs a worker takes at once, over one SMTP connection; and how long one task
# goes on taking batches before it hands the rest to a new task.
BATCH_SIZE = 50
TASK_SECONDS = 3.0
# Jobs this much past due with no live lease have lost their hint.
SWEEP_GRACE = timedelta(seconds=10)


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


class BatchEmails:
    """Builds the emails of one batch. The welcome email, a hello and the latest
    posts, is rendered once for the batch: rendering costs milliseconds, a copy
    microseconds."""

    def build(self, kind, reader):
        if kind == EmailKind.CONFIRMATION:
            return build_confirmation(reader)
        raw = self.welcome.build(reader.id, reader.email, reader.name, reader.token_nonce)
        return Email(reader.email, raw, self.welcome.message_id(reader.id))

    @cached_property
    def welcome(self):
        chosen = settings.current()
        latest = db.session.scalars(
            select(Post).order_by(Post.published_at.desc()).limit(WELCOME_POSTS)
        ).all()
        return DigestMessages(WelcomeIssue(chosen.welcome_subject, chosen.welcome_intro, latest))


WANTED_STATUS = {
    EmailKind.CONFIRMATION: SubscriberStatus.PENDING,
    EmailKind.WELCOME: SubscriberStatus.CONFIRMED,
}


# What a job needs of its subscriber, read with the job in one query.
Recipient = namedtuple("Recipient", "id email name token_nonce status")
ClaimedJob = namedtuple("ClaimedJob", "id kind attempts subscriber")


@dataclass
class Report:
    """What one run of ``send_due_jobs`` did."""

    sent: int = 0
    skipped: int = 0
    failed: int = 0
    # Jobs put back for a retry; one run does not take them again.
    put_back: set = field(default_factory=set)
    # Stopped for time with jobs possibly left: another run should follow at once.
    more: bool = False
    # Seconds until every job this run put back for a retry is due again.
    retry_in: float | None = None

    @property
    def retried(self):
        return len(self.put_back)


def raise_hint():
    """Called once a transaction that owes email jobs has committed: True when no
    hint is on its way, so the caller must publish one.

    Sign-ups in a burst share one hint instead of a task each. No job is
    stranded: this looks at the flag after the job is committed, and a worker
    clears the flag before it looks for due jobs. So either the flag is down and
    this caller publishes, or a worker has yet to clear it and will find the job.
    """
    pending = db.session.scalar(select(Hint.pending).where(Hint.name == EMAIL_HINT))
    if pending is not False:
        # Only read: most sign-ups of a burst stop here without writing. With no
        # flag row (the migration makes it; emptying the table loses it), every
        # transaction publishes.
        db.session.rollback()
        return pending is None
    raised = db.session.execute(
        update(Hint)
        .where(Hint.name == EMAIL_HINT, Hint.pending.is_(False))
        .values(pending=True, set_at=utcnow())
    ).rowcount
    db.session.commit()
    return raised == 1


def forget_hint():
    """The hint could not be published: let the next transaction try again."""
    db.session.execute(update(Hint).where(Hint.name == EMAIL_HINT).values(pending=False))
    db.session.commit()


def send_due_jobs(batch_size=BATCH_SIZE, seconds=TASK_SECONDS):
    """Send the email jobs that are due, a batch at a time over one SMTP connection,
    for about ``seconds``.

    Safe to run any number of times at once: a worker takes a lease on each batch
    with one conditional UPDATE, so only one sends each job, and each job is
    recorded as soon as the server accepted it.
    """
    forget_hint()
    deadline = time.monotonic() + seconds
    report = Report()
    while jobs := _claim_due(batch_size, report.put_back):
        if not _send_batch(jobs, report):
            break  # the server is unreachable: the follow-up after retry_in tries again
        if time.monotonic() >= deadline:
            report.more = True
            break
    return report


def _claim_due(limit, skip):
    claimed = leases.take_due(
        EmailJob,
        EmailJob.status == JobStatus.QUEUED,
        EmailJob.id.not_in(skip),
        order_by=EmailJob.due_at,
        limit=limit,
    )
    if not claimed:
        return []
    rows = db.session.execute(
        select(
            EmailJob.id,
            EmailJob.kind,
            EmailJob.attempts,
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.token_nonce,
            Subscriber.status,
        )
        .join(Subscriber, Subscriber.id == EmailJob.subscriber_id)
        .where(EmailJob.id.in_(claimed))
        .order_by(EmailJob.id)
    ).all()
    return [ClaimedJob(row[0], row[1], row[2], Recipient(*row[3:])) for row in rows]


def _send_batch(jobs, report):
    """Send the jobs over one connection; False if the server could not be reached."""
    done = 0
    batch = BatchEmails()
    try:
        with mailer.connection() as sender:
            for job in jobs:
                if job.subscriber.status != WANTED_STATUS[job.kind]:
                    _finish(job.id, JobStatus.SKIPPED)
                    report.skipped += 1
                else:
                    _send_one(sender, batch, job, report)
                done += 1
    except ConnectionFailure as error:
        for job in jobs[done:]:
            _retry_later(job, str(error), report)
        return False
    return True


def _send_one(sender, batch, job, report):
    try:
        email = batch.build(job.kind, job.subscriber)
        sender.send(email.to, email.raw)
    except ConnectionFailure:
        raise
    except TemporaryFailure as error:
        _retry_later(job, str(error), report)
    except PermanentFailure as error:
        _finish(job.id, JobStatus.FAILED, error=str(error))
        report.failed += 1
    else:
        _finish(job.id, JobStatus.SENT, message_id=email.message_id)
        report.sent += 1


def _finish(job_id, status, error=None, message_id=None):
    values = {"status": status, "finished_at": utcnow(), "lease_until": None}
    if error:
        values["last_error"] = error[:500]
    if message_id:
        values["message_id"] = message_id
    db.session.execute(update(EmailJob).where(EmailJob.id == job_id).values(**values))
    db.session.commit()


def _retry_later(job, error, report):
    if job.attempts >= current_app.config["SEND_MAX_ATTEMPTS"]:
        _finish(job.id, JobStatus.FAILED, error=error)
        report.failed += 1
        return
    delay = leases.retry_delay(job.attempts)
    db.session.execute(
        update(EmailJob)
        .where(EmailJob.id == job.id)
        .values(
            due_at=utcnow() + timedelta(seconds=delay), lease_until=None, last_error=error[:500]
        )
    )
    db.session.commit()
    report.put_back.add(job.id)
    report.retry_in = max(report.retry_in or 0, delay)


def any_lost_jobs():
    """Whether a queued job is past due and nobody holds it: its hint was lost."""
    now = utcnow()
    lost = exists().where(
        EmailJob.status == JobStatus.QUEUED,
        EmailJob.due_at <= now - SWEEP_GRACE,
        leases.unheld(EmailJob, now),
    )
    return db.session.scalar(select(lost))
