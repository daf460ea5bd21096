"""The inbound listener: an SMTP server (or LMTP, for an MTA's transport) that takes
mail for BOUNCE_ADDRESS, its VERP forms and LIST_UNSUBSCRIBE_MAILTO, and refuses
every other recipient with 550 5.1.1.

Each message is committed to the database before it is answered 250, so a listener
killed at any moment loses nothing it acknowledged; a worker then processes it
(inbound.py). When the database cannot take it, the answer is 451: the sending MTA
keeps the message and tries again.
"""

import asyncio
import logging

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP
from sqlalchemy.exc import SQLAlchemyError

from newsletter import inbound

log = logging.getLogger(__name__)

# Bounces return our digests (tens of KB), complaint reports too: far below this.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


class InboundHandler:
    """aiosmtpd's handler: the database work runs in a thread, off the event loop."""

    def __init__(self, app):
        self.app = app

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.app.app_context():
            accepted = inbound.accepts(address)
        if not accepted:
            return "550 5.1.1 No such recipient here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server, session, envelope):
        try:
            ids = await asyncio.to_thread(
                self._store, envelope.mail_from, envelope.rcpt_tos, envelope.original_content
            )
        except SQLAlchemyError as error:
            log.warning("inbound message not stored, the sender will try again: %s", error)
            replies = ["451 4.3.0 Cannot store the message now, try again later"]
            replies *= len(envelope.rcpt_tos)
        else:
            replies = [f"250 2.0.0 Stored as inbound message {inbound_id}" for inbound_id in ids]
        # LMTP answers once per recipient (RFC 2033), SMTP once for all.
        return "\r\n".join(replies) if isinstance(server, LMTP) else replies[0]

    def _store(self, mail_from, rcpt_tos, raw):
        # aiosmtpd gives the null sender as "<>"; we keep it as "".
        null_sender = mail_from in {None, "<>"}
        with self.app.app_context():
            return inbound.store("" if null_sender else mail_from, list(rcpt_tos), raw)


class InboundController(Controller):
    """The listener on its own thread and event loop (aiosmtpd's controller)."""

    def __init__(self, app, host, port, lmtp=False):
        super().__init__(
            InboundHandler(app), hostname=host, port=port, data_size_limit=MAX_MESSAGE_BYTES
        )
        self.protocol = LMTP if lmtp else SMTP

    def factory(self):
        return self.protocol(self.handler, **self.SMTP_kwargs)
