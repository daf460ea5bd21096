"""What the engine works with: a claimed row, the message built for it, and what
became of it; and what a batch and a run report."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from newsletter.mail.relay import Envelope
from newsletter.sending.models import EmailKind
from newsletter.subscribers.models import SubscriberSnapshot

# Errors are kept to the length of the columns that hold them.
ERROR_LENGTH = 500


def cut(error: str | None) -> str | None:
    return error[:ERROR_LENGTH] if error else error


# The model of a kind's rows of work (EmailJob, Delivery): each has the columns id,
# subscriber_id, status, due_at, lease_until, attempts and last_error. Typed as any
# class: mypy matches no mapped column against a Protocol (it applies no descriptor to
# a protocol's members), and the engine names no model of the domains above it.
WorkModel = type[Any]


@dataclass(frozen=True, slots=True)
class Claim:
    """A row of work (an email job or a digest delivery) a worker holds a lease on."""

    row_id: int
    # Claims so far, this one included: each claim counts an attempt.
    attempts: int
    subscriber: SubscriberSnapshot
    # What the row owes: an email job, one kind of email; a digest copy, its digest.
    # The other stays None.
    email_kind: EmailKind | None = None
    digest_id: int | None = None


@dataclass(frozen=True, slots=True)
class Email:
    """A message ready for SMTP."""

    envelope: Envelope
    raw: bytes
    message_id: str


class Verdict(StrEnum):
    SENT = "sent"
    # Not needed any more: the subscriber left, or confirmed already.
    SKIPPED = "skipped"
    FAILED = "failed"
    # Try again after a backoff; the attempt counts.
    RETRY = "retry"
    # Never tried: back to the queue as it was, the attempt uncounted.
    HANDED_BACK = "handed back"
    # Never tried: its domain's next turn is ahead (domain_pacing); back to the queue
    # for that moment, the attempt uncounted.
    DEFERRED = "deferred"
    # Never tried: no session with the relay could be opened; back to the queue until
    # the relay is tried again, the attempt uncounted, however long that takes.
    WAITING = "waiting"


@dataclass(slots=True)
class Outcome:
    claim: Claim
    verdict: Verdict
    error: str | None = None
    # The relay refused the subscriber's address: it counts towards a bounce.
    blames_subscriber: bool = False
    # When a deferred row is due again.
    due_at: datetime | None = None


# The Tally field that counts each verdict.
TALLIED_AS = {verdict: verdict.value for verdict in Verdict} | {
    Verdict.RETRY: "retried",
    Verdict.HANDED_BACK: "handed_back",
    Verdict.DEFERRED: "handed_back",
    Verdict.WAITING: "handed_back",
}


@dataclass
class Tally:
    """Counts of what a batch or a run did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    handed_back: int = 0

    def count(self, verdict: Verdict) -> None:
        name = TALLIED_AS[verdict]
        setattr(self, name, getattr(self, name) + 1)

    def add(self, other: "Tally") -> None:
        for name in ("claimed", "sent", "failed", "retried", "skipped", "handed_back"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class RunReport(Tally):
    """What one run (one task: batch after batch for a few seconds) did."""

    # Stopped for time with work possibly left: another run should follow at once.
    more: bool = False
    # Seconds until the next row is due, when nothing is due now.
    retry_in: float | None = None
    # Why the run stopped early, if it did (the relay is down, the message refused).
    stopped: str | None = None
    # Seconds until the relay is tried again, when no session with it could be opened.
    relay_wait: float | None = None

    def summary(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "retried": self.retried}
