"""The sending engine through real workers and a real SMTP server: a bad message
fails alone, the relay's answers are read for what they mean, the envelope is
pipelined where the relay allows it, and the worker says what it did."""

import logging
import re
import smtplib
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from bench.sink import Sink
from harness import free_port
from newsletter.content import digests
from newsletter.content.models import Digest, DigestStatus, Subscription
from newsletter.extensions import db
from newsletter.mail import relay
from newsletter.sending import email_jobs
from newsletter.sending.models import Delivery, EmailJob, EmailKind, JobStatus
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import (
    FEED,
    add_subscribers,
    after_one_more_email,
    digest_state,
    wait_until,
    wait_until_sent,
)
from tests.smtp import SMTPServer, text_of
from workers.tasks import send_email_jobs, start_digest

# A row no message can be built for: its domain has no IDNA form (a joiner out of
# context). The sign-up form would refuse it; a row written by an older version, an
# import or a hand might not.
POISON = "poison@a\u200db.example.org"


def add_poison(app, status):
    with app.app_context():
        poison = Subscriber(
            email=POISON,
            status=status,
            signup_source="test",
            subscriptions=[Subscription(newsletter_id=1)],
        )
        db.session.add(poison)
        if status == SubscriberStatus.PENDING:
            db.session.add(EmailJob(kind=EmailKind.CONFIRMATION, subscriber=poison))
        db.session.commit()


def jobs_by_address(app):
    with app.app_context():
        rows = db.session.execute(select(Subscriber.email, EmailJob).join(EmailJob.subscriber))
        return {email: (job.status, job.attempts, job.last_error) for email, job in rows}


def test_a_confirmation_that_cannot_be_built_fails_alone_and_the_other_49_go_out_once(
    app, client, smtp, start_worker_for, caplog, without_welcome_email
):
    addresses = [f"reader{n}@example.org" for n in range(49)]
    for address in addresses[:25]:
        assert client.post("/api/subscribe", json={"email": address}).status_code == 202
    add_poison(app, SubscriberStatus.PENDING)
    for address in addresses[25:]:
        assert client.post("/api/subscribe", json={"email": address}).status_code == 202
    start_worker_for(app)
    send_email_jobs.delay()

    smtp.wait_for(49, timeout=20)
    wait_until(lambda: jobs_by_address(app)[POISON][0] == JobStatus.FAILED)
    assert sorted(m["To"] for m in after_one_more_email(app, smtp)) == sorted(addresses)
    _, attempts, error = jobs_by_address(app)[POISON]
    assert attempts == 1
    assert error.startswith("could not be built: UnicodeError")
    assert {s for s, _, _ in jobs_by_address(app).values()} == {JobStatus.SENT, JobStatus.FAILED}
    built = [r for r in caplog.records if "could not be built" in r.getMessage()]
    assert built
    assert built[0].levelno == logging.ERROR
    assert built[0].exc_info


def test_a_digest_copy_that_cannot_be_built_fails_alone_and_the_other_49_go_out_once(
    make_app, smtp, start_worker_for, runner
):
    app = make_app(DIGEST_BATCH_SIZE=50)
    app.test_cli_runner().invoke(args=["import-feed", FEED])
    subscribers = add_subscribers(app, 25, prefix="early")
    add_poison(app, SubscriberStatus.CONFIRMED)
    subscribers |= add_subscribers(app, 24, prefix="late")
    with app.app_context():
        digest_id = digests.create_digest("Poison").id
        digests.schedule(digest_id)
    start_worker_for(app)
    start_digest.delay(digest_id)

    progress = wait_until_sent(app, digest_id)
    assert progress == {"pending": 0, "sent": 49, "failed": 1, "skipped": 0}
    assert sorted(m["To"] for m in after_one_more_email(app, smtp)) == sorted(subscribers)
    with app.app_context():
        failed = db.session.scalar(select(Delivery).where(Delivery.status == "failed"))
        assert failed.attempts == 1
        assert failed.last_error.startswith("could not be built")


def test_an_idna2008_domain_is_mailed_in_its_own_ascii_form(app, client, smtp, worker):
    """The stdlib codec (IDNA 2003) refuses this domain; UTS #46 gives its A-label."""
    client.post("/subscribe", data={"email": "x@אבג1.com"})
    [message] = smtp.wait_for(1)
    assert message["To"] == "x@xn--1-zhcde.com"


def sent_copies(app, digest_id):
    return digest_state(app, digest_id)[1]


@pytest.mark.parametrize("pipelining", [False, True], ids=["stepwise", "pipelined"])
def test_a_refusal_of_the_message_fails_the_copy_and_never_counts_against_the_reader(
    make_app, smtp, start_worker_for, pipelining
):
    smtp.pipelining = pipelining
    app = make_app(BOUNCE_LIMIT=1)
    app.test_cli_runner().invoke(args=["import-feed", FEED])
    add_subscribers(app, 4)
    smtp.data_replies["reader1@example.org"] = ["554 5.6.0 Message content rejected"]
    smtp.rcpt_replies["reader2@example.org"] = ["550 5.7.1 Relaying denied by policy"]
    smtp.rcpt_replies["reader3@example.org"] = ["550 5.1.1 No such user"]
    start_worker_for(app)
    digest_id = int(app.test_cli_runner().invoke(args=["send-digest"]).output)

    assert wait_until_sent(app, digest_id) == {"pending": 0, "sent": 1, "failed": 3, "skipped": 0}
    with app.app_context():
        status = dict(db.session.execute(select(Subscriber.email, Subscriber.status)).all())
    assert status["reader1@example.org"] == SubscriberStatus.CONFIRMED
    assert status["reader2@example.org"] == SubscriberStatus.CONFIRMED
    assert status["reader3@example.org"] == SubscriberStatus.BOUNCED


@pytest.mark.parametrize("pipelining", [False, True], ids=["stepwise", "pipelined"])
def test_when_the_relay_refuses_every_copy_the_digest_pauses_and_says_why(
    make_app, smtp, start_worker_for, admin, pipelining
):
    smtp.pipelining = pipelining
    app = make_app(DIGEST_BATCH_SIZE=10)
    app.test_cli_runner().invoke(args=["import-feed", FEED])
    subscribers = add_subscribers(app, 10)
    for subscriber in subscribers:
        smtp.data_replies[subscriber] = ["552 5.3.4 Message too big for system"]
    start_worker_for(app)
    digest_id = int(app.test_cli_runner().invoke(args=["send-digest"]).output)

    wait_until(lambda: digest_state(app, digest_id)[0] == DigestStatus.PAUSED)
    assert sent_copies(app, digest_id) == {"pending": 7, "sent": 0, "failed": 3, "skipped": 0}
    with app.app_context():
        assert db.session.get(Digest, digest_id).paused_reason.startswith("552 5.3.4")
        assert set(db.session.scalars(select(Subscriber.hard_bounces))) == {0}
        waiting = db.session.scalars(select(Delivery).where(Delivery.status == "pending"))
        assert {delivery.attempts for delivery in waiting} == {0}
    # With pipelining the fourth envelope had gone out: it was taken back, not sent.
    assert smtp.received == []


def test_when_the_relay_refuses_three_emails_in_a_row_the_run_stops_and_the_rest_wait(app, smtp):
    addresses = [f"reader{number}@example.org" for number in range(5)]
    for address in addresses[:3]:
        smtp.data_replies[address] = ["554 5.7.1 Rejected by policy"]
    with app.app_context():
        for address in addresses:
            subscriber = Subscriber(
                email=address,
                signup_source="test",
                subscriptions=[Subscription(newsletter_id=1)],
            )
            db.session.add_all(
                [subscriber, EmailJob(kind=EmailKind.CONFIRMATION, subscriber=subscriber)]
            )
        db.session.commit()
        report = email_jobs.send_due_jobs()

    assert report.stopped.startswith("554 5.7.1")
    assert (report.sent, report.failed, report.handed_back) == (0, 3, 2)
    # The next run, not this one, tries the rest, each on its own again.
    assert report.retry_in is not None
    jobs = jobs_by_address(app)
    assert [jobs[address][0] for address in addresses] == ["failed"] * 3 + ["queued"] * 2
    assert {jobs[address][1] for address in addresses[3:]} == {0}
    assert smtp.received == []


def test_a_421_or_a_4xx_backs_off_and_the_email_goes_out_later(
    app, client, smtp, worker, without_welcome_email
):
    smtp.rcpt_replies["later@example.org"] = ["421 4.3.2 Service shutting down"]
    smtp.data_replies["later@example.org"] = ["452 4.3.1 Insufficient storage"]
    client.post("/subscribe", data={"email": "later@example.org"})
    [message] = smtp.wait_for(1, timeout=30)
    assert message["To"] == "later@example.org"
    wait_until(lambda: jobs_by_address(app)["later@example.org"][0] == JobStatus.SENT)
    _, attempts, error = jobs_by_address(app)["later@example.org"]
    assert attempts == 3
    assert error.startswith("452")


def test_with_pipelining_the_envelope_goes_out_in_one_write(
    app, client, smtp, worker, without_welcome_email
):
    smtp.pipelining = True
    for n in range(3):
        client.post("/subscribe", data={"email": f"piped{n}@example.org"})
    smtp.wait_for(3)
    assert all(b"RCPT TO:<piped" in sent and b"DATA\r\n" in sent for sent in smtp.sent_with_mail)


def test_without_pipelining_each_command_waits_for_its_reply(app, client, smtp, worker):
    client.post("/subscribe", data={"email": "stepwise@example.org"})
    smtp.wait_for(1)
    assert smtp.sent_with_mail == [b""]


def test_the_worker_log_has_a_line_for_each_batch(app, client, smtp, start_worker_process):
    worker = start_worker_process(app)
    client.post("/subscribe", data={"email": "logged@example.org"})
    smtp.wait_for(1, timeout=30)
    wait_until(lambda: b"email batch: claimed 1, sent 1" in worker.log.read_bytes())
    line = re.search(rb".*email batch: claimed 1.*", worker.log.read_bytes())[0]
    assert b"INFO" in line
    assert re.search(rb"in \d+ ms", line)


def test_the_worker_log_warns_when_the_relay_refuses_the_connection(make_app, start_worker_process):
    port = free_port()
    app = make_app(MAIL_PORT=port)
    worker = start_worker_process(app, env={"MAIL_PORT": str(port)})
    app.test_client().post("/subscribe", data={"email": "waiting@example.org"})
    wait_until(lambda: b"the relay is unavailable" in worker.log.read_bytes(), timeout=30)
    line = re.search(rb".*the relay is unavailable.*", worker.log.read_bytes())[0]
    assert b"WARNING" in line
    assert b"ConnectionRefusedError" in line


def test_a_refused_login_is_a_warning_and_the_email_waits(make_app, start_worker_for, caplog):
    server = SMTPServer(authenticator=lambda *_: AuthResult(success=False, handled=False))
    server.start()
    try:
        app = make_app(MAIL_PORT=server.port, MAIL_USERNAME="news", MAIL_PASSWORD="wrong")
        start_worker_for(app)
        app.test_client().post("/subscribe", data={"email": "patient@example.org"})
        wait_until(lambda: "535" in (jobs_by_address(app)["patient@example.org"][2] or ""))
    finally:
        server.stop()
    assert jobs_by_address(app)["patient@example.org"][0] == JobStatus.QUEUED
    warnings = [r for r in caplog.records if "the relay is unavailable" in r.getMessage()]
    assert warnings
    assert warnings[0].levelno == logging.WARNING
    assert "SMTPAuthenticationError" in warnings[0].getMessage()
    assert server.handler.received == []


@pytest.mark.skipif(not Path("/usr/sbin/smtp-sink").exists(), reason="Postfix is not installed")
def test_postfix_smtp_sink_takes_300_messages_each_envelope_sent_ahead():
    """Against Postfix's own sink, which offers PIPELINING; refusals are tried against
    aiosmtpd above, which can be told to refuse."""
    sink = Sink()
    sessions = []

    def open_session():
        sessions.append(smtplib.SMTP("127.0.0.1", sink.port, timeout=10))
        sessions[-1].ehlo()
        return sessions[-1]

    sender = relay.SMTPSender(open_session, "news@example.org", sign=lambda raw: raw)
    try:
        assert sender.pipelining
        settled = []
        raw = b"Subject: hello\r\n\r\n.a line that starts with a dot\r\n" + b"text\r\n" * 200
        for number in range(300):
            following = relay.Envelope(f"r{number + 1}@example.org") if number < 299 else None
            envelope = relay.Envelope(f"r{number}@example.org")
            sender.send(envelope, raw, lambda: settled.append(1), following)
            if number == 149:
                # The envelope of r150 went out with r149; taking it back ends the
                # session (its DATA was answered), and r150 goes out on a new one.
                sender.cancel_next()
        assert sink.wait_for(300, timeout=20)
        assert len(settled) == 300
        assert len(sessions) == 2
    finally:
        sender.close()
        sink.stop()
    # The sink answered the QUIT and exited, its output read to the end: no message
    # came after the 300th.
    assert sink.count == 300


@pytest.mark.parametrize("pipelining", [False, True], ids=["stepwise", "pipelined"])
def test_a_non_ascii_local_part_goes_out_with_smtputf8_when_the_relay_offers_it(
    app, client, smtp, worker, pipelining, without_welcome_email
):
    smtp.smtputf8 = True
    smtp.pipelining = pipelining
    client.post("/api/subscribe", json={"email": "ascii@example.org"})
    answer = client.post("/api/subscribe", json={"email": "José@Bücher.example", "name": 'Ré "Q"'})
    assert answer.status_code == 202
    client.post("/api/subscribe", json={"email": "after@example.org"})

    messages = smtp.wait_for(3)
    utf8 = [m for m in messages if "josé" in str(m["To"])]
    assert len(utf8) == 1
    [to] = utf8[0]["To"].addresses
    assert (to.display_name, to.addr_spec) == ('Ré "Q"', "josé@xn--bcher-kva.example")
    assert "josé@xn--bcher-kva.example" in smtp.rcpt_tos
    options = dict(zip(smtp.rcpt_tos, smtp.mail_options, strict=True))
    assert "SMTPUTF8" in options["josé@xn--bcher-kva.example"]
    assert options["ascii@example.org"] == []
    assert "/confirm/" in text_of(utf8[0])


def test_without_smtputf8_such_an_address_fails_alone_and_says_why(
    app, client, smtp, worker, without_welcome_email
):
    for address in ["before@example.org", "josé@example.org", "after@example.org"]:
        client.post("/api/subscribe", json={"email": address})
    smtp.wait_for(2)
    wait_until(lambda: jobs_by_address(app)["josé@example.org"][0] == JobStatus.FAILED)
    assert sorted(m["To"] for m in smtp.received) == ["after@example.org", "before@example.org"]
    _, attempts, error = jobs_by_address(app)["josé@example.org"]
    assert attempts == 1
    assert error == "the address needs SMTPUTF8 (RFC 6531), which the relay does not offer"
    with app.app_context():
        subscriber = db.session.scalar(
            select(Subscriber).where(Subscriber.email == "josé@example.org")
        )
        assert (subscriber.status, subscriber.hard_bounces) == (SubscriberStatus.PENDING, 0)
