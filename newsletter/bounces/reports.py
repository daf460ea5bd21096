"""What a message that came back to us says, as feedback Reports (feedback.py).

The inbound listener keeps every message sent to a signed VERP form of
BOUNCE_ADDRESS, to its feedback-loop form (``bounces+fbl@``, the address registered
with Yahoo's and Microsoft's complaint feedback loops) and to a signed form of
LIST_UNSUBSCRIBE_MAILTO (mail/mailto.py); this reads one:

- a delivery status notification (RFC 3464: multipart/report, report-type
  delivery-status) from the null sender: each recipient whose Action is failed is a
  hard bounce (5.x.x) or a soft one (4.x.x); delayed, delivered, relayed and expanded
  say nothing about the subscriber;
- a plain-text bounce from the null sender of an MTA that writes no such report
  (Exim's, qmail's: plain_bounces.py);
- a complaint report (ARF, RFC 5965: report-type feedback-report) of Feedback-Type
  abuse: a complaint;
- any mail to an unsubscribe address but automatic ones: an unsubscribe of the subscriber
  (and newsletter) its token names, whoever the mail says it is from.

Anything else (replies, auto-replies, junk, reports that say nothing usable) is
ignored, with the reason for the admin. Only what we signed names the subscriber: the
VERP address the report came back to, the return path it quotes, the signed
Message-ID of our message it returns, or our unsubscribe link in that message's
List-Unsubscribe. The addresses a report gives are kept for the admin and name
nobody: anybody can write them.
"""

import re
from dataclasses import dataclass
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage, Message
from email.utils import parseaddr

from flask import current_app

from newsletter.bounces import plain_bounces
from newsletter.bounces.feedback import Report
from newsletter.bounces.models import FeedbackKind
from newsletter.mail import mailto, return_path

BOUNCES = "bounces"
UNSUBSCRIBE = "unsubscribe"
# The +suffix of BOUNCE_ADDRESS to register with providers' complaint feedback loops.
FEEDBACK_LOOP = "fbl"
ENHANCED_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
HTTP_LINK = re.compile(r"<(https?://[^>\s]+)>")
ORIGINAL_PARTS = ("message/rfc822", "text/rfc822-headers")


@dataclass(frozen=True)
class Reading:
    reports: tuple[Report, ...] = ()
    # Why nothing came of the message, when nothing did.
    ignored: str | None = None


@dataclass(frozen=True)
class Original:
    """What a report quotes of the message we sent."""

    message_id: str | None = None
    unsubscribe_url: str | None = None


def addressed_to(address: str) -> str | None:
    """BOUNCES or UNSUBSCRIBE for an address that can be ours (a signed VERP form of
    BOUNCE_ADDRESS or its feedback-loop form; a signed form of LIST_UNSUBSCRIBE_MAILTO),
    in any case; None for any other, the bare addresses and made-up suffixes among them."""
    suffix = return_path.plus_suffix(address, current_app.config["BOUNCE_ADDRESS"])
    if suffix is not None and (
        suffix.lower() == FEEDBACK_LOOP or return_path.read_token(suffix) is not None
    ):
        return BOUNCES
    if mailto.read(address) is not None:
        return UNSUBSCRIBE
    return None


def read(raw: bytes, mail_from: str, rcpt_to: str, fallback_reference: str) -> Reading:
    """What the message says; ``fallback_reference`` stands for its Message-ID when it
    has none (a report's reference is that and its recipient)."""
    message = message_from_bytes(raw, policy=policy.default)
    reference = str(message["Message-ID"] or "").strip() or fallback_reference
    if addressed_to(rcpt_to) == UNSUBSCRIBE:
        return _unsubscribe_request(message, mail_from, rcpt_to, reference)
    report_type = str(message.get_param("report-type", "")).lower()
    if message.get_content_type() == "multipart/report" and report_type == "delivery-status":
        return _delivery_status(message, mail_from, rcpt_to, reference)
    if message.get_content_type() == "multipart/report" and report_type == "feedback-report":
        return _feedback_report(message, rcpt_to, reference)
    if not mail_from and (bounce := plain_bounces.read(message)) is not None:
        return _plain_bounce(bounce, rcpt_to, reference)
    if _is_automatic(message):
        return Reading(ignored=f"an automatic reply (Auto-Submitted: {_auto_submitted(message)})")
    return Reading(ignored="neither a delivery report, a complaint report nor a bounce")


def _unsubscribe_request(
    message: EmailMessage, mail_from: str, rcpt_to: str, reference: str
) -> Reading:
    """RFC 2369: a subscriber's mail client writes to the address their email carried, whose
    token names them; ``From:`` is anybody's to write and never counts. Bounces and
    automatic replies that reach this address are no one's request."""
    if not mail_from:
        return Reading(ignored="mail to the unsubscribe address from the null sender")
    if _is_automatic(message):
        return Reading(ignored="an automatic reply to the unsubscribe address")
    sender = parseaddr(str(message["From"] or ""))[1] or mail_from
    return Reading(
        (
            Report(
                FeedbackKind.UNSUBSCRIBE,
                "mailto",
                f"{reference} {rcpt_to}",
                unsubscribe_address=rcpt_to,
                detail=f"written from {sender}",
            ),
        )
    )


def _delivery_status(
    message: EmailMessage, mail_from: str, rcpt_to: str, reference: str
) -> Reading:
    if mail_from:
        return Reading(ignored=f"a delivery report not from the null sender but {mail_from}")
    status_part = _part(message, "message/delivery-status")
    if status_part is None:
        return Reading(ignored="a delivery report without its message/delivery-status part")
    original = _original(message)
    reports: list[Report] = []
    actions: list[str] = []
    # The first block is about the message, each one after it about one recipient.
    for fields in _held(status_part)[1:]:
        action = str(fields.get("Action", "")).strip().lower()
        status = _enhanced_status(fields.get("Status"))
        actions.append(action or "no action")
        if action != "failed" or status is None or status[0] == "2":
            continue
        address = _recipient(fields.get("Original-Recipient") or fields.get("Final-Recipient"))
        kind = FeedbackKind.HARD_BOUNCE if status[0] == "5" else FeedbackKind.SOFT_BOUNCE
        reports.append(
            Report(
                kind,
                "dsn",
                f"{reference} {address or rcpt_to}",
                return_path=rcpt_to,
                message_id=original.message_id,
                unsubscribe_url=original.unsubscribe_url,
                address=address,
                status=status,
                detail=_one_line(fields.get("Diagnostic-Code")),
            )
        )
    if not reports:
        return Reading(ignored=f"a delivery report of no failure ({', '.join(actions) or 'empty'})")
    return Reading(tuple(reports))


def _feedback_report(message: EmailMessage, rcpt_to: str, reference: str) -> Reading:
    fields = _fields(_part(message, "message/feedback-report"))
    if fields is None:
        return Reading(ignored="a complaint report without its message/feedback-report part")
    feedback_type = str(fields.get("Feedback-Type", "")).strip().lower()
    if feedback_type != "abuse":
        return Reading(ignored=f"a feedback report of type {feedback_type or 'none'}, not abuse")
    original = _original(message)
    # Providers redact the recipient; the return path it quotes names them as well.
    quoted_return_path = str(fields.get("Original-Mail-From", "")).strip()
    address = _recipient(fields.get("Original-Rcpt-To"))
    report = Report(
        FeedbackKind.COMPLAINT,
        "arf",
        f"{reference} {rcpt_to}",
        return_path=rcpt_to if return_path.read(rcpt_to) else quoted_return_path,
        message_id=original.message_id,
        unsubscribe_url=original.unsubscribe_url,
        address=address,
        detail=_one_line(fields.get("User-Agent")),
    )
    return Reading((report,))


def _plain_bounce(bounce: plain_bounces.Bounce, rcpt_to: str, reference: str) -> Reading:
    if not bounce.failures:
        return Reading(ignored="a bounce that names no failed address (a delay warning)")
    return Reading(
        tuple(
            Report(
                FeedbackKind.HARD_BOUNCE if failure.permanent else FeedbackKind.SOFT_BOUNCE,
                "bounce",
                f"{reference} {failure.address}",
                return_path=rcpt_to,
                message_id=bounce.message_id,
                address=failure.address,
                status=failure.status,
                detail=failure.detail,
            )
            for failure in bounce.failures
        )
    )


def _part(message: EmailMessage, content_type: str) -> Message | None:
    return next((p for p in message.walk() if p.get_content_type() == content_type), None)


def _held(part: Message) -> list[Message]:
    """The messages a message/* part holds, as the stdlib parses it (a
    message/delivery-status part: one per block of fields)."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return []
    return [held for held in payload if isinstance(held, Message)]


def _fields(part: Message | None) -> Message | None:
    """The header fields a message/* report part holds."""
    if part is None:
        return None
    if part.is_multipart():
        return next(iter(_held(part)), None)
    return message_from_string(str(part.get_payload()), policy=policy.default)


def _original(message: EmailMessage) -> Original:
    """What the report quotes of our message: its headers or the whole of it."""
    part = next((p for p in message.walk() if p.get_content_type() in ORIGINAL_PARTS), None)
    if part is None:
        return Original()
    if part.get_content_type() == "message/rfc822":
        headers = next(iter(_held(part)), None)
        if headers is None:
            return Original()
    else:
        headers = message_from_string(part.get_content(), policy=policy.default)
    links = HTTP_LINK.findall(str(headers.get("List-Unsubscribe", "")))
    return Original(
        message_id=str(headers.get("Message-ID", "")).strip() or None,
        unsubscribe_url=links[0] if links else None,
    )


def _enhanced_status(value: object) -> str | None:
    found = ENHANCED_STATUS.search(str(value or ""))
    return found and found[1]


def _recipient(value: object) -> str | None:
    """The address of a recipient field (``rfc822; ann@example.org``)."""
    address = str(value or "").rpartition(";")[2].strip().strip("<>")
    return address if "@" in address else None


def _one_line(value: object) -> str | None:
    return " ".join(str(value).split()) or None if value else None


def _auto_submitted(message: EmailMessage) -> str:
    return str(message.get("Auto-Submitted", "no")).strip().lower()


def _is_automatic(message: EmailMessage) -> bool:
    """RFC 3834's Auto-Submitted, and the headers of responders that leave it off."""
    return (
        _auto_submitted(message) != "no"
        or "X-Autoreply" in message
        or "X-Autorespond" in message
        or str(message.get("Precedence", "")).strip().lower() in {"auto_reply", "bulk", "junk"}
    )
