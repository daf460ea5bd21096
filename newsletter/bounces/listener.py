"""The inbound listener: an SMTP server (or LMTP, for an MTA's transport) that takes
mail only for addresses that can be ours: a VERP form of BOUNCE_ADDRESS whose token
verifies, the feedback-loop address ``bounces+fbl@`` (reports.py), and a signed
form of LIST_UNSUBSCRIBE_MAILTO (mail/mailto.py). Every other recipient, the bare
addresses and made-up ``+suffixes`` among them, is refused with 550 5.1.1.

Nobody needs to send us much, so little is taken: MAX_RECIPIENTS per message,
MESSAGES_PER_CONNECTION per connection, INBOUND_CONNECTIONS_PER_MINUTE and
INBOUND_MESSAGES_PER_MINUTE per client address (counted in this process's memory),
MAX_MESSAGE_BYTES per message. Refusals beyond a message's recipients are temporary
(4xx): a real MTA tries again later, a flood gets nowhere.

Each message is committed to the database, once whatever its recipients, before it
is answered 250, so a listener killed at any moment loses nothing it acknowledged; a
worker then processes it (inbound.py). When the database cannot take it, the answer
is 451: the sending MTA keeps the message and tries again.
"""

import asyncio
import logging
import time
from collections import deque
from typing import cast

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from newsletter.bounces import inbound

log = logging.getLogger(__name__)

# Bounces return our digests (tens of KB), complaint reports too: far below this.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
# A bounce or a report is addressed to one return path; a few leave room for an MTA
# that groups them, and none for a flood of made-up ones.
MAX_RECIPIENTS = 5
MESSAGES_PER_CONNECTION = 20
WINDOW_SECONDS = 60.0
# Past this many client addresses, those idle for a window are forgotten.
TRACKED_ADDRESSES = 10_000
TOO_MANY_CONNECTIONS = b"421 4.7.0 Too many connections from your address, try again later\r\n"


class PerMinute:
    """How often each client address did something in the last minute, and whether it
    may once more. The listener's event loop is its only caller: no lock."""

    def __init__(self, limit: int):
        self.limit = limit
        self.seen: dict[str, deque[float]] = {}

    def allow(self, host: str) -> bool:
        now = time.monotonic()
        times = self.seen.setdefault(host, deque())
        while times and times[0] <= now - WINDOW_SECONDS:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        if len(self.seen) > TRACKED_ADDRESSES:
            self.seen = {
                host: times for host, times in self.seen.items() if times[-1] > now - WINDOW_SECONDS
            }
        return True


def _host(peer: object) -> str:
    return peer[0] if isinstance(peer, tuple) and peer else str(peer)


class InboundHandler:
    """aiosmtpd's handler: the database work runs in a thread, off the event loop."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.connections = PerMinute(app.config["INBOUND_CONNECTIONS_PER_MINUTE"])
        self.messages = PerMinute(app.config["INBOUND_MESSAGES_PER_MINUTE"])

    async def handle_MAIL(
        self,
        server: "GuardedSMTP",
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        server.messages_sent += 1
        if server.messages_sent > MESSAGES_PER_CONNECTION:
            return _closing(server, "421 4.7.0 Too many messages on one connection")
        if not self.messages.allow(_host(session.peer)):
            log.warning("inbound: too many messages from %s, refused for now", session.peer)
            return _closing(server, "421 4.7.0 Too many messages from your address")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self.app.app_context():
            accepted = inbound.accepts(address)
        if not accepted:
            return "550 5.1.1 No such recipient here"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            inbound_id = await asyncio.to_thread(
                self._store, envelope.mail_from, envelope.rcpt_tos, envelope.original_content
            )
        except SQLAlchemyError as error:
            log.warning("inbound message not stored, the sender will try again: %s", error)
            reply = "451 4.3.0 Cannot store the message now, try again later"
        else:
            reply = f"250 2.0.0 Stored as inbound message {inbound_id}"
        # LMTP answers once per recipient (RFC 2033), SMTP once for all.
        return "\r\n".join([reply] * len(envelope.rcpt_tos)) if isinstance(server, LMTP) else reply

    def _store(self, mail_from: str | None, rcpt_tos: list[str], raw: bytes | None) -> int:
        # aiosmtpd gives the null sender as "<>"; we keep it as "".
        sender = mail_from if mail_from and mail_from != "<>" else ""
        with self.app.app_context():
            # DATA always carries content: aiosmtpd calls this once it has it.
            return inbound.store(sender, list(rcpt_tos), raw or b"")


def _closing(server: SMTP, reply: str) -> str:
    """A 421 reply, after which the connection closes (RFC 5321 4.2.2)."""
    if server.transport is not None:
        asyncio.get_running_loop().call_soon(server.transport.close)
    return f"{reply}, try again later"


class GuardedSMTP(SMTP):
    """An SMTP server that greets an address which opened too many connections this
    minute with 421 and hangs up, before reading anything from it. aiosmtpd makes one
    for each connection: it counts that connection's messages."""

    messages_sent = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        if self.event_handler.connections.allow(_host(peer)):
            super().connection_made(transport)
            return
        log.warning("inbound: too many connections from %s, refused for now", peer)
        # A stream's transport writes; aiosmtpd's signature names only its base class.
        cast(asyncio.Transport, transport).write(TOO_MANY_CONNECTIONS)
        transport.close()

    # A refused connection never started a session: nothing of it to wind down.
    def connection_lost(self, error: Exception | None) -> None:
        if self.session is not None:
            super().connection_lost(error)

    def eof_received(self) -> bool | None:
        return super().eof_received() if self.session is not None else False


class GuardedLMTP(GuardedSMTP, LMTP):
    """The same, speaking LMTP (RFC 2033), for an MTA's transport."""


class InboundController(Controller):
    """The listener on its own thread and event loop (aiosmtpd's controller)."""

    def __init__(self, app: Flask, host: str, port: int, lmtp: bool = False) -> None:
        super().__init__(
            InboundHandler(app), hostname=host, port=port, data_size_limit=MAX_MESSAGE_BYTES
        )
        self.protocol: type[GuardedSMTP] = GuardedLMTP if lmtp else GuardedSMTP

    def factory(self) -> GuardedSMTP:
        return self.protocol(self.handler, **self.SMTP_kwargs)
