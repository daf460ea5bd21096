"""Fast tests of the pure parts: reading SMTP answers, SMTP's byte rules, message
building, tokens, retry delays and pacing. No worker, no mail server."""

import itertools
from email import message_from_bytes, policy

import pytest

from newsletter.core import tokens
from newsletter.core.models import new_token_nonce
from newsletter.mail import mime, relay
from newsletter.mail.transactional import build_confirmation
from newsletter.sending import leases, pacing
from newsletter.sending.outcomes import Tally, Verdict
from newsletter.subscribers.models import SubscriberSnapshot


@pytest.mark.parametrize(
    ("code", "detail", "stage", "meaning"),
    [
        (550, b"5.1.1 No such user", "RCPT", relay.SubscriberRefused),
        (552, b"5.2.2 Mailbox full", "DATA", relay.SubscriberRefused),
        (550, b"Unknown recipient", "RCPT", relay.SubscriberRefused),
        (550, b"5.7.1 Relaying denied", "RCPT", relay.MessageRefused),
        (554, b"5.7.1 Spam detected", "DATA", relay.MessageRefused),
        (552, b"Message size exceeds fixed limit", "DATA", relay.MessageRefused),
        (554, b"5.6.0 Bad content", "RCPT", relay.MessageRefused),
        (552, b"5.3.4 Message too big", "DATA", relay.MessageRefused),
        (421, b"4.3.2 Shutting down", "RCPT", relay.ConnectionFailure),
        (451, b"4.7.1 Greylisted", "RCPT", relay.TemporaryFailure),
        (421, b"4.7.0 Messages deferred due to unexpected volume", "RCPT", relay.ConnectionFailure),
        (451, b"4.7.28 Our system has detected an unusual rate of mail", "RCPT", relay.SlowDown),
        (452, b"4.7.0 Too many messages, slow down", "DATA", relay.SlowDown),
        (452, b"4.3.1 Insufficient storage", "DATA", relay.TemporaryFailure),
    ],
)
def test_an_smtp_refusal_means_what_its_codes_say(code, detail, stage, meaning):
    failure = relay._refusal(code, detail, stage)
    assert type(failure) is meaning
    assert str(failure).startswith(str(code))


def test_a_421_or_a_4xx_is_never_a_bounce():
    assert not issubclass(relay.TemporaryFailure, relay.SubscriberRefused)
    assert issubclass(relay.ConnectionFailure, relay.TemporaryFailure)


def test_lines_starting_with_a_dot_are_doubled_and_the_message_ends_with_a_lone_dot():
    assert relay.SMTPSender._dot_stuffed(b"a\r\n.b\r\n..c") == b"a\r\n..b\r\n...c\r\n"
    assert relay.SMTPSender._dot_stuffed(b".\r\n") == b"..\r\n"
    assert relay.SMTPSender._dot_stuffed(b"plain\r\n") == b"plain\r\n"
    assert relay.END_OF_DATA == b".\r\n"


def test_no_quoted_printable_line_starts_with_a_dot():
    encoded = mime.qp(".starts\n" + "x" * 73 + ".com and more text after it")
    assert not encoded.startswith(b".")
    assert b"\n." not in encoded
    assert max(len(line) for line in encoded.split(b"\r\n")) <= 76


def test_a_domain_goes_to_smtp_in_its_idna2008_ascii_form():
    assert relay.smtp_address("ann@faß.de") == "ann@xn--fa-hia.de"
    assert relay.smtp_address("x@βόλος.com") == "x@xn--nxasmm1c.com"
    assert relay.smtp_address("ann@example.org") == "ann@example.org"
    with pytest.raises(UnicodeError):
        relay.smtp_address("ann@☃.com")


def test_quoted_printable_keeps_every_character_and_short_lines():
    text = "Grüße, 東京 — " + "long line " * 20
    encoded = mime.qp(text)
    assert max(len(line) for line in encoded.split(b"\r\n")) <= 76
    message = message_from_bytes(
        b'Content-Type: text/plain; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + encoded,
        policy=policy.default,
    )
    assert message.get_content().rstrip("\n") == text


def test_a_confirmation_email_is_well_formed_and_keeps_its_message_id(app):
    subscriber = SubscriberSnapshot(7, "ann@example.org", "Ann Ñandú", "nonce", "pending")
    with app.test_request_context():
        raw = build_confirmation(subscriber, "<confirmation.3@localhost>")
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Message-ID"] == "<confirmation.3@localhost>"
    assert message["To"] == "Ann Ñandú <ann@example.org>"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "ann@example.org" in text
    assert "/confirm/" in text


def test_tokens_are_bound_to_their_purpose_and_refuse_tampering(app):
    with app.app_context():
        token = tokens.make_token_for(tokens.CONFIRM, "nonce")
        assert tokens.read_token(tokens.CONFIRM, token) == "nonce"
        with pytest.raises(tokens.TokenInvalid):
            tokens.read_token(tokens.UNSUBSCRIBE, token)
        # The signature's first character holds six whole bits: any other one changes it.
        head, signature = token.rsplit(".", 1)
        other = "A" if signature[0] != "A" else "B"
        with pytest.raises(tokens.TokenInvalid):
            tokens.read_token(tokens.CONFIRM, f"{head}.{other}{signature[1:]}")
        with pytest.raises(tokens.TokenExpired):
            tokens.read_token(tokens.CONFIRM, token, max_age=-1)


def test_a_token_names_no_row_id_and_links_of_the_old_form_still_work(app):
    with app.app_context():
        nonce = new_token_nonce()
        token = tokens.make_token_for(tokens.UNSUBSCRIBE, nonce)
        payload = tokens._serializer(tokens.UNSUBSCRIBE).loads_unsafe(token)[1]
        assert payload == nonce
        old_form = tokens._serializer(tokens.UNSUBSCRIBE).dumps([4711, nonce])
        assert tokens.read_token(tokens.UNSUBSCRIBE, old_form) == nonce
        for payload in [[4711], 4711, "", {"a": 1}]:
            forged = tokens._serializer(tokens.UNSUBSCRIBE).dumps(payload)
            with pytest.raises(tokens.TokenInvalid):
                tokens.read_token(tokens.UNSUBSCRIBE, forged)


def test_tokens_made_together_are_the_tokens_made_one_by_one(app):
    with app.app_context():
        made = tokens.make_tokens_for([tokens.UNSUBSCRIBE, tokens.PREFERENCES], "nonce")
        for purpose, token in made.items():
            assert tokens.read_token(purpose, token) == "nonce"
            assert (
                token.rsplit(".", 2)[0] == tokens.make_token_for(purpose, "nonce").rsplit(".", 2)[0]
            )


def test_retry_delays_grow_with_jitter_and_stop_at_an_hour(app):
    with app.app_context():
        base = app.config["SEND_RETRY_BASE_SECONDS"]
        for attempts in range(1, 6):
            delay = leases.retry_delay(attempts)
            assert 0.5 * base * 2 ** (attempts - 1) <= delay <= 1.5 * base * 2 ** (attempts - 1)
        assert leases.retry_delay(40) <= 1.5 * leases.MAX_RETRY_DELAY


class FakeClock:
    """Wall-clock time that moves only when the code under test sleeps, or a test says."""

    def __init__(self):
        self.now = 1_000_000.0

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(pacing, "time", fake)
    return fake


def test_a_booking_gives_each_message_a_slot_of_its_own(clock):
    booking = pacing.Booking(size=3, start=clock.now + pacing.LEAD_SECONDS, interval=0.05)
    moments = []
    while booking.take_turn():
        moments.append(clock.now)
    assert len(moments) == 3
    assert [round(b - a, 9) for a, b in itertools.pairwise(moments)] == [0.05, 0.05]


def test_a_late_message_pushes_the_rest_later_and_what_no_longer_fits_goes_back(clock):
    booking = pacing.Booking(size=3, start=clock.now, interval=0.05)
    assert booking.take_turn()
    clock.now += 0.12  # the relay took that long over the first message
    assert not booking.take_turn()

    # Three slots of 0.1 s booked from 0.15 s ago: only one whole slot is left.
    late = pacing.Booking(size=3, start=clock.now - 0.15, interval=0.1)
    assert late.take_turn()
    assert not late.take_turn()


def test_an_unlimited_booking_never_waits(clock):
    booking = pacing.Booking.unlimited(1000)
    started = clock.now
    assert all(booking.take_turn() for _ in range(1000))
    assert clock.now == started


def test_a_tally_counts_each_verdict_under_its_own_name():
    tally = Tally()
    for verdict in [Verdict.SENT, Verdict.SENT, Verdict.RETRY, Verdict.HANDED_BACK]:
        tally.count(verdict)
    assert (tally.sent, tally.retried, tally.handed_back, tally.failed) == (2, 1, 1, 0)
