"""Admins' digests reach every confirmed subscriber exactly once, through real
workers and a real SMTP server, whatever fails on the way."""

import base64
import re
import signal
import subprocess
import time
from datetime import timedelta

import dkim
from sqlalchemy import func, select, update

from harness import free_port
from newsletter.bounces.models import FeedbackEvent
from newsletter.content import digests
from newsletter.content.models import Digest, DigestStatus
from newsletter.core import settings
from newsletter.core.models import utcnow
from newsletter.core.tokens import PREFERENCES, UNSUBSCRIBE, make_token
from newsletter.extensions import db
from newsletter.sending.models import Delivery, DeliveryStatus
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import (
    FEED,
    add_subscribers,
    after_one_more_email,
    assert_each_once_but_the_one_in_flight,
    digest_state,
    wait_until,
    wait_until_leases_run_out,
    wait_until_sent,
)
from tests.smtp import SMTPServer, html_of, link_in, text_of
from workers.tasks import start_digest, sweep


def test_send_digest_reaches_each_confirmed_subscriber_once(app, runner, smtp, worker, feed):
    subscribers = add_subscribers(app, 25)
    add_subscribers(app, 3, SubscriberStatus.PENDING, prefix="pending")
    add_subscribers(app, 2, SubscriberStatus.UNSUBSCRIBED, prefix="gone")
    app.config["DIGEST_BATCH_SIZE"] = 7

    result = runner.invoke(args=["send-digest", "--subject", "This week: a bridge"])
    assert result.exit_code == 0, result.output
    digest_id = int(result.output.strip())
    messages = smtp.wait_for(25)
    assert wait_until_sent(app, digest_id) == {"pending": 0, "sent": 25, "failed": 0, "skipped": 0}
    assert sorted(m["To"] for m in after_one_more_email(app, smtp)) == sorted(subscribers)

    message = messages[0]
    assert message["Subject"] == "This week: a bridge"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == "The Newsletter <newsletter.127.0.0.1>"
    assert message["Date"]
    # Signed, with no sequential id in it: it names the subscriber only to us.
    assert re.fullmatch(r"<[a-z2-7]{47}@localhost>", message["Message-ID"])
    assert "Council approves new bridge" in text_of(message)
    assert "<strong>bridge</strong>" in html_of(message)
    assert 'style="' in html_of(message)
    assert "<script" not in html_of(message)

    raw = smtp.raw[0].decode("ascii")
    header = re.search(
        r"^List-Unsubscribe: <(http://127\.0\.0\.1:5000(/unsubscribe/[^>]+))>\r$", raw, re.M
    )
    assert header, "List-Unsubscribe must be a plain <URL>, not an encoded-word"
    url, path = header.groups()
    assert url in text_of(message)
    assert url in html_of(message)

    one_click = app.test_client(use_cookies=False).post(
        path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert one_click.status_code == 200
    with app.app_context():
        address = re.sub(r".*<|>.*", "", message["To"]) if "<" in message["To"] else message["To"]
        subscriber = db.session.scalar(select(Subscriber).where(Subscriber.email == address))
        assert subscriber.status == SubscriberStatus.UNSUBSCRIBED


def test_posts_in_a_sent_digest_are_not_offered_again(app, runner, smtp, worker, feed):
    add_subscribers(app, 1)
    digest_id = int(runner.invoke(args=["send-digest"]).output)
    again = runner.invoke(args=["send-digest"])
    assert again.exit_code != 0
    assert "no posts to send" in again.output
    # Finished before the next test empties the tables under it.
    assert wait_until_sent(app, digest_id)["sent"] == 1


def test_a_reader_who_unsubscribes_during_the_send_gets_nothing_more(
    app, smtp, start_worker_for, feed
):
    add_subscribers(app, 10)
    with app.app_context():
        digest = digests.create_digest("Issue 1")
        digests.start_sending(digest.id)
        db.session.execute(
            update(Subscriber)
            .where(Subscriber.email == "reader3@example.org")
            .values(status=SubscriberStatus.UNSUBSCRIBED)
        )
        db.session.commit()
        digest_id = digest.id
    start_worker_for(app)
    start_digest.delay(digest_id)
    assert wait_until_sent(app, digest_id) == {"pending": 0, "sent": 9, "failed": 0, "skipped": 1}
    assert "reader3@example.org" not in {m["To"] for m in smtp.received}


def test_a_5xx_fails_that_delivery_only_and_repeated_ones_mark_the_reader_bounced(
    make_app, smtp, start_worker_for, runner
):
    app = make_app(BOUNCE_LIMIT=1, DIGEST_BATCH_SIZE=50)
    app.test_cli_runner().invoke(args=["import-feed", FEED])
    add_subscribers(app, 5)
    smtp.rcpt_replies["reader2@example.org"] = ["550 5.1.1 No such mailbox"]
    start_worker_for(app)
    digest_id = int(app.test_cli_runner().invoke(args=["send-digest"]).output)
    assert wait_until_sent(app, digest_id) == {"pending": 0, "sent": 4, "failed": 1, "skipped": 0}
    with app.app_context():
        failed = db.session.scalar(select(Delivery).where(Delivery.status == DeliveryStatus.FAILED))
        assert failed.last_error.startswith("550")
        subscriber = db.session.get(Subscriber, failed.subscriber_id)
        assert (subscriber.email, subscriber.status) == (
            "reader2@example.org",
            SubscriberStatus.BOUNCED,
        )
        # What did it is on the subscriber's record, and in the digest's figures.
        event = db.session.scalar(select(FeedbackEvent))
        assert (event.subscriber_id, event.digest_id, event.source) == (
            subscriber.id,
            digest_id,
            "relay",
        )
        assert event.changed_status
        assert event.detail.startswith("550 5.1.1")


def test_a_4xx_is_retried_later_and_the_digest_completes(app, runner, smtp, worker, feed):
    add_subscribers(app, 4)
    smtp.rcpt_replies["reader1@example.org"] = ["451 4.7.1 Try later", "451 4.7.1 Still busy"]
    digest_id = int(runner.invoke(args=["send-digest"]).output)
    assert wait_until_sent(app, digest_id) == {"pending": 0, "sent": 4, "failed": 0, "skipped": 0}
    with app.app_context():
        retried = db.session.scalar(
            select(Delivery).join(Subscriber).where(Subscriber.email == "reader1@example.org")
        )
        assert retried.attempts == 3
        assert retried.last_error.startswith("451")


def test_the_send_waits_while_the_smtp_server_is_down_and_resumes(make_app, start_worker_for):
    port = free_port()
    app = make_app(MAIL_PORT=port)
    app.test_cli_runner().invoke(args=["import-feed", FEED])
    subscribers = add_subscribers(app, 12)
    start_worker_for(app)
    digest_id = int(app.test_cli_runner().invoke(args=["send-digest"]).output)

    def tried_and_waiting():
        with app.app_context():
            return db.session.get(Digest, digest_id).paused_reason is not None

    wait_until(tried_and_waiting)
    assert digest_state(app, digest_id)[1]["pending"] == 12
    with app.app_context():
        # Never tried while the relay is down: no copy used up an attempt.
        assert db.session.scalar(select(func.max(Delivery.attempts))) <= 1

    server = SMTPServer(port=port)
    server.start()
    try:
        server.handler.wait_for(12, timeout=30)
        assert wait_until_sent(app, digest_id)["sent"] == 12
        assert {m["To"] for m in server.handler.received} == subscribers
    finally:
        server.stop()


def test_a_digest_can_be_paused_and_resumed(app, smtp, start_worker_for, feed):
    add_subscribers(app, 6)
    with app.app_context():
        digest_id = digests.create_digest("Paused issue").id
        digests.start_sending(digest_id)
        assert digests.set_paused(digest_id, True)
    start_worker_for(app)
    start_digest.delay(digest_id)
    assert after_one_more_email(app, smtp) == []
    assert digest_state(app, digest_id)[0] == DigestStatus.PAUSED
    with app.app_context():
        assert digests.set_paused(digest_id, False)
    sweep.delay()
    assert wait_until_sent(app, digest_id)["sent"] == 6


def test_starting_a_send_twice_never_sends_anyone_two_copies(app, smtp, start_worker_for, feed):
    subscribers = add_subscribers(app, 15)
    with app.app_context():
        digest_id = digests.create_digest("Twice").id
        digests.schedule(digest_id)
    start_worker_for(app, concurrency=4)
    for _ in range(3):
        start_digest.delay(digest_id)
    sweep.delay()
    smtp.wait_for(15)
    wait_until_sent(app, digest_id)
    assert sorted(m["To"] for m in after_one_more_email(app, smtp)) == sorted(subscribers)


def test_a_killed_worker_repeats_at_most_the_message_in_flight_with_its_message_id(
    app, smtp, start_worker_process, feed
):
    """kill -9 in the middle of a send; a new worker finishes it after the lease runs out.
    Each accepted message is recorded before the next can be accepted."""
    subscribers = add_subscribers(app, 60)
    smtp.delay = 0.05
    env = {"DIGEST_BATCH_SIZE": "10", "SEND_LEASE_SECONDS": "2", "DIGEST_PARALLEL_BATCHES": "1"}
    victim = start_worker_process(app, concurrency=1, env=env, pool="solo")
    with app.app_context():
        digest_id = digests.create_digest("Crash test").id
        digests.schedule(digest_id)
    start_digest.delay(digest_id)
    smtp.wait_for(15, timeout=30)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed_at = len(smtp.received)

    start_worker_process(app, concurrency=2, env=env)
    wait_until_leases_run_out(app, Delivery)
    sweep.delay()
    smtp.wait_for(len(subscribers), timeout=60)
    wait_until_sent(app, digest_id, timeout=60)
    received = after_one_more_email(app, smtp)
    assert_each_once_but_the_one_in_flight(received, subscribers, killed_at)


def test_two_workers_together_keep_the_admins_rate_limit(app, smtp, start_worker_process, feed):
    add_subscribers(app, 30)
    with app.app_context():
        settings.update(send_rate_limit=10)
        digest_id = digests.create_digest("Slowly").id
        digests.schedule(digest_id)
    start_worker_process(app, concurrency=2)
    start_worker_process(app, concurrency=2)
    started = time.monotonic()
    start_digest.delay(digest_id)
    smtp.wait_for(30, timeout=30)

    # 30 messages at 10 a second: three seconds, less the first message's tenth.
    assert smtp.arrived[-1] - started >= 2.8
    busiest_second = max(
        sum(1 for moment in smtp.arrived if start <= moment < start + 1) for start in smtp.arrived
    )
    assert busiest_second <= 11
    assert wait_until_sent(app, digest_id)["sent"] == 30


def test_messages_a_slow_relay_pushes_out_of_their_booking_go_back_uncounted(
    app, smtp, worker, feed
):
    subscribers = add_subscribers(app, 10)
    # At 5 a second each message has 0.2 s; the relay takes 0.3 s over each, so only
    # the first three of a booked second fit, and the rest wait for another batch.
    smtp.delay = 0.3
    with app.app_context():
        settings.update(send_rate_limit=5)
        digest_id = digests.create_digest("Slow relay").id
        digests.schedule(digest_id)
    start_digest.delay(digest_id)
    assert wait_until_sent(app, digest_id, timeout=60)["sent"] == 10
    assert sorted(m["To"] for m in smtp.received) == sorted(subscribers)
    with app.app_context():
        assert set(db.session.scalars(select(Delivery.attempts))) == {1}


def test_the_preferences_link_lets_a_reader_rename_leave_and_come_back(
    app, runner, smtp, worker, feed
):
    add_subscribers(app, 1)
    runner.invoke(args=["send-digest"])
    [message] = smtp.wait_for(1)
    path = re.search(r"http://127\.0\.0\.1:5000(/preferences/\S+)", text_of(message))[1]
    assert path in html_of(message)
    client = app.test_client()
    page = client.get(path)
    assert b"reader0@example.org" in page.data
    assert b"Unsubscribe" in page.data

    renamed = client.post(path, data={"name": "Ann", "action": "save"})
    assert b"Saved." in renamed.data
    assert b'value="Ann"' in renamed.data
    assert client.post(path, data={"name": "A\nB"}).status_code == 400

    unsubscribe = re.search(r'action="(/unsubscribe/[^"]+)"', page.get_data(as_text=True))[1]
    client.post(unsubscribe)
    back = client.post(path, data={"name": "Ann", "action": "resubscribe"})
    assert b"Now check your email" in back.data
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber))
        assert (subscriber.status, subscriber.signup_source) == ("pending", "preferences")
    # Whoever holds an old link is not the mailbox: the mailbox confirms.
    confirmation = smtp.wait_for(2)[1]
    assert confirmation["To"] == "Ann <reader0@example.org>"
    client.post(link_in(confirmation))
    with app.app_context():
        assert db.session.scalar(select(Subscriber.status)) == "confirmed"
    assert client.get(path.replace("/preferences/", "/unsubscribe/")).status_code == 400


def test_a_preferences_link_expires_and_an_unsubscribe_link_does_not(make_app, runner, smtp):
    app = make_app(PREFERENCES_MAX_AGE=-1)
    add_subscribers(app, 1)
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber))
        preferences = make_token(PREFERENCES, subscriber)
        unsubscribe = make_token(UNSUBSCRIBE, subscriber)
    client = app.test_client()
    expired = client.get(f"/preferences/{preferences}")
    assert expired.status_code == 410
    assert b"Use the link in the most recent email" in expired.data
    assert client.post(f"/preferences/{preferences}", data={"name": "X"}).status_code == 410
    assert client.post(f"/unsubscribe/{unsubscribe}").status_code == 200


def test_with_a_dkim_key_every_digest_is_signed_including_list_unsubscribe(
    make_app, smtp, start_worker_for, tmp_path
):
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    der = subprocess.run(
        ["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    )
    app = make_app(
        DKIM_SELECTOR="news",
        DKIM_PRIVATE_KEY_PATH=str(key),
        MAIL_DEFAULT_SENDER="n@example.org",
        LIST_UNSUBSCRIBE_MAILTO="leave@example.org",
    )
    app.test_cli_runner().invoke(args=["import-feed", FEED])
    add_subscribers(app, 2)
    start_worker_for(app)
    app.test_cli_runner().invoke(args=["send-digest"])
    smtp.wait_for(2)
    raw = smtp.raw[0]
    signature = raw.split(b"\r\n\r\n")[0].decode()
    assert "d=example.org" in signature
    assert "s=news" in signature
    signed = re.search(r"h=([^;]+);", signature.replace("\r\n", ""))[1].replace(" ", "").split(":")
    assert {"list-unsubscribe", "list-unsubscribe-post", "from", "to"} <= set(signed)
    # The mailto names the subscriber and newsletter by a signed token of its own.
    assert re.search(
        r", <mailto:leave\+[a-z2-7]{45}@example\.org\?subject=unsubscribe>$",
        smtp.received[0]["List-Unsubscribe"],
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der.stdout)
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)


def test_the_sweep_finishes_a_digest_whose_last_hint_was_lost(app, smtp, start_worker_for, feed):
    add_subscribers(app, 2)
    with app.app_context():
        digest_id = digests.create_digest("Lost hint").id
        digests.start_sending(digest_id)
        db.session.execute(update(Delivery).values(status=DeliveryStatus.SENT))
        db.session.commit()
    start_worker_for(app)
    sweep.delay()
    assert wait_until_sent(app, digest_id)["sent"] == 2


def test_an_old_digest_keeps_its_totals_when_its_rows_are_folded_away(
    app, runner, smtp, worker, feed, admin_client
):
    add_subscribers(app, 5)
    digest_id = int(runner.invoke(args=["send-digest", "--subject", "Last spring"]).output)
    counts = wait_until_sent(app, digest_id)
    assert counts == {"pending": 0, "sent": 5, "failed": 0, "skipped": 0}
    with app.app_context():
        assert digests.fold_old_deliveries() == 0
        later = utcnow() + timedelta(days=app.config["DELIVERY_RETENTION_DAYS"] + 1)
        assert digests.fold_old_deliveries(now=later, chunk=2) == 1
        assert db.session.scalar(select(func.count(Delivery.id))) == 0
        assert digests.fold_old_deliveries(now=later) == 0
    assert digest_state(app, digest_id)[1] == counts
    page = admin_client.get("/admin/digests").get_data(as_text=True)
    assert "Last spring" in page
    assert admin_client.get(f"/admin/digests/{digest_id}/progress").json["sent"] == 5


def test_a_long_list_is_owed_in_chunks_and_each_reader_gets_one_copy(
    app, smtp, start_worker_for, feed, monkeypatch
):
    monkeypatch.setattr(digests, "OWE_CHUNK", 4)
    subscribers = add_subscribers(app, 11)
    with app.app_context():
        digest_id = digests.create_digest("Chunked").id
        digests.schedule(digest_id)
    start_worker_for(app)
    start_digest.delay(digest_id)

    assert wait_until_sent(app, digest_id)["sent"] == 11
    assert sorted(m["To"] for m in after_one_more_email(app, smtp)) == sorted(subscribers)


def test_copies_the_starting_task_did_not_write_are_written_by_the_batches(
    app, smtp, start_worker_for, feed, monkeypatch
):
    """As if the task that started the digest died after its first chunk."""
    monkeypatch.setattr(digests, "OWE_CHUNK", 4)
    subscribers = add_subscribers(app, 11)
    with app.app_context():
        digest_id = digests.create_digest("Starter died").id
        digests.schedule(digest_id)
        digests.start_sending(digest_id)
    assert sum(digest_state(app, digest_id)[1].values()) == 4
    start_worker_for(app)
    sweep.delay()

    assert wait_until_sent(app, digest_id)["sent"] == 11
    assert sorted(m["To"] for m in after_one_more_email(app, smtp)) == sorted(subscribers)
