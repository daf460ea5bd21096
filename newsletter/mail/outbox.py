"""The local outbox: where mail goes when no SMTP server is configured.

It is a Maildir (safe for many writers: each message lands by an atomic rename),
so a newcomer can read the mail in the browser at /outbox or with any mail reader.
"""

import mailbox
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

from flask import current_app


def _maildir() -> mailbox.Maildir:
    return mailbox.Maildir(current_app.config["OUTBOX_DIR"], create=True)


def store(raw_message: bytes) -> str:
    """Put one message (bytes) into the outbox and return its key."""
    return _maildir().add(raw_message)


def messages() -> list[tuple[str, EmailMessage]]:
    """All messages in the outbox, newest first, as ``(key, EmailMessage)``."""
    box = _maildir()
    found = []
    for key in box.iterkeys():
        try:
            found.append((key, message_from_bytes(box.get_bytes(key), policy=policy.default)))
        except KeyError:  # removed by somebody else while we listed
            continue
    return sorted(found, key=lambda item: _date(item[1]), reverse=True)


def message(key: str) -> EmailMessage | None:
    """One message by key, or None."""
    try:
        raw = _maildir().get_bytes(key)
    except (KeyError, ValueError):
        return None
    return message_from_bytes(raw, policy=policy.default)


def _date(msg: EmailMessage) -> float:
    try:
        return parsedate_to_datetime(msg["Date"]).timestamp()
    except (TypeError, ValueError):
        return 0.0
