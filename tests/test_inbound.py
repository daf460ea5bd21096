"""The inbound listener: bounces, complaint reports and unsubscribes by mail, sent to it
over SMTP, are stored before they are answered, processed once by a real worker into
feedback, and the next digest skips exactly the subscribers they were about."""

import logging
import smtplib
import socket
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from string import Template

import pytest
from sqlalchemy import func, select

from harness import free_port
from newsletter.bounces import feedback, inbound, reports
from newsletter.bounces.models import FeedbackEvent, FeedbackKind, InboundMessage
from newsletter.core import tokens
from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.mail import mailto, return_path
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import (
    PROJECT_ROOT,
    add_subscribers,
    log_in,
    process_env,
    send_digest,
    status_of,
    wait_until,
)
from tests.helpers.inbound import BOUNCES, FEEDBACK_LOOP, UNSUBSCRIBE, Copy, copies_of
from workers.tasks import sweep

CORPUS = Path(__file__).parent / "data" / "bounces"
YAHOO = "feedback@arf.mail.yahoo.example"
# Who sends a fixture and to which of our addresses.
NULL, SUBSCRIBER = "", "reader"
VERP, MAILTO = "verp", "mailto"
HARD, SOFT = FeedbackKind.HARD_BOUNCE, FeedbackKind.SOFT_BOUNCE
COMPLAINT, UNSUBSCRIBED = FeedbackKind.COMPLAINT, FeedbackKind.UNSUBSCRIBE


@dataclass(frozen=True)
class Case:
    fixture: str
    sender: str
    to: str
    # The report it makes (kind, status), or why it is ignored.
    kind: FeedbackKind | None = None
    status: str | None = None
    ignored: str | None = None


CASES = [
    Case("postfix_hard", NULL, VERP, HARD, "5.1.1"),
    Case("postfix_soft", NULL, VERP, SOFT, "4.2.2"),
    Case("exim", NULL, VERP, HARD, "5.1.1"),
    Case("qmail", NULL, VERP, HARD, "5.1.1"),
    Case("exchange_ndr", NULL, VERP, HARD, "5.1.10"),
    Case("gmail", NULL, VERP, HARD, "5.1.1"),
    Case("postfix_delayed", NULL, VERP, ignored="a delivery report of no failure (delayed)"),
    Case("yahoo_arf_return_path", YAHOO, FEEDBACK_LOOP, COMPLAINT),
    Case("yahoo_arf_list_unsubscribe", YAHOO, FEEDBACK_LOOP, COMPLAINT),
    Case("microsoft_arf_message_id", "staff@hotmail.example", FEEDBACK_LOOP, COMPLAINT),
    Case(
        "auto_reply", SUBSCRIBER, VERP, ignored="an automatic reply (Auto-Submitted: auto-replied)"
    ),
    Case("malformed_report", NULL, VERP, ignored="a delivery report of no failure (no action)"),
    Case("mailto_unsubscribe", SUBSCRIBER, MAILTO, UNSUBSCRIBED),
]
SKIPPED_BY = {HARD, COMPLAINT, UNSUBSCRIBED}


@pytest.fixture
def inbound_app(make_app):
    return make_app(BOUNCE_ADDRESS=BOUNCES, LIST_UNSUBSCRIBE_MAILTO=UNSUBSCRIBE)


def copy_for(app, address, digest_id=1):
    """A subscriber's copy, as the digest would have made it (for the unit tests)."""
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber).where(Subscriber.email == address))
        unsubscribe = tokens.make_token(tokens.UNSUBSCRIBE, subscriber)
        nonce = subscriber.token_nonce
        return Copy(
            address,
            return_path.for_message(nonce, return_path.DIGEST, digest_id),
            return_path.message_id(nonce, return_path.DIGEST, digest_id, "localhost"),
            f"{app.config['BASE_URL']}/unsubscribe/{unsubscribe}",
            mailto.address_for(nonce, None),
        )


def envelope_of(case, copy):
    sender = copy.address if case.sender == SUBSCRIBER else case.sender
    to = {VERP: copy.return_path, MAILTO: copy.unsubscribe_address}.get(case.to, case.to)
    return sender, to


def fixture_bytes(case, copy):
    text = Template((CORPUS / f"{case.fixture}.eml").read_text()).substitute(
        address=copy.address,
        return_path=copy.return_path,
        message_id=copy.message_id,
        unsubscribe_url=copy.unsubscribe_url,
        bounces=FEEDBACK_LOOP,
        unsubscribe=copy.unsubscribe_address,
    )
    return text.replace("\n", "\r\n").encode()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.fixture)
def test_each_kind_of_message_reads_as_its_report_about_its_reader(inbound_app, case):
    add_subscribers(inbound_app, 2)
    copy = copy_for(inbound_app, "reader1@example.org")
    with inbound_app.app_context():
        reading = reports.read(fixture_bytes(case, copy), *envelope_of(case, copy), "<row.1>")
        if case.kind is None:
            assert reading == reports.Reading(ignored=case.ignored)
            return
        [report] = reading.reports
        assert (report.kind, report.status) == (case.kind, case.status)
        assert feedback.find_target(report).subscriber.email == "reader1@example.org"


@pytest.mark.parametrize(
    "case", [case for case in CASES if case.to == VERP and case.kind], ids=lambda c: c.fixture
)
def test_a_bounce_that_lost_its_verp_address_finds_its_reader_by_our_signed_message_id(
    inbound_app, case
):
    """Forwarded to the feedback-loop address: the returned Message-ID names the subscriber;
    an old sequential one (with a tampered link) names nobody, and the address the
    bounce gives never counts."""
    add_subscribers(inbound_app, 2)
    copy = copy_for(inbound_app, "reader1@example.org")
    old_mail = replace(
        copy,
        message_id="<digest.1.1764490323.2@localhost>",
        unsubscribe_url=copy.unsubscribe_url[:-2],
    )
    with inbound_app.app_context():
        [report] = reports.read(fixture_bytes(case, copy), NULL, FEEDBACK_LOOP, "<1>").reports
        assert feedback.find_target(report).subscriber.email == "reader1@example.org"
        [report] = reports.read(fixture_bytes(case, old_mail), NULL, FEEDBACK_LOOP, "<1>").reports
        assert report.address == "reader1@example.org"
        assert feedback.find_target(report).subscriber is None


def test_a_complaint_report_names_its_reader_though_the_recipient_is_redacted(inbound_app):
    add_subscribers(inbound_app, 2)
    copy = copy_for(inbound_app, "reader1@example.org")
    by = {}
    with inbound_app.app_context():
        for fixture in ["yahoo_arf_return_path", "yahoo_arf_list_unsubscribe"]:
            case = next(case for case in CASES if case.fixture == fixture)
            [report] = reports.read(fixture_bytes(case, copy), YAHOO, BOUNCES, "<1>").reports
            assert report.address == "redacted@yahoo.example"
            by[fixture] = (report.return_path, report.message_id, report.unsubscribe_url)
    assert by["yahoo_arf_return_path"] == (f"<{copy.return_path}>", None, None)
    assert by["yahoo_arf_list_unsubscribe"] == ("", None, copy.unsubscribe_url)


def test_the_listener_takes_only_our_signed_addresses_in_any_case(inbound_app):
    add_subscribers(inbound_app, 1)
    copy = copy_for(inbound_app, "reader0@example.org")
    with inbound_app.app_context():
        assert reports.addressed_to(copy.return_path.upper()) == reports.BOUNCES
        assert reports.addressed_to("Bounces+FBL@News.Example") == reports.BOUNCES
        assert reports.addressed_to(copy.unsubscribe_address.upper()) == reports.UNSUBSCRIBE
        for other in [
            BOUNCES,
            UNSUBSCRIBE,
            "bounces+anything-at-all@news.example",
            "UNSUBSCRIBE+x@news.example",
            copy.return_path.replace("news.example", "other.example"),
            # A mailto token is no return path, nor the other way round.
            copy.unsubscribe_address.replace("unsubscribe+", "bounces+"),
            copy.return_path.replace("bounces+", "unsubscribe+"),
            "bouncesx@news.example",
            "ann@news.example",
        ]:
            assert reports.addressed_to(other) is None


def send(port, sender, recipient, data):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(sender, [recipient], data)


def inbound_rows(app):
    with app.app_context():
        rows = db.session.execute(
            select(InboundMessage.id, InboundMessage.processed_at, InboundMessage.outcome)
        ).all()
        db.session.rollback()
        return rows


def test_reports_sent_to_the_listener_make_the_next_digest_skip_exactly_their_readers(
    inbound_app, smtp, start_worker_for, start_listener
):
    start_worker_for(inbound_app)
    subscribers = add_subscribers(inbound_app, len(CASES) + 2)
    send_digest(inbound_app, "First")
    copies = copies_of(smtp)
    port = start_listener(inbound_app)

    for number, case in enumerate(CASES):
        copy = copies[f"reader{number}@example.org"]
        send(port, *envelope_of(case, copy), fixture_bytes(case, copy))
        # Answered 250 only once it was stored.
        assert len(inbound_rows(inbound_app)) == number + 1
    wait_until(lambda: all(row.processed_at for row in inbound_rows(inbound_app)))

    outcomes = [row.outcome for row in sorted(inbound_rows(inbound_app))]
    for number, (case, outcome) in enumerate(zip(CASES, outcomes, strict=True)):
        if case.kind is None:
            assert outcome == f"ignored: {case.ignored}"
        else:
            status = f" {case.status}" if case.status else ""
            assert outcome == f"{case.kind}{status} for reader{number}@example.org"
    assert status_of(inbound_app, "reader1@example.org") == SubscriberStatus.CONFIRMED
    assert status_of(inbound_app, "reader7@example.org") == SubscriberStatus.COMPLAINED
    assert status_of(inbound_app, "reader12@example.org") == SubscriberStatus.UNSUBSCRIBED

    skipped = {f"reader{n}@example.org" for n, case in enumerate(CASES) if case.kind in SKIPPED_BY}
    smtp.reset()
    send_digest(inbound_app, "Second")
    assert set(smtp.recipients) == subscribers - skipped

    # Processing any of them again changes nothing.
    with inbound_app.app_context():
        events = db.session.scalar(select(func.count(FeedbackEvent.id)))
        for row in inbound_rows(inbound_app):
            assert inbound.process(row.id) is None
        assert db.session.scalar(select(func.count(FeedbackEvent.id))) == events == 10


def test_other_recipients_are_refused_with_550(inbound_app, start_listener):
    port = start_listener(inbound_app)
    strangers = ["ann@news.example", "bounces@other.example", BOUNCES, UNSUBSCRIBE]
    strangers += ["bounces+made-up@news.example", "unsubscribe+x@news.example"]
    for stranger in strangers:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(port, "", stranger, b"Subject: hello\r\n\r\nhello\r\n")
        code, reply = refused.value.recipients[stranger]
        assert code == 550
        assert reply.startswith(b"5.1.1")
    assert inbound_rows(inbound_app) == []


def test_the_same_report_delivered_twice_counts_once(inbound_app, start_listener):
    add_subscribers(inbound_app, 1)
    copy = copy_for(inbound_app, "reader0@example.org")
    port = start_listener(inbound_app, lmtp=True)
    data = fixture_bytes(CASES[0], copy)
    for _ in range(2):
        with smtplib.LMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("", [copy.return_path], data)
    with inbound_app.app_context():
        first, second = sorted(row.id for row in inbound_rows(inbound_app))
        assert inbound.process(first) == "hard_bounce 5.1.1 for reader0@example.org"
        assert inbound.process(second) == "hard_bounce 5.1.1: recorded before"
        assert inbound.process(second) is None
        assert db.session.scalar(select(func.count(FeedbackEvent.id))) == 1


def test_a_message_that_breaks_the_parser_is_kept_as_failed(inbound_app, monkeypatch, caplog):
    def broken(*_):
        raise ValueError("no sense in it")

    monkeypatch.setattr(reports, "read", broken)
    with inbound_app.app_context():
        inbound_id = inbound.store("", [FEEDBACK_LOOP], b"Subject: ?\r\n\r\n?\r\n")
        with caplog.at_level(logging.WARNING, logger="newsletter.bounces.inbound"):
            assert inbound.process(inbound_id) == "failed: ValueError('no sense in it')"
        assert "inbound %s could not be read" in caplog.records[-1].msg
        assert db.session.get(InboundMessage, inbound_id).processed_at is not None


def test_the_sweep_processes_messages_whose_hint_was_lost(inbound_app, start_worker_for):
    add_subscribers(inbound_app, 1)
    copy = copy_for(inbound_app, "reader0@example.org")
    with inbound_app.app_context():
        # Stored while the broker was down: no hint went out.
        db.session.add(
            InboundMessage(
                mail_from="",
                rcpt_to=copy.return_path,
                raw=fixture_bytes(CASES[0], copy),
                received_at=utcnow() - timedelta(minutes=2),
            )
        )
        db.session.commit()
    start_worker_for(inbound_app)
    with inbound_app.app_context():
        sweep()
    wait_until(lambda: inbound_rows(inbound_app)[0].processed_at is not None)
    assert status_of(inbound_app, "reader0@example.org") == SubscriberStatus.BOUNCED


def test_the_inbound_command_needs_an_address_to_listen_for(runner):
    result = runner.invoke(args=["inbound"])
    assert result.exit_code == 1
    assert "Set BOUNCE_ADDRESS or LIST_UNSUBSCRIBE_MAILTO first." in result.output


@pytest.mark.slow
def test_the_inbound_command_listens_until_stopped(inbound_app):
    port = free_port()
    env = process_env(inbound_app, BOUNCE_ADDRESS=BOUNCES)
    command = [sys.executable, "-m", "flask", "--app", "newsletter", "inbound"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_until(lambda: listening(port), timeout=30)
        send(port, "", FEEDBACK_LOOP, b"Subject: hello\r\n\r\nhello\r\n")
        assert len(inbound_rows(inbound_app)) == 1
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
    assert process.returncode == 0, output
    assert f"SMTP on 127.0.0.1:{port} for {BOUNCES}" in output.decode()


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_admins_read_what_came_back_and_old_mail_is_dropped(inbound_app, admin):
    client = inbound_app.test_client()
    log_in(client)
    with inbound_app.app_context():
        [old, new, waiting] = [
            inbound.store(sender, [BOUNCES], f"Subject: {subject}\r\n\r\nHello\r\n".encode())
            for sender, subject in [
                ("a@example.net", "Out of office"),
                ("b@example.net", "Re: Weekly"),
                ("c@example.net", "Still waiting"),
            ]
        ]
        inbound.process(old)
        inbound.process(new)
        for row_id in (old, waiting):
            db.session.get(InboundMessage, row_id).received_at = utcnow() - timedelta(days=31)
        db.session.commit()
    page = client.get("/admin/inbound").get_data(as_text=True)
    assert ">Re: Weekly</td>" in page
    assert "<td>b@example.net</td>" in page
    assert "ignored: " in page
    assert ">waiting</td>" in page

    with inbound_app.app_context():
        assert inbound.drop_old() == 1
        kept = set(db.session.scalars(select(InboundMessage.id)))
    # The unprocessed one stays, whatever its age, until a worker has read it.
    assert kept == {new, waiting}
