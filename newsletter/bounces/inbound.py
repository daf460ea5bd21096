"""Mail that comes back to us: the inbound listener (listener.py) stores each
message before it answers, and a worker processes it once into feedback.

A message is processed in one transaction that claims its row (sets processed_at),
records what it reports (feedback.add) and says what came of it (outcome), so a
second run, or two workers at once, change nothing more. A message whose reading
fails is kept as failed, with the error, and never stops the others.
"""

import logging
from datetime import timedelta
from email import policy
from email.parser import BytesHeaderParser

from flask import current_app
from kombu.exceptions import OperationalError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.bounces import feedback, reports
from newsletter.bounces.models import FeedbackEvent, InboundMessage
from newsletter.core import task_names
from newsletter.core.models import utcnow
from newsletter.core.writes import rows_changed
from newsletter.extensions import db
from newsletter.sending import hints
from newsletter.subscribers.models import Subscriber

log = logging.getLogger(__name__)

# Unprocessed messages older than this are the sweep's: their hint was lost.
SWEEP_AFTER = timedelta(minutes=1)
SWEEP_BATCH = 1000
OUTCOME_LENGTH = 2000
# Between a message's recipients in its row: none of ours has a comma or a space.
RECIPIENT_SEPARATOR = ", "


def accepts(address: str) -> bool:
    """Whether the listener takes mail for this address."""
    return reports.addressed_to(address) is not None


def store(mail_from: str, rcpt_tos: list[str], raw: bytes) -> int:
    """Keep the message once, with all its recipients, and commit; then ask a worker to
    process it. The id of its row."""
    row = InboundMessage(mail_from=mail_from, rcpt_to=RECIPIENT_SEPARATOR.join(rcpt_tos), raw=raw)
    db.session.add(row)
    db.session.commit()
    try:
        hints.publish(task_names.PROCESS_INBOUND, row.id)
    except (OperationalError, OSError) as error:
        log.warning("broker unreachable, inbound %s waits for the sweep: %s", row.id, error)
    return row.id


def unprocessed_ids() -> list[int]:
    """Messages nobody processed in time (a lost hint, a dead worker)."""
    return list(
        db.session.scalars(
            select(InboundMessage.id)
            .where(
                InboundMessage.processed_at.is_(None),
                InboundMessage.received_at < utcnow() - SWEEP_AFTER,
            )
            .order_by(InboundMessage.id)
            .limit(SWEEP_BATCH)
        )
    )


def process(inbound_id: int) -> str | None:
    """Turn the message into feedback, once; its outcome, or None if it was processed
    before."""
    try:
        return _process(inbound_id)
    except IntegrityError:
        # Another message carried the same report (an MTA that sent it twice) and was
        # recorded a moment ago; this time it is found recorded.
        db.session.rollback()
        return _process(inbound_id)


def _process(inbound_id: int) -> str | None:
    claimed = rows_changed(
        update(InboundMessage)
        .where(InboundMessage.id == inbound_id, InboundMessage.processed_at.is_(None))
        .values(processed_at=utcnow())
    )
    if not claimed:
        db.session.rollback()
        return None
    message = db.session.get_one(InboundMessage, inbound_id)
    try:
        # Read for each recipient: the address it came to may be what names the subscriber.
        readings = [
            reports.read(message.raw, message.mail_from, rcpt_to, f"<inbound.{inbound_id}>")
            for rcpt_to in message.rcpt_to.split(RECIPIENT_SEPARATOR)
        ]
    # Whatever a message does to the parser, it must not stop the messages after it.
    except Exception as error:
        log.warning("inbound %s could not be read: %r", inbound_id, error)
        message.outcome = f"failed: {error!r}"[:OUTCOME_LENGTH]
        db.session.commit()
        return message.outcome
    found = [report for reading in readings for report in reading.reports]
    if found:
        outcome = "; ".join(_describe(report, feedback.add(report)) for report in found)
    else:
        why = dict.fromkeys(reading.ignored for reading in readings if reading.ignored)
        outcome = f"ignored: {'; '.join(why)}"
    message.outcome = outcome[:OUTCOME_LENGTH]
    db.session.commit()
    log.info("inbound %s: %s", inbound_id, message.outcome)
    return message.outcome


def _describe(report: feedback.Report, event: FeedbackEvent | None) -> str:
    what = f"{report.kind} {report.status}" if report.status else str(report.kind)
    if event is None:
        return f"{what}: recorded before"
    subscriber = event.subscriber_id and db.session.get(Subscriber, event.subscriber_id)
    return f"{what} for {subscriber.email if subscriber else 'no known reader'}"


def drop_old() -> int:
    """Delete processed messages older than INBOUND_RETENTION_DAYS (raw mail holds other
    people's addresses and words); returns how many went."""
    days = current_app.config["INBOUND_RETENTION_DAYS"]
    if not days:
        return 0
    dropped = rows_changed(
        delete(InboundMessage).where(
            InboundMessage.processed_at.is_not(None),
            InboundMessage.received_at < utcnow() - timedelta(days=days),
        )
    )
    db.session.commit()
    return dropped


def recent(limit: int = 100) -> list[tuple[InboundMessage, str]]:
    """The latest messages, newest first, each with its Subject, for the admin."""
    messages = db.session.scalars(
        select(InboundMessage).order_by(InboundMessage.id.desc()).limit(limit)
    ).all()
    return [(message, _subject(message.raw)) for message in messages]


def _subject(raw: bytes) -> str:
    headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
    try:
        return str(headers["Subject"] or "")
    except (ValueError, IndexError):
        return ""
