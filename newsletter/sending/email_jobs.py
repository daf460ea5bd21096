"""Confirmation, welcome and data-link emails, as the engine sends them: one ``EmailJob``
row each."""

from datetime import timedelta
from functools import cached_property

from sqlalchemy import ColumnElement, exists, select

from newsletter.core import suppression
from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.mail import return_path, transactional
from newsletter.mail.digest import DigestMessages, sender_domain
from newsletter.mail.relay import Envelope
from newsletter.sending import engine, hints, leases, outcome_writer
from newsletter.sending.kinds import claim_rows, next_due_in, unsent
from newsletter.sending.models import EmailJob, EmailKind, JobStatus
from newsletter.sending.outcomes import Claim, Email, RunReport
from newsletter.sending.pacing import Booking
from newsletter.subscribers.models import SubscriberStatus

# Jobs a worker takes at once; and how long one task goes on taking batches
# before it hands the rest to a new task.
BATCH_SIZE = 50
TASK_SECONDS = 3.0
# A run waits this long between batches that were not full, so that one claim and
# one connection serve many sign-ups; it ends after LINGER_SECONDS without any.
GATHER_SECONDS = 0.02
LINGER_SECONDS = 0.1
# Jobs this much past due with no live lease have lost their hint.
SWEEP_GRACE = timedelta(seconds=10)
# The statuses a subscriber may still have when their job is sent. The link to one's data
# answers the subscriber's own request, so unsubscribed subscribers get it; no address that
# bounced or complained ever does.
WANTED_STATUSES = {
    EmailKind.CONFIRMATION: (SubscriberStatus.PENDING,),
    EmailKind.WELCOME: (SubscriberStatus.CONFIRMED,),
    EmailKind.DATA_LINK: (
        SubscriberStatus.PENDING,
        SubscriberStatus.CONFIRMED,
        SubscriberStatus.UNSUBSCRIBED,
    ),
}


class EmailJobs:
    label = "email"
    model = EmailJob
    sent_column = "finished_at"
    keeps_message_id = True
    batch_size = BATCH_SIZE
    gather_seconds = GATHER_SECONDS
    linger_seconds = LINGER_SECONDS

    def book(self, size: int) -> Booking:
        # The admins' rate limit is for digests; a confirmation must not wait behind one.
        return Booking.unlimited(size)

    def claim(self, size: int) -> list[Claim]:
        ids = leases.take_due(
            EmailJob,
            EmailJob.status == JobStatus.QUEUED,
            unsent(self),
            order_by=EmailJob.due_at,
            limit=size,
        )
        return claim_rows(EmailJob, ids, email_kind_column=EmailJob.kind)

    def wanted(self, claim: Claim) -> bool:
        email_kind = claim.email_kind
        if email_kind is None or claim.subscriber.status not in WANTED_STATUSES[email_kind]:
            return False
        # A bounce or complaint may have suppressed the address since the subscriber asked;
        # the other kinds follow the status alone, as before.
        return email_kind != EmailKind.DATA_LINK or not suppression.suppressed(
            [claim.subscriber.email]
        )

    def build(self, claim: Claim, date: str) -> Email:
        subscriber = claim.subscriber
        # Signed, never sequential: a report quoting it names this subscriber and no other.
        message_id = return_path.message_id(
            subscriber.token_nonce, return_path.EMAIL_JOB, claim.row_id, self.domain
        )
        if claim.email_kind == EmailKind.CONFIRMATION:
            raw = transactional.build_confirmation(subscriber, message_id)
        elif claim.email_kind == EmailKind.DATA_LINK:
            raw = transactional.build_data_link(subscriber, message_id)
        else:
            raw = self.welcome.build(subscriber, date, message_id)
        envelope = Envelope(
            subscriber.email,
            return_path.for_message(subscriber.token_nonce, return_path.EMAIL_JOB, claim.row_id),
        )
        return Email(envelope, raw, message_id)

    @cached_property
    def domain(self) -> str:
        return sender_domain()

    @cached_property
    def welcome(self) -> DigestMessages:
        return transactional.welcome_messages()

    def refused(self, reason: str) -> None:
        """Nothing to pause: the rest of the batch waits for the next run, where each
        job is tried on its own again."""

    def waiting(self, note: str | None) -> None:
        """Each job keeps why it waits (``last_error``); /healthz tells the operator."""

    def owed(self) -> tuple[ColumnElement[bool], ...]:
        return (EmailJob.status == JobStatus.QUEUED,)

    def when_idle(self) -> float | None:
        outcome_writer.settle_stragglers(self, *self.owed())
        return next_due_in(EmailJob, *self.owed())


def send_due_jobs(seconds: float = TASK_SECONDS) -> RunReport:
    """Send the email jobs that are due, batch after batch, for about ``seconds``.

    The hint flag goes down first: a sign-up committed after this raises it again."""
    hints.clear_flag()
    return engine.run(EmailJobs(), seconds)


def any_lost_jobs() -> bool:
    """Whether a queued job is past due and nobody holds it: its hint was lost."""
    now = utcnow()
    lost = exists().where(
        EmailJob.status == JobStatus.QUEUED,
        EmailJob.due_at <= now - SWEEP_GRACE,
        leases.unheld(EmailJob, now),
    )
    return db.session.scalar(select(lost)) is True
