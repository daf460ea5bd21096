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
from pathlib import Path

import dkim
from flask import current_app

from newsletter import outbox
from newsletter.extensions import mail


class TemporaryFailure(Exception):
    """The message could not go out now; the same message may go out later."""


class PermanentFailure(Exception):
    """The server refused this message for good (a 5xx for the recipient or data)."""


class ConnectionFailure(TemporaryFailure):
    """No message can go out on this connection now."""


# Signed even when absent, so nobody can add them later; dkimpy's default list
# leaves out List-Unsubscribe-Post, which RFC 8058 wants signed.
DKIM_HEADERS = [
    b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
    b"list-id", b"list-unsubscribe", b"list-unsubscribe-post",
]  # fmt: skip


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
    sign = dkim_signer()
    if uses_outbox():
        yield OutboxSender(sign)
        return
    smtp = mail.connect()
    try:
        smtp.host = smtp.configure_host()
    except (OSError, smtplib.SMTPException) as error:
        raise ConnectionFailure(_describe(error)) from error
    try:
        yield SMTPSender(smtp.host, envelope_sender(), sign)
    finally:
        try:
            smtp.host.quit()
        except (OSError, smtplib.SMTPException):
            smtp.host.close()


def dkim_signer():
    """A function that prepends a DKIM signature, or one that changes nothing.

    On when DKIM_SELECTOR and DKIM_PRIVATE_KEY_PATH are set. dkimpy signs in pure
    Python (about 8 ms for a 2048-bit RSA key), so at high volume signing at the
    relay (e.g. OpenDKIM) is faster.
    """
    config = current_app.config
    if not (config.get("DKIM_SELECTOR") and config.get("DKIM_PRIVATE_KEY_PATH")):
        return lambda raw: raw
    key = Path(config["DKIM_PRIVATE_KEY_PATH"]).read_bytes()
    selector = config["DKIM_SELECTOR"].encode()
    domain = (config.get("DKIM_DOMAIN") or envelope_sender().rpartition("@")[2]).encode()

    def sign(raw):
        return dkim.sign(raw, selector, domain, key, include_headers=DKIM_HEADERS) + raw

    return sign


class OutboxSender:
    def __init__(self, sign):
        self.sign = sign

    def send(self, recipient, raw_message):
        outbox.store(self.sign(raw_message))


class SMTPSender:
    def __init__(self, host, envelope_from, sign):
        self.host = host
        self.envelope_from = envelope_from
        self.sign = sign

    def send(self, recipient, raw_message):
        raw_message = self.sign(raw_message)
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
