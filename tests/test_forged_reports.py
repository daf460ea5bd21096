"""Forged reports change nobody: a subscriber who knows only their own copy of a digest
(or nothing at all) sends made-up bounces, complaints and unsubscribes to the real
inbound listener, and no other subscriber is bounced, suppressed or unsubscribed; the
genuine reports, which carry what we signed, still act. The listener also takes
little: a few recipients per message, each message once, a few messages per
connection, a few connections and messages per client address a minute."""

import base64
import smtplib
import string

import pytest
from flask_migrate import downgrade, upgrade
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from newsletter.bounces import listener
from newsletter.bounces.models import FeedbackEvent, InboundMessage
from newsletter.content.models import Subscription
from newsletter.core.models import SuppressedAddress
from newsletter.core.row_ids import MAX_ROW_ID
from newsletter.extensions import db
from newsletter.mail import mailto, return_path
from newsletter.subscribers.models import ConsentEvent, Subscriber, SubscriberStatus
from tests.helpers import add_subscribers, send_digest, status_of, wait_until
from tests.helpers.inbound import BOUNCES, FEEDBACK_LOOP, UNSUBSCRIBE, copies_of

BASE32 = string.ascii_lowercase + "234567"
DSN = """\
From: MAILER-DAEMON@mx.example.net
To: {to}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

Your message could not be delivered.

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {address}
Action: failed
Status: 5.1.1

--b
Content-Type: text/rfc822-headers

Return-Path: <{return_path}>
To: {address}
Message-ID: {message_id}
List-Unsubscribe: <{unsubscribe_url}>

--b--
"""
ARF = """\
From: feedback@arf.example.net
To: {to}
Subject: complaint
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b"

--b
Content-Type: text/plain

An abuse report.

--b
Content-Type: message/feedback-report

Feedback-Type: abuse
Version: 1
Original-Mail-From: <{return_path}>
Original-Rcpt-To: {address}

--b
Content-Type: text/rfc822-headers

To: {address}
Message-ID: {message_id}
List-Unsubscribe: <{unsubscribe_url}>

--b--
"""
MAILTO = """\
From: Reader <{address}>
To: {to}
Subject: unsubscribe
Message-ID: <{message_id}@mail.example.net>

Please unsubscribe me.
"""


@pytest.fixture
def inbound_app(make_app):
    # Generated forgeries come from one address in a burst: the per-address limits
    # have a test of their own.
    return make_app(
        BOUNCE_ADDRESS=BOUNCES,
        LIST_UNSUBSCRIBE_MAILTO=UNSUBSCRIBE,
        INBOUND_CONNECTIONS_PER_MINUTE=10_000,
        INBOUND_MESSAGES_PER_MINUTE=10_000,
    )


def everything_about_subscribers(app):
    """What a report could change: each subscriber's status, every suppression and every
    choice of a newsletter."""
    with app.app_context():
        state = (
            db.session.execute(select(Subscriber.email, Subscriber.status)).all(),
            db.session.scalars(select(SuppressedAddress.address_hash)).all(),
            db.session.execute(
                select(Subscription.subscriber_id, Subscription.newsletter_id, Subscription.active)
            ).all(),
            db.session.scalars(select(ConsentEvent.id)).all(),
        )
        db.session.rollback()
        return state


def all_processed(app):
    with app.app_context():
        waiting = db.session.scalars(
            select(InboundMessage.id).where(InboundMessage.processed_at.is_(None))
        ).all()
        db.session.rollback()
        return not waiting


def outcomes(app):
    with app.app_context():
        found = db.session.scalars(select(InboundMessage.outcome).order_by(InboundMessage.id))
        rows = list(found)
        db.session.rollback()
        return rows


def deliver(port, sender, recipients, text):
    """Send over SMTP; the recipients the listener refused, with their replies. A
    message none of whose recipients is taken is not sent at all."""
    data = text.replace("\n", "\r\n").encode()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        try:
            return client.sendmail(sender, recipients, data)
        except smtplib.SMTPRecipientsRefused as refused:
            return refused.recipients


def test_forged_reports_change_nobody_and_genuine_ones_act(
    inbound_app, smtp, start_worker_for, start_listener
):
    """subscriber0 knows their own copy of the digest and tries to remove the others."""
    start_worker_for(inbound_app)
    add_subscribers(inbound_app, 5)
    digest_id = send_digest(inbound_app, "Weekly")
    copies = copies_of(smtp)
    mine, ann, bob, cy = (copies[f"reader{n}@example.org"] for n in range(4))
    port = start_listener(inbound_app)
    with inbound_app.app_context():
        ids = dict(db.session.execute(select(Subscriber.email, Subscriber.id)).all())
    before = everything_about_subscribers(inbound_app)

    # The bare addresses, a made-up token and a tampered one are refused at RCPT.
    tampered = mine.return_path.replace(mine.return_path[10:14], "aaaa")
    tampered_mailto = mine.unsubscribe_address.replace(mine.unsubscribe_address[14:18], "aaaa")
    for to in [BOUNCES, UNSUBSCRIBE, "bounces+x@news.example", tampered, tampered_mailto]:
        [(code, reply)] = deliver(port, "", [to], "Subject: x\n\nx\n").values()
        assert (code, reply[:5]) == (550, b"5.1.1")
    # To the feedback-loop address, quoting the others by the sequential Message-IDs
    # of old mail, their addresses and a tampered unsubscribe link.
    for subscriber in [ann, bob, cy]:
        quoted = {
            "to": FEEDBACK_LOOP,
            "address": subscriber.address,
            "return_path": BOUNCES,
            "message_id": f"<digest.{digest_id}.0.{ids[subscriber.address]}@localhost>",
            "unsubscribe_url": subscriber.unsubscribe_url[:-3],
        }
        assert deliver(port, "", [FEEDBACK_LOOP], DSN.format(**quoted)) == {}
        assert deliver(port, "", [FEEDBACK_LOOP], ARF.format(**quoted)) == {}
    # Their own mailto address, claiming to be another subscriber: From never counts.
    claim = {"to": mine.unsubscribe_address, "address": ann.address, "message_id": "m1"}
    assert deliver(port, ann.address, [mine.unsubscribe_address], MAILTO.format(**claim)) == {}
    wait_until(lambda: all_processed(inbound_app))

    assert status_of(inbound_app, mine.address) == SubscriberStatus.UNSUBSCRIBED
    after = everything_about_subscribers(inbound_app)
    assert [row for row in after[0] if row[0] != mine.address] == [
        row for row in before[0] if row[0] != mine.address
    ]
    assert after[1] == before[1] == [], "nobody suppressed"
    reports = outcomes(inbound_app)
    assert (
        reports[:6]
        == ["hard_bounce 5.1.1 for no known reader", "complaint for no known reader"] * 3
    )
    with inbound_app.app_context():
        # Workers process the messages in any order: only the mailto names anybody (its sender).
        kept = db.session.scalars(select(FeedbackEvent.subscriber_id)).all()
        assert sorted(kept, key=str) == [ids[mine.address]] + [None] * 6, (
            "kept for the admin, naming nobody"
        )

    # The genuine ones act: a bounce to ann's return path, a complaint quoting only
    # bob's Message-ID, cy's own mailto address.
    genuine = {"address": ann.address, "unsubscribe_url": "", "message_id": "<x@mx>"}
    deliver(port, "", [ann.return_path], DSN.format(to=ann.return_path, return_path="", **genuine))
    quoted = {"address": "redacted@example.net", "return_path": "", "unsubscribe_url": ""}
    complaint = ARF.format(to=FEEDBACK_LOOP, message_id=bob.message_id, **quoted)
    deliver(port, "feedback@arf.example.net", [FEEDBACK_LOOP], complaint)
    request = MAILTO.format(to=cy.unsubscribe_address, address=cy.address, message_id="m2")
    deliver(port, cy.address, [cy.unsubscribe_address], request)
    wait_until(lambda: all_processed(inbound_app))
    assert status_of(inbound_app, ann.address) == SubscriberStatus.BOUNCED
    assert status_of(inbound_app, bob.address) == SubscriberStatus.COMPLAINED
    assert status_of(inbound_app, cy.address) == SubscriberStatus.UNSUBSCRIBED
    with inbound_app.app_context():
        # As the one-click link in a digest does: off that digest's newsletter.
        left = db.session.execute(
            select(ConsentEvent.newsletter_id, ConsentEvent.source).where(
                ConsentEvent.subscriber_id == ids[cy.address]
            )
        ).all()
        assert left == [(1, "mailto")]

    smtp.reset()
    send_digest(inbound_app, "Next")
    assert set(smtp.recipients) == {"reader4@example.org"}


# What an attacker can make up: recipients at our domain, quoted Message-IDs with
# sequential ids, subscribers' addresses, made-up tokens.
tokens_made_up = st.text(BASE32, min_size=1, max_size=60)
recipients = st.one_of(
    st.sampled_from([BOUNCES, UNSUBSCRIBE, FEEDBACK_LOOP, "Bounces@News.Example"]),
    tokens_made_up.map(lambda token: f"bounces+{token}@news.example"),
    tokens_made_up.map(lambda token: f"unsubscribe+{token}@news.example"),
)
subscribers = st.integers(0, 3).map(lambda n: f"reader{n}@example.org")
message_ids = st.one_of(
    st.builds(
        "<digest.{}.{}.{}@localhost>".format,
        st.integers(1, 3),
        st.integers(0, 2),
        st.integers(1, 5),
    ),
    st.builds(
        "<{}.{}@localhost>".format, st.sampled_from(["confirmation", "welcome"]), st.integers(1, 9)
    ),
    tokens_made_up.map(lambda token: f"<{token}@localhost>"),
)
forgeries = st.fixed_dictionaries(
    {
        "template": st.sampled_from([DSN, ARF, MAILTO]),
        # Half to the feedback-loop address, the one that takes mail without a token.
        "to": st.one_of(st.just(FEEDBACK_LOOP), recipients),
        "address": subscribers,
        "message_id": message_ids,
        "return_path": st.one_of(st.just(BOUNCES), recipients),
        "unsubscribe_url": tokens_made_up.map(lambda t: f"http://127.0.0.1:5000/unsubscribe/{t}"),
        "sender": st.one_of(st.just(""), subscribers),
    }
)


def test_generated_forgeries_through_the_listener_change_no_reader(
    inbound_app, start_worker_for, start_listener
):
    start_worker_for(inbound_app)
    add_subscribers(inbound_app, 4)
    port = start_listener(inbound_app)
    before = everything_about_subscribers(inbound_app)

    @settings(
        max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(forgeries)
    def forged_report_changes_nothing(forgery):
        text = forgery["template"].format(**forgery)
        refused = deliver(port, forgery["sender"], [forgery["to"]], text)
        if forgery["to"].lower() != FEEDBACK_LOOP:
            # Only the feedback-loop address is taken without a signed token.
            assert refused[forgery["to"]][0] == 550
        wait_until(lambda: all_processed(inbound_app))
        assert everything_about_subscribers(inbound_app) == before

    forged_report_changes_nothing()
    with inbound_app.app_context():
        named = db.session.scalars(select(FeedbackEvent.subscriber_id)).all()
        # Reports were read, and named nobody.
        assert named
        assert set(named) == {None}


def test_a_message_names_a_few_recipients_and_is_stored_once(inbound_app, start_listener):
    add_subscribers(inbound_app, listener.MAX_RECIPIENTS + 1)
    with inbound_app.app_context():
        nonces = db.session.scalars(select(Subscriber.token_nonce).order_by(Subscriber.id)).all()
        paths = [return_path.for_message(nonce, return_path.DIGEST, 1) for nonce in nonces]
    port = start_listener(inbound_app)
    refused = deliver(port, "", paths, "Subject: hello\n\nhello\n")
    assert refused == {paths[-1]: (452, b"4.5.3 Too many recipients")}
    with inbound_app.app_context():
        [row] = db.session.scalars(select(InboundMessage)).all()
        assert row.rcpt_to.split(", ") == paths[:-1]

    lmtp_port = start_listener(inbound_app, lmtp=True)
    with smtplib.LMTP("127.0.0.1", lmtp_port, timeout=10) as client:
        client.ehlo()
        client.mail("")
        for path in paths[:2]:
            client.rcpt(path)
        # LMTP answers for each recipient (RFC 2033): both name the one row.
        answers = [client.data(b"Subject: hello\r\n\r\nhello\r\n"), client.getreply()]
    assert answers == [(250, b"2.0.0 Stored as inbound message 2")] * 2
    with inbound_app.app_context():
        assert len(db.session.scalars(select(InboundMessage.id)).all()) == 2


def test_a_connection_carries_a_few_messages(inbound_app, start_listener):
    port = start_listener(inbound_app)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        for _ in range(listener.MESSAGES_PER_CONNECTION):
            client.sendmail("", [FEEDBACK_LOOP], b"Subject: hello\r\n\r\nhello\r\n")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("", [FEEDBACK_LOOP], b"Subject: one more\r\n\r\nhello\r\n")
    assert refused.value.smtp_code == 421


def test_one_client_address_gets_a_few_connections_and_messages_a_minute(make_app, start_listener):
    app = make_app(
        BOUNCE_ADDRESS=BOUNCES, INBOUND_CONNECTIONS_PER_MINUTE=4, INBOUND_MESSAGES_PER_MINUTE=2
    )
    port = start_listener(app)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        for _ in range(2):
            client.sendmail("", [FEEDBACK_LOOP], b"Subject: hello\r\n\r\nhello\r\n")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("", [FEEDBACK_LOOP], b"Subject: third\r\n\r\nhello\r\n")
    assert refused.value.smtp_code == 421
    # The listener's own start-up check was one connection, this test's first another.
    smtplib.SMTP("127.0.0.1", port, timeout=10).quit()
    smtplib.SMTP("127.0.0.1", port, timeout=10).quit()
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", port, timeout=10)
    assert refused.value.smtp_code == 421
    with app.app_context():
        assert len(db.session.scalars(select(InboundMessage.id)).all()) == 2


def test_a_message_past_the_size_limit_is_refused(inbound_app, start_listener):
    port = start_listener(inbound_app)
    body = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * (
        listener.MAX_MESSAGE_BYTES // 1000 + 1
    )
    # Refused at MAIL by the size it declares (SIZE, RFC 1870), before any of it comes.
    with (
        smtplib.SMTP("127.0.0.1", port, timeout=30) as client,
        pytest.raises(smtplib.SMTPSenderRefused) as refused,
    ):
        client.sendmail("", [FEEDBACK_LOOP], body)
    assert refused.value.smtp_code == 552
    with inbound_app.app_context():
        assert db.session.scalars(select(InboundMessage.id)).all() == []


def test_mailto_tokens_name_the_reader_and_newsletter_and_fit_a_local_part(inbound_app):
    add_subscribers(inbound_app, 1)
    with inbound_app.app_context():
        nonce = db.session.scalar(select(Subscriber.token_nonce))
        for newsletter_id in (None, 1, MAX_ROW_ID):
            address = mailto.address_for(nonce, newsletter_id)
            local = address.partition("@")[0]
            assert len(local) <= 64
            assert mailto.read(address.upper()) == mailto.Unsubscribe(nonce, newsletter_id)
        # A return path's token, the same subscriber's, unsubscribes nobody.
        verp = return_path.for_message(nonce, return_path.DIGEST, 1)
        assert mailto.read(verp.replace("bounces+", "unsubscribe+")) is None


def test_the_migration_keeps_inbound_messages_both_ways(unmigrated_app):
    recipients = ", ".join([f"bounces+{'a' * 47}@news.example"] * listener.MAX_RECIPIENTS)
    insert = text(
        "INSERT INTO inbound_message (received_at, mail_from, rcpt_to, raw) "
        "VALUES ('2026-12-01', '', :rcpt_to, :raw)"
    )
    with unmigrated_app.app_context():
        upgrade(revision="0032")
        db.session.execute(insert, {"rcpt_to": recipients, "raw": b"Subject: x\r\n\r\nx\r\n"})
        db.session.commit()
        downgrade(revision="0031")
        # Cut to the old width rather than lost.
        assert db.session.scalar(text("SELECT rcpt_to FROM inbound_message")) == recipients[:320]
        db.session.commit()
        upgrade()
        assert db.session.scalar(text("SELECT count(*) FROM inbound_message")) == 1
        db.session.remove()
        db.engine.dispose()


def test_signed_names_outlive_a_key_rotation_and_no_longer_a_dropped_key(make_app):
    ours = {"BOUNCE_ADDRESS": BOUNCES, "LIST_UNSUBSCRIBE_MAILTO": UNSUBSCRIBE}
    before = make_app(**ours)
    add_subscribers(before, 1)
    with before.app_context():
        nonce = db.session.scalar(select(Subscriber.token_nonce))
        message_id = return_path.message_id(nonce, return_path.DIGEST, 7, "localhost")
        unsubscribe = mailto.address_for(nonce, 1)
    old_key = before.config["SECRET_KEY"]
    # SECRET_KEY is a list: the first key signs, every one verifies.
    rotated = make_app(**ours, SECRET_KEY=f"a new key,{old_key}")
    with rotated.app_context():
        assert return_path.read_message_id(message_id) == return_path.Reference(
            nonce, return_path.DIGEST, 7
        )
        assert mailto.read(unsubscribe) == mailto.Unsubscribe(nonce, 1)
        # The new key signs what is sent from now on.
        assert return_path.message_id(nonce, return_path.DIGEST, 7, "localhost") != message_id
    dropped = make_app(**ours, SECRET_KEY="a new key")
    with dropped.app_context():
        assert return_path.read_message_id(message_id) is None
        assert mailto.read(unsubscribe) is None


def test_a_token_shows_no_row_id_and_reads_back_what_it_names(app):
    nonce = "ab" * return_path.NONCE_BYTES
    with app.app_context():
        for row_id in (1, 2, 3):
            made = return_path.token(nonce, return_path.DIGEST, row_id)
            raw = base64.b32decode(made.upper() + "=" * (-len(made) % 8))
            assert raw[: return_path.NONCE_BYTES].hex() == nonce
            assert raw[return_path.NONCE_BYTES :][:5] != return_path.DIGEST + row_id.to_bytes(
                4, "big"
            )
            assert return_path.read_token(made) == return_path.Reference(
                nonce, return_path.DIGEST, row_id
            )


@pytest.mark.parametrize(
    ("setting", "longest"), [("BOUNCE_ADDRESS", 16), ("LIST_UNSUBSCRIBE_MAILTO", 18)]
)
def test_an_address_whose_token_would_pass_a_local_parts_64_characters_stops_the_app(
    make_app, setting, longest
):
    make_app(**{setting: f"{'b' * longest}@x.example"})
    with pytest.raises(ValueError, match=f"{setting}: .* {longest} characters at most"):
        make_app(**{setting: f"{'b' * (longest + 1)}@x.example"})
