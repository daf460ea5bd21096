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
# Between batches that were not full, a run waits this long for more jobs to come;
# it ends after LINGER_SECONDS without any. An email waits at most GATHER_SECONDS.
GATHER_SECONDS = 0.02
LINGER_SECONDS = 0.1
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
    frame = _confirmation_frame()
    message_id = make_msgid(domain=frame.domain)
    headers = (
        frame.headers
        + (
            f"To: {formataddr((subscriber.name, smtp_address(subscriber.email)))}\r\n"
            f"Date: {formatdate(usegmt=True)}\r\n"
            f"Message-ID: {message_id}\r\n"
        ).encode()
    )
    raw = frame.alternative.message(
        headers,
        rawmail.qp(render_template("email/confirmation.txt", **context)),
        rawmail.qp(render_template("email/confirmation.html", **context)),
    )
    return Email(subscriber.email, raw, message_id)


ConfirmationFrame = namedtuple("ConfirmationFrame", "headers alternative domain")


def _confirmation_frame():
    """What every confirmation shares (From, Subject, the MIME skeleton, the
    Message-ID domain), made once per app: the stdlib's header encoding is slow."""
    key = "newsletter.confirmation_frame"
    if key not in current_app.extensions:
        config = current_app.config
        current_app.extensions[key] = ConfirmationFrame(
            rawmail.fixed_headers(
                From=config["MAIL_DEFAULT_SENDER"],
                Subject=f"Confirm your subscription to {config['SITE_NAME']}",
            ),
            rawmail.Alternative(),
            sender_domain(),
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
    # Jobs this run has dealt with: sent, skipped, failed or put back.
    done: set = field(default_factory=set)
    # Stopped for time with jobs possibly left: another run should follow at once.
    more: bool = False
    # Seconds until every job this run put back for a retry is due again.
    retry_in: float | None = None

    @property
    def retried(self):
        return len(self.put_back)


_HINT_PENDING = select(Hint.pending).where(Hint.name == EMAIL_HINT).with_for_update(read=True)


def commit_owing_jobs():
    """Commit a transaction that wrote email jobs; True when no hint may be on its
    way, so the caller must raise one (queue.hint_email_jobs).

    Sign-ups in a burst share one hint instead of a task each, and no job is
    stranded. The flag is read inside the transaction, under a share lock on
    PostgreSQL and under the write lock the transaction already holds on SQLite, so
    a worker cannot clear it until the jobs are committed. A worker clears the flag
    before it looks for due jobs. So either the flag is up, and the worker that
    clears it will find these jobs, or it is down and the caller raises it.
    """
    # The jobs must be written before the flag is read, and the connection does not
    # flush the session by itself; it skips the ORM's costlier path for a plain read.
    db.session.flush()
    pending = db.session.connection().execute(_HINT_PENDING).scalar()
    db.session.commit()
    return pending is not True


def raise_hint():
    """Raise the flag, when commit_owing_jobs found it down or a run stopped with work
    left: True when this caller raised it and must publish the hint. With no flag row
    (the migration makes it; emptying the table loses it), every caller publishes."""
    raised = db.session.execute(
        update(Hint)
        .where(Hint.name == EMAIL_HINT, Hint.pending.is_(False))
        .values(pending=True, set_at=utcnow())
    ).rowcount
    db.session.commit()
    return raised == 1 or db.session.get(Hint, EMAIL_HINT) is None


def forget_hint():
    """The hint could not be published: let the next transaction try again."""
    db.session.execute(update(Hint).where(Hint.name == EMAIL_HINT).values(pending=False))
    db.session.commit()


def send_due_jobs(batch_size=BATCH_SIZE, seconds=TASK_SECONDS):
    """Send the email jobs that are due, a batch at a time over one SMTP connection,
    for about ``seconds``.

    Safe to run any number of times at once: a worker takes a lease on each batch
    with one conditional UPDATE, so only one sends each job, and sent jobs are
    recorded EMAIL_RECORD_EVERY at a time. While sign-ups keep coming, the run
    waits GATHER_SECONDS between batches that were not full, so that each claim,
    record and commit serves many emails instead of one or two; it ends once
    nothing has come for LINGER_SECONDS.
    """
    forget_hint()
    deadline = time.monotonic() + seconds
    report = Report()
    jobs = _claim_due(batch_size, report.put_back)
    if not jobs:
        return report
    batch = BatchEmails()
    try:
        with mailer.connection() as sender:
            while jobs:
                _send_batch(sender, batch, jobs, report)
                if time.monotonic() >= deadline:
                    report.more = True
                    break
                jobs = _next_batch(batch_size, report, full=len(jobs) == batch_size)
    except ConnectionFailure as error:
        # The server is unreachable: the follow-up after retry_in tries again.
        results = Results()
        for job in jobs:
            if job.id not in report.done:
                _retry_later(job, str(error), report, results)
        results.record()
    return report


def _next_batch(batch_size, report, full):
    """The next batch of due jobs, waiting for it a little while sign-ups come in."""
    if not full:
        time.sleep(GATHER_SECONDS)
    quiet_until = time.monotonic() + LINGER_SECONDS
    while not (jobs := _claim_due(batch_size, report.put_back)):
        if time.monotonic() >= quiet_until:
            break
        time.sleep(GATHER_SECONDS)
    return jobs


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


def _send_batch(sender, batch, jobs, report):
    """Send the jobs; ConnectionFailure leaves the ones not done in ``report.done``."""
    results = Results()
    try:
        for job in jobs:
            if job.subscriber.status != WANTED_STATUS[job.kind]:
                results.add(job.id, JobStatus.SKIPPED)
                report.skipped += 1
            else:
                _send_one(sender, batch, job, report, results)
            report.done.add(job.id)
    finally:
        results.record()


def _send_one(sender, batch, job, report, results):
    try:
        email = batch.build(job.kind, job.subscriber)
        sender.send(email.to, email.raw)
    except ConnectionFailure:
        raise
    except TemporaryFailure as error:
        _retry_later(job, str(error), report, results)
    except PermanentFailure as error:
        results.add(job.id, JobStatus.FAILED, error=str(error))
        report.failed += 1
    else:
        results.add(job.id, JobStatus.SENT, message_id=email.message_id)
        report.sent += 1


class Results:
    """Finished jobs, recorded EMAIL_RECORD_EVERY at a time in one statement.

    A worker killed mid-batch sends at most that many again. Recording each on
    its own would take SQLite's one write lock once per email, which sign-ups
    then queue behind.
    """

    def __init__(self):
        self.every = current_app.config["EMAIL_RECORD_EVERY"]
        self.rows = []

    def add(self, job_id, status, error=None, message_id=None):
        row = {"id": job_id, "status": status, "finished_at": utcnow(), "lease_until": None}
        if error:
            row["last_error"] = error[:500]
        if message_id:
            row["message_id"] = message_id
        self.rows.append(row)
        if len(self.rows) >= self.every:
            self.record()

    def record(self):
        if self.rows:
            db.session.execute(update(EmailJob), self.rows)
            db.session.commit()
            self.rows = []


def _retry_later(job, error, report, results):
    if job.attempts >= current_app.config["SEND_MAX_ATTEMPTS"]:
        results.add(job.id, JobStatus.FAILED, error=error)
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
