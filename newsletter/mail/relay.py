"""How mail leaves: through the configured SMTP relay, or into the local outbox.

One connection carries many messages. Where the relay offers PIPELINING (RFC 2920)
the envelope (MAIL, RCPT, DATA) goes out in one write, behind the body of the
message before it, and its three replies come back with that message's: one round
trip per message. smtplib sends a command and waits for each.

The relay's answers are sorted by what they mean, so that the sender can act:
- SubscriberRefused: the recipient is refused for good (5xx to RCPT, or 5.1.x / 5.2.x);
  it counts against the subscriber's address;
- MessageRefused: the message itself is refused (size, content, policy: 552/554 to
  DATA, 5.3.x, 5.6.x, 5.7.x); never the subscriber's fault;
- TemporaryFailure: this message may go out later (4xx);
- ConnectionFailure: the relay refused our sender or closes the connection (421);
  nothing more goes out on it now;
- RelayUnavailable, a ConnectionFailure: no session could be opened at all (no
  answer, a certificate or name that does not check out, relay_trust.py, a refused
  login); no message was tried.
"""

import re
import smtplib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol

import dkim
import idna
from flask import current_app

from newsletter.mail import outbox, relay_trust


class DeliveryFailure(Exception):
    """A message did not go out; the subclass says why and what to do."""


class TemporaryFailure(DeliveryFailure):
    """The message could not go out now; the same message may go out later."""


class ConnectionFailure(TemporaryFailure):
    """No message can go out on this connection now."""


class RelayUnavailable(ConnectionFailure):
    """No session with the relay could be opened, so no message was tried: the mail
    waits for the relay, whatever its attempts. ``failures`` counts the openings that
    failed in a row (every worker's), which sets how long it waits."""

    def __init__(self, reason: str, failures: int = 1):
        super().__init__(reason)
        self.failures = failures


class SlowDown(TemporaryFailure):
    """The recipient's mail system asks us to send to its domain more slowly: a 4.7.x
    reply that speaks of rate or volume (Gmail's, Yahoo's and Microsoft's way)."""


class SessionSlowDown(ConnectionFailure, SlowDown):
    """A 421 at a recipient: this session is over, and that domain asks us to slow down."""


class SubscriberRefused(DeliveryFailure):
    """The relay refused the recipient's address for good."""


class MessageRefused(DeliveryFailure):
    """The relay refused the message itself, whoever it was for."""


class CannotCarry(DeliveryFailure):
    """This relay cannot carry this one message: its recipient's address needs SMTPUTF8
    (RFC 6531), which the relay does not offer. Neither the subscriber's fault nor every
    message's."""


# Signed even when absent, so nobody can add them later; dkimpy's default list
# leaves out List-Unsubscribe-Post, which RFC 8058 wants signed.
DKIM_HEADERS = [
    b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
    b"list-id", b"list-unsubscribe", b"list-unsubscribe-post",
]  # fmt: skip

ENHANCED_CODE = re.compile(rb"^\s*([245])\.(\d{1,3})\.\d{1,3}\b")
# A 4.7.x is also greylisting ("451 4.7.1 Greylisted, try later"), which wants the
# message later, not the domain slower: only these words make it a request to slow down.
SLOW_DOWN_WORDS = re.compile(rb"rate|too many|volume|slow|throttl|frequen|limit", re.IGNORECASE)
SUBSCRIBER_CLASSES = {"1", "2"}
MESSAGE_CLASSES = {"3", "6", "7"}
LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)
END_OF_DATA = b".\r\n"
SMTP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True, slots=True)
class Envelope:
    """Whom the relay delivers a message to, and where it returns it if it cannot."""

    recipient: str
    # The return path (MAIL FROM): BOUNCE_ADDRESS's form for this message, or None for
    # the sender's own address.
    return_path: str | None = None


class RelaySettings(Protocol):
    """Flask-Mail's settings, as it keeps them in ``app.extensions["mail"]``."""

    server: str
    port: int | None
    username: str | None
    password: str | None
    use_tls: bool
    use_ssl: bool


class Sender(Protocol):
    def send(
        self,
        envelope: Envelope,
        raw: bytes,
        before_commit: Callable[[], None],
        next_envelope: Envelope | None = None,
    ) -> None: ...

    def cancel_next(self) -> None: ...


def uses_outbox() -> bool:
    return not current_app.config.get("MAIL_SERVER")


def envelope_sender() -> str:
    return parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1]


def sender_domain() -> str:
    return envelope_sender().rpartition("@")[2]


def dkim_enabled() -> bool:
    config = current_app.config
    return bool(config.get("DKIM_SELECTOR") and config.get("DKIM_PRIVATE_KEY_PATH"))


def dkim_domain() -> str:
    return current_app.config.get("DKIM_DOMAIN") or sender_domain()


def smtp_address(address: str) -> str:
    """The address as SMTP carries it: the domain in its IDNA2008 (UTS #46) ASCII form.

    Raises UnicodeError for a domain that has none."""
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise UnicodeError(f"the domain {domain!r} has no ASCII form: {error}") from None
    return f"{local}@{ascii_domain}"


@contextmanager
def connection() -> Iterator[Sender]:
    """A sender for many messages on one connection (see ``SMTPSender.send``)."""
    sign = dkim_signer()
    if uses_outbox():
        yield OutboxSender(sign)
        return
    try:
        sender = SMTPSender(open_session, envelope_sender(), sign)
    except (OSError, smtplib.SMTPException) as error:
        raise ConnectionFailure(_describe(error)) from error
    try:
        yield sender
    finally:
        sender.close()


def relay_name() -> str:
    """The relay as logs and /healthz name it: ``host:port``."""
    state = current_app.extensions["mail"]
    return f"{state.server}:{state.port}"


def open_session() -> smtplib.SMTP:
    """An SMTP session with Flask-Mail's settings, greeted, secured and logged in.

    A failure (no answer, a certificate that does not check out, a password that may
    not go, a refused login) is a RelayUnavailable naming the relay, and what
    /healthz reports until a session opens again."""
    relay = relay_name()
    try:
        host = _session(current_app.extensions["mail"])
    except (OSError, smtplib.SMTPException, relay_trust.PasswordRefused) as error:
        reason = f"relay {relay}: {_describe(error)}"
        failures = relay_trust.record_failure(relay, reason)
        raise RelayUnavailable(reason, failures) from error
    relay_trust.record_success(relay)
    return host


def _session(state: RelaySettings) -> smtplib.SMTP:
    """Unlike Flask-Mail's own connection it checks the relay's certificate, keeps the
    password off unencrypted connections, has a timeout (so a relay that stops
    answering cannot hold a worker forever), and is closed when the login fails."""
    encrypted = bool(state.use_tls or state.use_ssl)
    username, password = state.username or "", state.password or ""
    log_in = bool(username and password)
    if log_in:
        relay_trust.check_password_may_go(state.server, encrypted)
    context = relay_trust.tls_context() if encrypted else None
    # No port: smtplib's default for the kind of session.
    port = state.port or 0
    host: smtplib.SMTP
    if state.use_ssl:
        host = smtplib.SMTP_SSL(state.server, port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
    else:
        host = smtplib.SMTP(state.server, port, timeout=SMTP_TIMEOUT_SECONDS)
    try:
        host.ehlo()
        if state.use_tls:
            host.starttls(context=context)
            host.ehlo()
        if log_in:
            host.login(username, password)
    except BaseException:
        host.close()
        raise
    return host


def dkim_signer() -> Callable[[bytes], bytes]:
    """A function that prepends a DKIM signature, or one that changes nothing.

    On when DKIM_SELECTOR and DKIM_PRIVATE_KEY_PATH are set. dkimpy signs in pure
    Python (about 8 ms for a 2048-bit RSA key), so at high volume signing at the
    relay (e.g. OpenDKIM) is faster.
    """
    if not dkim_enabled():
        return lambda raw: raw
    config = current_app.config
    key = Path(config["DKIM_PRIVATE_KEY_PATH"]).read_bytes()
    selector = config["DKIM_SELECTOR"].encode()
    domain = dkim_domain().encode()

    def sign(raw: bytes) -> bytes:
        signature: bytes = dkim.sign(raw, selector, domain, key, include_headers=DKIM_HEADERS)
        return signature + raw

    return sign


class OutboxSender:
    def __init__(self, sign: Callable[[bytes], bytes]):
        self.sign = sign

    def send(
        self,
        envelope: Envelope,
        raw: bytes,
        before_commit: Callable[[], None],
        next_envelope: Envelope | None = None,
    ) -> None:
        signed = self.sign(raw)
        if envelope.return_path:
            # As the receiving server would write it, so that the outbox shows it.
            signed = f"Return-Path: <{envelope.return_path}>\r\n".encode() + signed
        before_commit()
        outbox.store(signed)

    def cancel_next(self) -> None:
        """Nothing goes out ahead into the outbox."""


class SMTPSender:
    """One SMTP session that sends message after message, pipelining where it can."""

    def __init__(
        self,
        open_session: Callable[[], smtplib.SMTP],
        envelope_from: str,
        sign: Callable[[bytes], bytes],
    ):
        self.open_session = open_session
        self.host: smtplib.SMTP | None = open_session()
        self.envelope_from = envelope_from
        # For an address with a non-ASCII local part, which only SMTPUTF8 carries; its
        # headers are UTF-8 too (RFC 6532), hence 8BITMIME where offered.
        eight_bit = " BODY=8BITMIME" if self.host.has_extn("8bitmime") else ""
        self.utf8_parameters = f"{eight_bit} SMTPUTF8"
        self.sign = sign
        self.pipelining = self.host.has_extn("pipelining")
        self.smtputf8 = self.host.has_extn("smtputf8")
        # An envelope sent ahead, with its MAIL and RCPT commands, whose replies are
        # still unread.
        self.announced: tuple[Envelope, bytes, bytes] | None = None

    def send(
        self,
        envelope: Envelope,
        raw: bytes,
        before_commit: Callable[[], None],
        next_envelope: Envelope | None = None,
    ) -> None:
        """Send one message; ``before_commit`` is called just before the relay can take
        it (before its body goes out): the caller makes sure the previous message is
        recorded there, having overlapped that record with this message's envelope.

        ``next_envelope``, when the caller will send it next on this connection:
        with PIPELINING its envelope goes out behind this message's body, in the same
        write (RFC 2920 lets message content start a group of commands), so each
        message costs one round trip, not two. A caller that then does not send it
        calls ``cancel_next``."""
        try:
            if self.announced is not None and self.announced[0] == envelope:
                mail_from, rcpt_to = self.announced[1:]
            else:
                self.cancel_next()
                mail_from, rcpt_to = self._commands(envelope)
            body = self._dot_stuffed(self.sign(raw))
        except Exception:
            self.cancel_next()
            raise
        try:
            self._check_envelope(*self._envelope_replies(mail_from, rcpt_to))
            # The relay cannot take the message before it has it: the caller's previous
            # record has had the envelope's round trip to complete. Body, final line and
            # the next envelope go in one write (a small second write waits for a
            # delayed ACK).
            before_commit()
            ahead, self.announced = self._ahead(next_envelope)
            self._live_host.send(body + END_OF_DATA + ahead)
            code, detail = self._live_host.getreply()
        except OSError as error:  # timeouts, resets, disconnects (SMTPException is one too)
            self._drop()
            raise ConnectionFailure(_describe(error)) from error
        if code != 250:
            raise _refusal(code, detail, stage="DATA")

    def cancel_next(self) -> None:
        """Take back the envelope sent ahead. A relay that answered its DATA waits for
        a message that will not come, and only the end of the session ends that: the
        session is closed, and the next message opens another."""
        if self.announced is None:
            return
        self.announced = None
        try:
            replies = [self._live_host.getreply() for _ in range(3)]
            if replies[2][0] != 354:
                self._live_host.rset()
                return
        except OSError:
            pass
        self._drop()

    def close(self) -> None:
        if self.host is None or self.announced is not None:
            self._drop()
            return
        try:
            self.host.quit()
        except OSError:
            self._drop()

    @property
    def _live_host(self) -> smtplib.SMTP:
        """The session commands go to. Only a dropped session has none, and the next
        message's ``_envelope_replies`` opens one before anything is said."""
        if self.host is None:
            raise ConnectionFailure("the session was closed")
        return self.host

    def _drop(self) -> None:
        """Close the session without a word: the relay discards a message it has not
        had whole. The next message opens another session."""
        if self.host is not None:
            self.host.close()
        self.host = None
        self.announced = None

    def _commands(self, envelope: Envelope) -> tuple[bytes, bytes]:
        """The MAIL FROM and RCPT TO lines for an envelope."""
        try:
            address = smtp_address(envelope.recipient)
        except UnicodeError as error:
            raise SubscriberRefused(f"the address cannot be written for SMTP: {error}") from None
        return_path = envelope.return_path or self.envelope_from
        if address.isascii():
            return (
                f"MAIL FROM:<{return_path}>\r\n".encode(),
                f"RCPT TO:<{address}>\r\n".encode("ascii"),
            )
        if not self.smtputf8:
            raise CannotCarry(
                "the address needs SMTPUTF8 (RFC 6531), which the relay does not offer"
            )
        return (
            f"MAIL FROM:<{return_path}>{self.utf8_parameters}\r\n".encode(),
            f"RCPT TO:<{address}>\r\n".encode(),
        )

    def _envelope_replies(self, mail_from: bytes, rcpt_to: bytes) -> list[tuple[int, bytes]]:
        commands = (mail_from, rcpt_to, b"DATA\r\n")
        if self.announced is not None:
            self.announced = None
            return [self._live_host.getreply() for _ in commands]
        if self.host is None:
            self.host = self.open_session()
        if self.pipelining:
            self.host.send(b"".join(commands))
            return [self.host.getreply() for _ in commands]
        return self._one_at_a_time(commands)

    def _ahead(
        self, next_envelope: Envelope | None
    ) -> tuple[bytes, tuple[Envelope, bytes, bytes] | None]:
        """The next message's envelope, to go out now, and what it announces; or nothing."""
        if not (self.pipelining and next_envelope):
            return b"", None
        try:
            mail_from, rcpt_to = self._commands(next_envelope)
        except DeliveryFailure:
            return b"", None
        return mail_from + rcpt_to + b"DATA\r\n", (next_envelope, mail_from, rcpt_to)

    def _one_at_a_time(self, commands: tuple[bytes, ...]) -> list[tuple[int, bytes]]:
        replies: list[tuple[int, bytes]] = []
        for command in commands:
            if replies and replies[-1][0] >= 400:
                replies.append((503, b"not sent: an earlier command failed"))
                continue
            self._live_host.send(command)
            replies.append(self._live_host.getreply())
        return replies

    def _check_envelope(
        self,
        mail_reply: tuple[int, bytes],
        rcpt_reply: tuple[int, bytes],
        data_reply: tuple[int, bytes],
    ) -> None:
        """Raise the failure the replies to MAIL, RCPT and DATA mean, after putting the
        session back where the next message can start."""
        if mail_reply[0] == 250 and rcpt_reply[0] in (250, 251) and data_reply[0] == 354:
            return
        if data_reply[0] == 354:
            # The relay went on to DATA without a recipient: end that message empty.
            self._live_host.send(b".\r\n")
            self._live_host.getreply()
        code, detail = mail_reply
        if code == 421:
            self._drop()
            raise ConnectionFailure(f"421 {_text(detail)}")
        if 421 in (rcpt_reply[0], data_reply[0]):
            _code, said = rcpt_reply if rcpt_reply[0] == 421 else data_reply
            self._drop()
            raise SessionSlowDown(f"421 {_text(said)}")
        self._reset()
        if code != 250:
            # Our own sender is refused: no message can go out on this connection.
            raise ConnectionFailure(f"MAIL FROM refused: {code} {_text(detail)}")
        if rcpt_reply[0] not in (250, 251):
            raise _refusal(*rcpt_reply, stage="RCPT")
        raise _refusal(*data_reply, stage="DATA")

    def _reset(self) -> None:
        try:
            self._live_host.rset()
        except (OSError, smtplib.SMTPException) as error:
            raise ConnectionFailure(_describe(error)) from error

    @staticmethod
    def _dot_stuffed(raw: bytes) -> bytes:
        """The message as DATA carries it, but for the line that ends it."""
        if not raw.endswith(b"\r\n"):
            raw += b"\r\n"
        if raw.startswith(b".") or b"\n." in raw:
            raw = LEADING_DOT.sub(b"..", raw)
        return raw


def _refusal(code: int, detail: bytes, stage: str) -> DeliveryFailure:
    """The failure an SMTP refusal means: the enhanced status code decides where there
    is one, the command it answered where not."""
    text = f"{code} {_text(detail)}"
    if code == 421:
        return ConnectionFailure(text)
    enhanced = ENHANCED_CODE.match(detail or b"")
    subject = enhanced.group(2).decode() if enhanced else None
    if code < 500:
        if subject == "7" and SLOW_DOWN_WORDS.search(detail or b""):
            return SlowDown(text)
        return TemporaryFailure(text)
    if subject in SUBSCRIBER_CLASSES:
        return SubscriberRefused(text)
    if subject in MESSAGE_CLASSES or stage == "DATA":
        return MessageRefused(text)
    return SubscriberRefused(text)


def _text(detail: object) -> str:
    if isinstance(detail, bytes):
        return detail.decode("utf-8", "replace")
    return str(detail)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
