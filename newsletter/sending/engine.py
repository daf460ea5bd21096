"""The sending engine: claim → build → send → classify → record, for every email.

Confirmation and welcome emails and digest copies are rows of work that the engine
treats alike; a ``Kind`` (kinds.py) says what differs. A batch is claimed, each
message built and sent over one relay session, each answer classified into an
``Outcome``, and the outcomes handed to outcome_writer.py.

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
  at its end in a fixed number of statements (outcome_writer.py).
"""

import logging
import time
from contextlib import ExitStack
from email.utils import formatdate

from flask import current_app

from newsletter.mail import relay
from newsletter.sending import leases, outcome_writer, pacing
from newsletter.sending.domain_pacing import BatchTurns
from newsletter.sending.kinds import Kind
from newsletter.sending.outcomes import Claim, Email, Outcome, RunReport, Tally, Verdict
from newsletter.sending.pacing import Booking
from newsletter.sending.recorder import Recorder, RecordFailed, recorder_for

log = logging.getLogger("newsletter.sending")

# Message refusals in a row, with nothing accepted between them, after which the
# rest of the batch would meet the same refusal: the batch stops there.
REFUSALS_TO_STOP = 3


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


def _send_batches(
    kind: Kind, resources: "RunResources", report: RunReport, deadline: float
) -> None:
    """Batch after batch until the deadline; while rows come in slowly, wait a little
    for more, and stop once none has come for the kind's linger time."""
    quiet_until: float | None = None
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
    known = [wait for wait in waits if wait is not None]
    return min(known) + leases.CLOCK_TOLERANCE_SECONDS if known else None


class RunResources:
    """What a run opens once for all its batches, each when first needed: the SMTP
    connection, and the recorder with its database connection (and, on PostgreSQL,
    its prepared statement)."""

    def __init__(self, kind: Kind, stack: ExitStack) -> None:
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
                recorder_for(kind.model.__tablename__, kind.sent_column, kind.keeps_message_id)
            )
        return self._recorder


def send_batch(kind: Kind, resources: RunResources, report: RunReport) -> Tally:
    """Claim one batch, send it, hand what happened to the outcome writer; add it to
    ``report``."""
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
    outcome_writer.write(kind, outcomes, sent.refused_reason, report.relay_wait)
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

    def __init__(
        self, kind: Kind, claims: list[Claim], booking: Booking, recorder: Recorder
    ) -> None:
        self.kind = kind
        self.claims = claims
        self.booking = booking
        self.recorder = recorder
        self.outcomes: list[Outcome] = []
        self.refusals_in_a_row = 0
        self.refused_reason: str | None = None
        self.max_attempts: int = current_app.config["SEND_MAX_ATTEMPTS"]
        self.date = formatdate(usegmt=True)
        self.turns = BatchTurns()

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
        due_at = self.turns.next_turn(claim.subscriber.email)
        if due_at is not None:
            self.outcomes.append(Outcome(claim, Verdict.DEFERRED, due_at=due_at))
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
                next_envelope=then.envelope if then else None,
            )
        except relay.SessionSlowDown:
            self.turns.asked_to_slow_down(claim.subscriber.email)
            raise
        except (relay.ConnectionFailure, RecordFailed):
            raise
        except relay.TemporaryFailure as error:
            if isinstance(error, relay.SlowDown):
                self.turns.asked_to_slow_down(claim.subscriber.email)
            return self._add(claim, Verdict.RETRY, str(error))
        except relay.SubscriberRefused as error:
            self.refusals_in_a_row = 0
            return self._add(claim, Verdict.FAILED, str(error), blames_subscriber=True)
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
        self.refused_reason = reason
        self._finish_rest(Verdict.HANDED_BACK)
        return False

    def adjust_domain_paces(self) -> None:
        if self.turns.slowed:
            log.warning(
                "%s: slowing down for %s, at its mail system's request",
                self.kind.label,
                ", ".join(sorted(self.turns.slowed)),
            )
        self.turns.adjust(
            outcome.claim.subscriber.email
            for outcome in self.outcomes
            if outcome.verdict is Verdict.SENT
        )

    def _add(
        self,
        claim: Claim,
        verdict: Verdict,
        error: str | None = None,
        blames_subscriber: bool = False,
    ) -> bool:
        self.outcomes.append(Outcome(claim, verdict, error, blames_subscriber))
        if verdict is Verdict.FAILED and not blames_subscriber and error:
            log.warning("%s: message %d failed: %s", self.kind.label, claim.row_id, error)
        return True

    def _finish_rest(self, verdict: Verdict, error: str | None = None) -> None:
        done = {outcome.claim.row_id for outcome in self.outcomes}
        for claim in self.claims:
            if claim.row_id not in done:
                self.outcomes.append(Outcome(claim, verdict, error))


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
