"""A real SMTP server for the tests (aiosmtpd), which records what it receives
and can be told to refuse recipients, the way real servers do."""

import asyncio
import re
import threading
import time
from email import message_from_bytes, message_from_string, policy

from aiosmtpd.controller import Controller

from harness import free_port


class RecordingHandler:
    def __init__(self):
        self.received = []
        self.raw = []
        # time.monotonic() of each message's arrival
        self.arrived = []
        self.changed = threading.Condition()
        # Seconds to take over each message, like a slow relay.
        self.delay = 0
        # address -> list of SMTP replies to give for RCPT, used up one per attempt
        self.rcpt_replies = {}
        # address -> list of SMTP replies to give at the end of DATA, the same way
        self.data_replies = {}
        # Whether EHLO offers PIPELINING (RFC 2920), and what the client had sent
        # already, beyond MAIL FROM, when each MAIL FROM was read.
        self.pipelining = False
        self.sent_with_mail = []
        # Whether EHLO offers SMTPUTF8 (RFC 6531); the envelopes' MAIL parameters, and
        # recipients, as the server read them.
        self.smtputf8 = False
        self.mail_options = []
        self.rcpt_tos = []
        # Each received message's envelope recipient and return path, beside it in
        # ``received``.
        self.recipients = []
        self.return_paths = []

    def reset(self):
        with self.changed:
            self.received.clear()
            self.raw.clear()
            self.arrived.clear()
            self.rcpt_replies.clear()
            self.data_replies.clear()
            self.pipelining = False
            self.sent_with_mail.clear()
            self.smtputf8 = False
            self.mail_options.clear()
            self.rcpt_tos.clear()
            self.recipients.clear()
            self.return_paths.clear()
            self.delay = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        if not self.smtputf8:
            responses = [line for line in responses if line != "250-SMTPUTF8"]
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # The client's pipelined commands wait, unread, in the server's buffer.
        self.sent_with_mail.append(bytes(server._reader._buffer))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        self.mail_options.append(list(mail_options))
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        replies = self.rcpt_replies.get(address.lower())
        if replies:
            return replies.pop(0)
        envelope.rcpt_tos.append(address)
        self.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        [recipient] = envelope.rcpt_tos
        replies = self.data_replies.get(recipient.lower())
        if replies:
            return replies.pop(0)
        content = envelope.content
        if content.isascii():
            message = message_from_bytes(content, policy=policy.default)
        else:
            # SMTPUTF8 mail: its headers are UTF-8 (RFC 6532), which the bytes parser
            # would keep as escapes.
            message = message_from_string(content.decode("utf-8"), policy=policy.default)
        with self.changed:
            self.received.append(message)
            self.raw.append(envelope.content)
            self.recipients.append(recipient)
            self.return_paths.append(envelope.mail_from)
            self.arrived.append(time.monotonic())
            self.changed.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count, timeout=15):
        """Block until ``count`` messages have arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} messages, got {len(self.received)} in {timeout}s"
                    )
                self.changed.wait(left)
            return list(self.received)

    def messages_to(self, address):
        return [m for m in self.received if address in m["To"]]


class SMTPServer:
    def __init__(self, port=None, authenticator=None, tls=None, implicit_tls=False):
        self.handler = RecordingHandler()
        self.port = port or free_port()
        # With an authenticator the server offers AUTH without TLS, like a relay on
        # a private network, and judges each login with it.
        options = (
            {"authenticator": authenticator, "auth_require_tls": False} if authenticator else {}
        )
        if tls and implicit_tls:
            # TLS from the first byte (port 465's way); AUTH on it, as it is encrypted.
            options["ssl_context"] = tls
        elif tls:
            # A relay that takes nothing but EHLO before STARTTLS, and offers AUTH after.
            options.update(tls_context=tls, require_starttls=True, auth_require_tls=True)
        # SMTPUTF8 is on in the server; the handler offers it in EHLO only when told to.
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=True, **options
        )

    def start(self):
        self.controller.start()

    def stop(self):
        self.controller.stop()


def text_of(message):
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message):
    return message.get_body(preferencelist=("html",)).get_content()


def link_in(message, base_url="http://127.0.0.1:5000"):
    """The path of the first link to our site in a message's text part."""
    for word in text_of(message).split():
        if word.startswith(base_url):
            return word.removeprefix(base_url)
    raise AssertionError(f"no link to {base_url} in:\n{text_of(message)}")


def code_in(message):
    """The six-digit confirmation code in a message's text part."""
    found = re.search(r"^\s*(\d{6})\s*$", text_of(message), re.MULTILINE)
    assert found, f"no code in:\n{text_of(message)}"
    return found.group(1)
