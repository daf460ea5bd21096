"""How mail leaves: through the configured SMTP server, or into the local outbox.

Failures are sorted into two kinds the senders act on: a temporary one (try the
same message later) and a permanent one (this recipient will not take it).
"""

import smtplib

from flask import current_app

from newsletter import outbox
from newsletter.extensions import mail


class TemporaryFailure(Exception):
    """The message could not go out now; the same message may go out later."""


class PermanentFailure(Exception):
    """The server refused this message for good (a 5xx for the recipient or data)."""


def uses_outbox():
    return not current_app.config.get("MAIL_SERVER")


def deliver(message):
    """Send one Flask-Mail message, raising TemporaryFailure or PermanentFailure."""
    if message.has_bad_headers():
        raise PermanentFailure("a header holds a line break")
    if uses_outbox():
        outbox.store(message.as_bytes())
        return
    try:
        with mail.connect() as connection:
            connection.send(message)
    except smtplib.SMTPRecipientsRefused as refused:
        codes = [code for code, _ in refused.recipients.values()]
        raise _failure(min(codes), refused.recipients) from refused
    except (smtplib.SMTPAuthenticationError, smtplib.SMTPSenderRefused) as error:
        # Our own account or sender is at fault, not the recipient: keep the mail.
        raise TemporaryFailure(_describe(error)) from error
    except smtplib.SMTPResponseException as error:
        raise _failure(error.smtp_code, error.smtp_error) from error
    except OSError as error:  # refused connection, timeout, disconnect (SMTPException too)
        raise TemporaryFailure(_describe(error)) from error


def _failure(code, detail):
    kind = PermanentFailure if 500 <= code < 600 else TemporaryFailure
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return kind(f"{code} {detail}")


def _describe(error):
    return f"{type(error).__name__}: {error}"
