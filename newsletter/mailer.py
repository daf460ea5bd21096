"""How mail leaves: through the configured SMTP server, or into the local outbox.

One connection carries many messages (a digest batch reuses it for all of its
recipients). Failures are sorted into the kinds the senders act on:
- PermanentFailure: this recipient or message is refused for good (5xx);
- TemporaryFailure: this message may go out later (4xx);
- ConnectionFailure: the server is unreachable or dropped us; nothing more goes
  out on this connection, and every message not yet sent should wait.
"""

import smtplib
from contextlib import contextmanager
from email.utils import parseaddr

from flask import current_app

from newsletter import outbox
from newsletter.extensions import mail


class TemporaryFailure(Exception):
    """The message could not go out now; the same message may go out later."""


class PermanentFailure(Exception):
    """The server refused this message for good (a 5xx for the recipient or data)."""


class ConnectionFailure(TemporaryFailure):
    """No message can go out on this connection now."""


def uses_outbox():
    return not current_app.config.get("MAIL_SERVER")


def envelope_sender():
    return parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1]


def smtp_address(address):
    """The address as SMTP carries it: an internationalized domain in its ASCII form."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"


@contextmanager
def connection():
    """A sender for many messages: ``sender.send(recipient, raw_bytes)``."""
    if uses_outbox():
        yield OutboxSender()
        return
    smtp = mail.connect()
    try:
        smtp.host = smtp.configure_host()
    except (OSError, smtplib.SMTPException) as error:
        raise ConnectionFailure(_describe(error)) from error
    try:
        yield SMTPSender(smtp.host, envelope_sender())
    finally:
        try:
            smtp.host.quit()
        except (OSError, smtplib.SMTPException):
            smtp.host.close()


class OutboxSender:
    def send(self, recipient, raw_message):
        outbox.store(raw_message)


class SMTPSender:
    def __init__(self, host, envelope_from):
        self.host = host
        self.envelope_from = envelope_from

    def send(self, recipient, raw_message):
        try:
            self.host.sendmail(self.envelope_from, [smtp_address(recipient)], raw_message)
        except smtplib.SMTPRecipientsRefused as refused:
            [(code, reply)] = refused.recipients.values()
            raise _failure(code, reply) from refused
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPSenderRefused) as error:
            # Our own account or sender is refused: no message can go out now.
            raise ConnectionFailure(_describe(error)) from error
        except smtplib.SMTPServerDisconnected as error:
            raise ConnectionFailure(_describe(error)) from error
        except smtplib.SMTPResponseException as error:
            if error.smtp_code == 421:  # the server is closing the connection
                raise ConnectionFailure(_describe(error)) from error
            raise _failure(error.smtp_code, error.smtp_error) from error
        except OSError as error:  # timeouts, resets (SMTPException is an OSError too)
            raise ConnectionFailure(_describe(error)) from error


def _failure(code, detail):
    kind = PermanentFailure if 500 <= code < 600 else TemporaryFailure
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return kind(f"{code} {detail}")


def _describe(error):
    return f"{type(error).__name__}: {error}"
