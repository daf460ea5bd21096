"""The sending engine: claim → build → send → classify → record, for every email.

Confirmation and welcome emails (``EmailJobs``) and digest copies
(``DigestDeliveries``) are rows of work that the engine treats alike; a ``Kind``
says what differs: which rows to claim, how to build each message, how fast it
may go out, and what to do when the relay refuses the message itself.

- A worker claims a batch with one conditional UPDATE (a lease, see leases.py);
  each claim counts an attempt, and a row claimed more than SEND_MAX_ATTEMPTS
  times fails, whatever stopped it (a refusal, a worker killed holding it), so
  nothing is claimed forever.
- But when no session with the relay opens (down, its certificate or our login
  refused), no message was tried: the batch gives its attempts back, and all the
  kind owes waits, for longer after each failed opening (capped), as long as it takes.
- Each message is built and sent on its own: any exception while building or
  sending it fails that message alone, and the batch goes on.
- Each accepted message is recorded before the next can be accepted
  (recorder.py): a worker killed mid-send repeats at most the message in flight.
- Everything else a batch learned (failures, retries, skips, bounces) is written
  at its end in a fixed number of statements.
"""

import logging
import time
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from typing import Protocol

from flask import current_app
from sqlalchemy import func, insert, select, update

from newsletter.bounces.models import FeedbackEvent, FeedbackKind
from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.mail import relay
from newsletter.sending import domain_pacing, leases, pacing
from newsletter.sending.outcomes import Claim, Email, Outcome, RunReport, Tally, Verdict
from newsletter.sending.pacing import Booking
from newsletter.sending.recorder import Recorder, RecordFailed, recorder_for
from newsletter.subscribers.models import Subscriber, SubscriberSnapshot, SubscriberStatus

log = logging.getLogger("newsletter.sending")

# Message refusals in a row, with nothing accepted between them, after which the
# rest of the batch would meet the same refusal: the batch stops there.
REFUSALS_TO_STOP = 3
ERROR_LENGTH = 500


class Kind(Protocol):
    """What differs between the kinds of email the engine sends."""

    label: str
    model: type
    # The column that says when a row's message was accepted: set at once, before
    # the row's status, which follows at the end of the batch.
    sent_column: str
    keeps_message_id: bool
    batch_size: int
    # Between batches that were not full, a run waits this long for more rows, and
    # it ends after ``linger_seconds`` without any.
    gather_seconds: float
    linger_seconds: float

    def book(self, size: int) -> Booking | None:
        """Time to send up to ``size`` messages, or None when none is free now."""

    def claim(self, size: int) -> list[Claim]: ...

    def wanted(self, claim: Claim) -> bool:
        """Whether the reader still wants this message."""

    def build(self, claim: Claim, date: str) -> Email: ...

    def refused(self, reason: str) -> None:
        """The relay refuses the message itself, for everyone: say so in the batch's
        transaction, which the engine commits."""

    def when_idle(self) -> float | None:
        """Nothing to claim: settle what must be settled, and say in how many
        seconds the next row is due (None when none waits)."""

    def owed(self) -> tuple:
        """The conditions on ``model`` of the rows this kind still owes."""

    def waiting(self, note: str | None) -> None:
        """The mail waits for the relay, as ``note`` says; None: mail goes out again.
        In the batch's transaction."""


def run(kind: Kind, seconds: float) -> RunReport:
    """Send batch after batch for about ``seconds``, over one SMTP connection.

    One run doing several batches costs one broker round trip for all of them,
    which matters most on a polling broker.
    """
    report = RunReport()
    with ExitStack() as stack:
        _send_batches(kind, RunResources(kind, stack), report, time.monotonic() + seconds)
    if not report.more:
        report.retry_in = _follow_up_in(kind, report)
    return report


def _send_batches(kind: Kind, resources: "RunResources", report: RunReport, deadline: float):
    """Batch after batch until the deadline; while rows come in slowly, wait a little
    for more, and stop once none has come for the kind's linger time."""
    quiet_until = None
    while True:
        batch = send_batch(kind, resources, report)
        if report.stopped or time.monotonic() >= deadline:
            report.more = batch.claimed > 0 and not report.stopped
            return
        if batch.claimed:
            quiet_until = None
            if batch.claimed < kind.batch_size:
                time.sleep(kind.gather_seconds)
            continue
        if report.retry_in is not None:
            return
        quiet_until = quiet_until or time.monotonic() + kind.linger_seconds
        if time.monotonic() >= quiet_until:
            return
        time.sleep(kind.gather_seconds)


def _follow_up_in(kind: Kind, report: RunReport) -> float | None:
    """Seconds after which another run should look again, or None."""
    waits = [report.retry_in, kind.when_idle()]
    if report.stopped:
        relay_wait = report.relay_wait
        waits.append(leases.retry_delay(1) if relay_wait is None else relay_wait)
    waits = [wait for wait in waits if wait is not None]
    return min(waits) + leases.CLOCK_TOLERANCE_SECONDS if waits else None


class RunResources:
    """What a run opens once for all its batches, each when first needed: the SMTP
    connection, and the recorder with its database connection (and, on PostgreSQL,
    its prepared statement)."""

    def __init__(self, kind: Kind, stack: ExitStack):
        self.kind = kind
        self.stack = stack
        self._sender: relay.Sender | None = None
        self._recorder: Recorder | None = None

    def sender(self) -> relay.Sender:
        if self._sender is None:
            self._sender = self.stack.enter_context(relay.connection())
        return self._sender

    def recorder(self) -> Recorder:
        if self._recorder is None:
            kind = self.kind
            self._recorder = self.stack.enter_context(
                recorder_for(kind.model.__table__.name, kind.sent_column, kind.keeps_message_id)
            )
        return self._recorder


def send_batch(kind: Kind, resources: RunResources, report: RunReport) -> Tally:
    """Claim one batch, send it, record what happened; add it to ``report``."""
    started = time.monotonic()
    batch = Tally()
    booking = kind.book(kind.batch_size)
    if booking is None:
        report.retry_in = pacing.RETRY_SECONDS
        return batch
    claims = kind.claim(booking.size)
    batch.claimed = len(claims)
    if not claims:
        return batch
    sent = Batch(kind, claims, booking, resources.recorder())
    outcomes = sent.send(resources, report)
    resources.recorder().settle()
    record(kind, outcomes, sent.refused_reason, report.relay_wait)
    sent.adjust_domain_paces()
    if sent.refused_reason:
        report.stopped = sent.refused_reason
    for outcome in outcomes:
        batch.count(outcome.verdict)
    report.add(batch)
    log.info(
        "%s batch: claimed %d, sent %d, failed %d, retried %d, skipped %d, handed back %d in %d ms",
        kind.label,
        batch.claimed,
        batch.sent,
        batch.failed,
        batch.retried,
        batch.skipped,
        batch.handed_back,
        (time.monotonic() - started) * 1000,
    )
    return batch


class Batch:
    """One batch on its way: each claim becomes exactly one Outcome."""

    def __init__(self, kind: Kind, claims: list[Claim], booking: Booking, recorder: Recorder):
        self.kind = kind
        self.claims = claims
        self.booking = booking
        self.recorder = recorder
        self.outcomes: list[Outcome] = []
        self.refusals_in_a_row = 0
        self.refused_reason: str | None = None
        self.max_attempts = current_app.config["SEND_MAX_ATTEMPTS"]
        self.date = formatdate(usegmt=True)
        # Recipient domains that asked to be sent to more slowly: before this batch,
        # and during it.
        self.paced = domain_pacing.paced_domains()
        self.slowed: set[str] = set()

    def send(self, resources: RunResources, report: RunReport) -> list[Outcome]:
        try:
            self._send_all(resources)
        except relay.RelayUnavailable as error:
            report.stopped = str(error)
            report.relay_wait = leases.relay_wait(error.failures)
            self._finish_rest(Verdict.WAITING, str(error))
            # One line for the batch, not one per email: the relay is out, not the mail.
            log.warning(
                "%s: the relay is unavailable, %d emails wait %.1f s: %s",
                self.kind.label,
                sum(outcome.verdict is Verdict.WAITING for outcome in self.outcomes),
                report.relay_wait,
                error,
            )
        except relay.ConnectionFailure as error:
            log.warning("%s: the relay is unavailable: %s", self.kind.label, error)
            report.stopped = str(error)
            self._finish_rest(Verdict.RETRY, str(error))
        return self.outcomes

    def _send_all(self, resources: RunResources) -> None:
        """Each message is made ready (built, its turn taken) before the one before it
        goes out, so that its envelope can go out with that one's body (see
        ``relay.SMTPSender.send``)."""
        ready: tuple[Claim, Email] | None = None
        for claim in self.claims:
            email = self._prepare(claim)
            if email is None:
                continue
            if ready and self.booking.paced:
                # Under a rate limit each message goes out in its own turn.
                if not self._deliver(*ready, resources):
                    return
                ready = None
            if not self.booking.take_turn():
                self._finish_rest(Verdict.HANDED_BACK)
                return
            if ready and not self._deliver(*ready, resources, then=email):
                resources.sender().cancel_next()
                return
            ready = (claim, email)
        if ready:
            self._deliver(*ready, resources)

    def _prepare(self, claim: Claim) -> Email | None:
        """The message for a claim, or None when it is settled without sending."""
        if claim.attempts > self.max_attempts:
            self._add(claim, Verdict.FAILED, f"gave up after {self.max_attempts} attempts")
            return None
        if not self.kind.wanted(claim):
            self._add(claim, Verdict.SKIPPED)
            return None
        if not self._domain_turn(claim):
            return None
        try:
            return self.kind.build(claim, self.date)
        except Exception as error:
            log.exception("%s: message %d could not be built", self.kind.label, claim.row_id)
            self._add(claim, Verdict.FAILED, f"could not be built: {_describe(error)}")
            return None

    def _deliver(
        self, claim: Claim, email: Email, resources: RunResources, then: Email | None = None
    ) -> bool:
        """Send one message; ``then`` is the message to go out next, if one is ready.
        False when the rest of the batch must not go out now."""
        try:
            resources.sender().send(
                email.envelope,
                email.raw,
                before_commit=self.recorder.settle,
                next_envelope=then and then.envelope,
            )
        except relay.SessionSlowDown:
            self.slowed.add(domain_pacing.domain_of(claim.reader.email))
            raise
        except (relay.ConnectionFailure, RecordFailed):
            raise
        except relay.TemporaryFailure as error:
            if isinstance(error, relay.SlowDown):
                self.slowed.add(domain_pacing.domain_of(claim.reader.email))
            return self._add(claim, Verdict.RETRY, str(error))
        except relay.ReaderRefused as error:
            self.refusals_in_a_row = 0
            return self._add(claim, Verdict.FAILED, str(error), blames_reader=True)
        except relay.CannotCarry as error:
            return self._add(claim, Verdict.FAILED, str(error))
        except relay.MessageRefused as error:
            self._add(claim, Verdict.FAILED, str(error))
            return self._after_message_refused(str(error))
        except Exception as error:
            log.exception("%s: message %d could not be sent", self.kind.label, claim.row_id)
            return self._add(claim, Verdict.FAILED, f"could not be sent: {_describe(error)}")
        self.recorder.sent(claim.row_id, email.message_id)
        self.refusals_in_a_row = 0
        return self._add(claim, Verdict.SENT)

    def _after_message_refused(self, reason: str) -> bool:
        self.refusals_in_a_row += 1
        if self.refusals_in_a_row < REFUSALS_TO_STOP:
            return True
        log.warning(
            "%s: the relay refuses the message itself, stopping: %s", self.kind.label, reason
        )
        self.kind.refused(reason)
        self._finish_rest(Verdict.HANDED_BACK)
        return False

    def _domain_turn(self, claim: Claim) -> bool:
        """Whether the message may go now as far as its recipient's domain is concerned;
        if not, it is deferred to the domain's next turn."""
        domain = domain_pacing.domain_of(claim.reader.email)
        if domain in self.slowed:
            # Its pace is written when the batch is recorded: until then, a first step.
            next_at = time.time() + domain_pacing.START_SECONDS
        elif domain in self.paced:
            next_at = domain_pacing.take_turn(domain)
        else:
            return True
        if next_at is None:
            return True
        due_at = datetime.fromtimestamp(next_at, UTC).replace(tzinfo=None)
        self.outcomes.append(Outcome(claim, Verdict.DEFERRED, due_at=due_at))
        return False

    def adjust_domain_paces(self) -> None:
        """Slow the domains that asked during this batch; step the paced ones whose
        messages went through back towards full speed."""
        sent_to = Counter(
            domain_pacing.domain_of(outcome.claim.reader.email)
            for outcome in self.outcomes
            if outcome.verdict is Verdict.SENT
        )
        through = Counter(
            {
                domain: count
                for domain, count in sent_to.items()
                if domain in self.paced and domain not in self.slowed
            }
        )
        if not (self.slowed or through):
            return
        if self.slowed:
            log.warning(
                "%s: slowing down for %s, at its mail system's request",
                self.kind.label,
                ", ".join(sorted(self.slowed)),
            )
        domain_pacing.slow_down(self.slowed)
        domain_pacing.went_through(through)
        db.session.commit()

    def _add(self, claim: Claim, verdict: Verdict, error=None, blames_reader=False) -> bool:
        self.outcomes.append(Outcome(claim, verdict, error, blames_reader))
        if verdict is Verdict.FAILED and not blames_reader and error:
            log.warning("%s: message %d failed: %s", self.kind.label, claim.row_id, error)
        return True

    def _finish_rest(self, verdict: Verdict, error: str | None = None) -> None:
        done = {outcome.claim.row_id for outcome in self.outcomes}
        for claim in self.claims:
            if claim.row_id not in done:
                self.outcomes.append(Outcome(claim, verdict, error))


def record(
    kind: Kind,
    outcomes: list[Outcome],
    refused_reason: str | None = None,
    relay_wait: float | None = None,
) -> None:
    """Write every outcome in a fixed number of statements, whatever the batch's size;
    a sent message's time was recorded as it went out, its status follows here.
    ``relay_wait``: the seconds the mail waits, when the relay could not be opened."""
    model = kind.model
    by_verdict: dict[Verdict, list[Outcome]] = {verdict: [] for verdict in Verdict}
    for outcome in outcomes:
        by_verdict[outcome.verdict].append(outcome)
    failed = [_failed_row(outcome) for outcome in by_verdict[Verdict.FAILED]]
    retry = _retries(by_verdict[Verdict.RETRY], failed)
    if failed:
        db.session.execute(update(model), failed)
    if retry:
        db.session.execute(update(model), retry)
    _update_ids(model, by_verdict[Verdict.SENT], status="sent", lease_until=None)
    _update_ids(model, by_verdict[Verdict.SKIPPED], status="skipped", lease_until=None)
    _update_ids(
        model, by_verdict[Verdict.HANDED_BACK], lease_until=None, attempts=model.attempts - 1
    )
    deferred = [
        {"id": outcome.claim.row_id, "lease_until": None, "due_at": outcome.due_at,
         "attempts": outcome.claim.attempts - 1}
        for outcome in by_verdict[Verdict.DEFERRED]
    ]  # fmt: skip
    if deferred:
        db.session.execute(update(model), deferred)
    _count_bounces(by_verdict[Verdict.FAILED], by_verdict[Verdict.SENT])
    if by_verdict[Verdict.WAITING]:
        _wait_for_relay(kind, by_verdict[Verdict.WAITING], relay_wait or 0.0)
    elif by_verdict[Verdict.SENT]:
        kind.waiting(None)
    if refused_reason:
        # In the same transaction as the rows handed back, so no batch takes them first.
        kind.refused(refused_reason)
    db.session.commit()


def _wait_for_relay(kind: Kind, outcomes: list[Outcome], seconds: float) -> None:
    """The batch's rows go back with their attempts, and everything the kind owes
    that is due before the relay's next try waits for it too: neither the sweep nor
    another batch knocks on the relay before then, and none of it loses an attempt."""
    model = kind.model
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    reason = outcomes[0].error or "the relay is unavailable"
    # Rows another worker is pushing (or claiming) are skipped, not waited for: it
    # takes care of them, and two pushes never lock the same rows in turn.
    due_before = (
        select(model.id)
        .where(*kind.owed(), unsent(kind), leases.unheld(model, now), model.due_at < until)
        .with_for_update(skip_locked=True)
    )
    db.session.execute(update(model).where(model.id.in_(due_before)).values(due_at=until))
    ids = [outcome.claim.row_id for outcome in outcomes]
    db.session.execute(
        update(model)
        .where(leases.among(model.id, ids))
        .values(
            lease_until=None, due_at=until, attempts=model.attempts - 1, last_error=_cut(reason)
        )
    )
    kind.waiting(f"Waiting for the relay, next try at {until:%H:%M:%S} UTC: {reason}")


def _retries(outcomes: list[Outcome], failed: list[dict]) -> list[dict]:
    """Rows to try again later; those out of attempts join ``failed``."""
    now = utcnow()
    retry = []
    for outcome in outcomes:
        claim = outcome.claim
        if claim.attempts >= current_app.config["SEND_MAX_ATTEMPTS"]:
            failed.append(_failed_row(outcome))
            continue
        delay = timedelta(seconds=leases.retry_delay(claim.attempts))
        retry.append(
            {"id": claim.row_id, "lease_until": None, "due_at": now + delay,
             "last_error": _cut(outcome.error)}
        )  # fmt: skip
    return retry


def _failed_row(outcome: Outcome) -> dict:
    return {
        "id": outcome.claim.row_id,
        "status": "failed",
        "lease_until": None,
        "last_error": _cut(outcome.error),
    }


def _update_ids(model, outcomes: list[Outcome], **values) -> None:
    if outcomes:
        ids = [outcome.claim.row_id for outcome in outcomes]
        db.session.execute(update(model).where(leases.among(model.id, ids)).values(**values))


def _count_bounces(failed: list[Outcome], sent: list[Outcome]) -> None:
    """A refusal of the reader's address counts towards marking it bounced; a message
    that got through clears the count."""
    refused = [o.claim.reader.id for o in failed if o.blames_reader]
    if refused:
        db.session.execute(
            update(Subscriber)
            .where(Subscriber.id.in_(refused))
            .values(hard_bounces=Subscriber.hard_bounces + 1)
        )
        bounced = db.session.scalars(
            update(Subscriber)
            .where(
                Subscriber.id.in_(refused),
                Subscriber.hard_bounces >= current_app.config["BOUNCE_LIMIT"],
                Subscriber.status == SubscriberStatus.CONFIRMED,
            )
            .values(status=SubscriberStatus.BOUNCED)
            .returning(Subscriber.id)
        ).all()
        _log_relay_bounces([o for o in failed if o.claim.reader.id in set(bounced)])
    reached = [o.claim.reader.id for o in sent if o.claim.reader.hard_bounces]
    if reached:
        db.session.execute(
            update(Subscriber)
            .where(leases.among(Subscriber.id, reached), Subscriber.hard_bounces > 0)
            .values(hard_bounces=0)
        )


def _log_relay_bounces(outcomes: list[Outcome]) -> None:
    """Readers the relay's refusals just marked bounced: the event that did it, for
    their admin page and their digest's figures."""
    if outcomes:
        db.session.execute(
            insert(FeedbackEvent),
            [
                {
                    "subscriber_id": outcome.claim.reader.id,
                    "digest_id": _digest_of(outcome.claim),
                    "kind": FeedbackKind.HARD_BOUNCE,
                    "source": "relay",
                    "detail": _cut(outcome.error),
                    "changed_status": True,
                }
                for outcome in outcomes
            ],
        )


def _digest_of(claim: Claim) -> int | None:
    """A digest copy owes its digest's id; an email job owes its kind."""
    return claim.owes if isinstance(claim.owes, int) else None


def unsent(kind: Kind):
    """Rows whose message no relay has accepted yet: the only ones a claim may take."""
    return getattr(kind.model, kind.sent_column).is_(None)


def settle_stragglers(kind: Kind, *open_rows) -> None:
    """Rows whose message went out but whose worker died before their status followed:
    once their lease has run out, they are sent."""
    model = kind.model
    db.session.execute(
        update(model)
        .where(*open_rows, ~unsent(kind), leases.unheld(model, utcnow()))
        .values(status="sent", lease_until=None)
    )
    db.session.commit()


def next_due_in(model, *open_rows) -> float | None:
    """Seconds until the earliest of ``open_rows`` is due, if it lies ahead."""
    now = utcnow()
    next_due = db.session.scalar(select(func.min(model.due_at)).where(*open_rows))
    if next_due is None or next_due <= now:
        return None
    return (next_due - now).total_seconds()


def claim_rows(model, owes_column, ids: list[int]) -> list[Claim]:
    """The claimed rows with what their messages need of each reader, in one query;
    commits the claim."""
    if not ids:
        db.session.commit()
        return []
    rows = db.session.execute(
        select(
            model.id,
            model.attempts,
            owes_column,
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.token_nonce,
            Subscriber.status,
            Subscriber.hard_bounces,
            Subscriber.locale,
        )
        .join(Subscriber, Subscriber.id == model.subscriber_id)
        .where(leases.among(model.id, ids))
        .order_by(model.id)
    ).all()
    # No transaction stays open while the batch is sent: it would keep PostgreSQL's
    # vacuum and SQLite's checkpoints from cleaning up behind the other workers.
    db.session.commit()
    return [
        Claim(row_id, attempts, SubscriberSnapshot(*reader), owes)
        for row_id, attempts, owes, *reader in rows
    ]


def _cut(error: str | None) -> str | None:
    return error[:ERROR_LENGTH] if error else error


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
