"""Getting the confirmation out through real failures: SMTP errors, a dead broker,
many sign-ups at once, and no mail server at all (the outbox)."""

import signal
import time

import pytest
from sqlalchemy import select

from harness import free_port
from newsletter.extensions import db
from newsletter.mail import outbox
from newsletter.sending.models import EmailJob, JobStatus
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import (
    after_one_more_email,
    assert_each_once_but_the_one_in_flight,
    sign_up_concurrently,
    wait_until,
    wait_until_leases_run_out,
)
from tests.smtp import SMTPServer, link_in
from workers.tasks import send_email_jobs, sweep

DEAD_BROKER = "redis://127.0.0.1:1/0"


# These stories count confirmation emails; the welcome email has its own tests.
pytestmark = pytest.mark.usefixtures("without_welcome_email")


def only_job(app):
    with app.app_context():
        [job] = db.session.scalars(select(EmailJob)).all()
        db.session.expunge(job)
        return job


def make_jobs_overdue(app):
    with app.app_context():
        for job in db.session.scalars(select(EmailJob)):
            job.due_at = job.due_at.replace(year=job.due_at.year - 1)
            job.lease_until = None
        db.session.commit()


def test_a_temporary_smtp_refusal_is_retried_with_backoff(app, client, smtp, worker):
    smtp.rcpt_replies["reader@example.org"] = ["451 4.7.1 Greylisted, try again later"]
    client.post("/subscribe", data={"email": "reader@example.org"})
    [message] = smtp.wait_for(1)
    assert link_in(message).startswith("/confirm/")
    wait_until(lambda: only_job(app).status == JobStatus.SENT)
    job = only_job(app)
    assert job.attempts == 2
    assert job.last_error.startswith("451")


def test_a_permanent_refusal_fails_that_email_only(app, client, smtp, worker):
    smtp.rcpt_replies["nobody@example.org"] = ["550 5.1.1 No such user"]
    client.post("/subscribe", data={"email": "nobody@example.org"})
    wait_until(lambda: only_job(app).status == JobStatus.FAILED)
    job = only_job(app)
    assert job.attempts == 1
    assert job.last_error.startswith("550")
    client.post("/subscribe", data={"email": "somebody@example.org"})
    [message] = smtp.wait_for(1)
    assert message["To"] == "somebody@example.org"


def test_mail_waits_while_the_smtp_server_is_down_and_goes_out_when_it_is_back(
    make_app, start_worker_for
):
    port = free_port()
    app = make_app(MAIL_PORT=port)
    start_worker_for(app)
    app.test_client().post("/subscribe", data={"email": "patient@example.org"})
    wait_until(lambda: only_job(app).last_error and only_job(app).lease_until is None)
    assert only_job(app).status == JobStatus.QUEUED
    assert "Connection" in only_job(app).last_error
    # Never tried, so the claim's attempt was given back: the wait costs none.
    assert only_job(app).attempts == 0

    server = SMTPServer(port=port)
    server.start()
    try:
        [message] = server.handler.wait_for(1, timeout=20)
        assert message["To"] == "patient@example.org"
    finally:
        server.stop()


def test_a_signup_is_kept_when_the_broker_is_down_and_the_sweep_sends_it(
    make_app, smtp, start_worker_for
):
    offline = make_app(CELERY_BROKER_URL=DEAD_BROKER)
    started = time.monotonic()
    answer = offline.test_client().post("/subscribe", data={"email": "kept@example.org"})
    assert answer.status_code == 200
    assert b"Now check your email" in answer.data
    assert time.monotonic() - started < 10
    assert only_job(offline).status == JobStatus.QUEUED

    online = make_app()
    start_worker_for(online)
    make_jobs_overdue(online)
    sweep.delay()
    [message] = smtp.wait_for(1)
    assert message["To"] == "kept@example.org"
    wait_until(lambda: only_job(online).status == JobStatus.SENT)


def test_a_lost_hint_is_harmless_and_a_repeated_one_sends_nothing_twice(app, client, smtp, worker):
    client.post("/subscribe", data={"email": "once@example.org"})
    smtp.wait_for(1)
    wait_until(lambda: only_job(app).status == JobStatus.SENT)
    for _ in range(3):
        send_email_jobs.delay()
    make_jobs_overdue(app)
    sweep.delay()
    assert len(after_one_more_email(app, smtp)) == 1


def test_many_concurrent_signups_each_get_exactly_one_email(make_app, smtp, start_worker_for):
    app = make_app()
    start_worker_for(app, concurrency=4)
    addresses = [f"reader{n}@example.org" for n in range(40)]

    assert sign_up_concurrently(app, addresses, clients=8) == [202] * len(addresses)
    smtp.wait_for(40, timeout=60)
    assert sorted(m["To"] for m in after_one_more_email(app, smtp)) == sorted(addresses)


def test_without_a_mail_server_mail_lands_in_the_outbox_page(make_app, start_worker_for):
    app = make_app(MAIL_SERVER=None)
    start_worker_for(app)
    client = app.test_client()
    answer = client.post("/subscribe", data={"email": "newcomer@example.org"})
    assert b'href="/outbox/"' in answer.data

    def outbox_count():
        with app.app_context():
            return len(outbox.messages())

    wait_until(lambda: outbox_count() == 1)
    listing = client.get("/outbox/").get_data(as_text=True)
    assert "newcomer@example.org" in listing
    assert "Confirm your subscription" in listing
    with app.app_context():
        [(key, message)] = outbox.messages()
    page = client.get(f"/outbox/{key}").get_data(as_text=True)
    path = link_in(message)
    assert path in page
    assert b"You're subscribed" in client.post(path).data

    stranger = client.get("/outbox/", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert stranger.status_code == 404
    assert client.get("/outbox/no-such-message").status_code == 404


@pytest.mark.parametrize(
    "forwarded",
    [
        {"X-Forwarded-For": "203.0.113.9"},
        {"Forwarded": "for=203.0.113.9"},
        {"X-Real-IP": "203.0.113.9"},
        {"X-Forwarded-Host": "news.example"},
    ],
)
def test_the_outbox_page_refuses_a_visitor_who_came_through_a_proxy_on_this_machine(
    make_app, forwarded
):
    """A proxy on this host makes every visitor's request come from 127.0.0.1."""
    client = make_app(MAIL_SERVER=None).test_client()
    assert client.get("/outbox/").status_code == 200
    assert client.get("/outbox/", headers=forwarded).status_code == 404


def test_behind_a_trusted_proxy_the_outbox_page_is_served_to_nobody(make_app):
    client = make_app(MAIL_SERVER=None, TRUSTED_PROXIES=1).test_client()
    assert client.get("/outbox/").status_code == 404


def test_the_outbox_page_is_gone_when_a_mail_server_is_set(client):
    assert client.get("/outbox/").status_code == 404


def test_celery_command_starts_a_worker_that_sends(app, client, smtp, start_worker_process):
    """`celery -A workers worker`, as an operator runs it, configured by environment."""
    worker = start_worker_process(app)
    client.post("/subscribe", data={"email": "process@example.org"})
    [message] = smtp.wait_for(1, timeout=30)
    assert b"You're subscribed" in client.post(link_in(message)).data
    with app.app_context():
        assert db.session.scalar(select(Subscriber)).status == SubscriberStatus.CONFIRMED
    assert b"Traceback" not in worker.log.read_bytes()


def test_two_worker_processes_and_concurrent_signups_send_each_email_once(
    app, smtp, start_worker_process
):
    """The broker under load from several producers and consumers (processes, not threads)."""
    workers = [start_worker_process(app), start_worker_process(app)]
    addresses = [f"busy{n}@example.org" for n in range(120)]

    assert sign_up_concurrently(app, addresses, clients=6) == [202] * len(addresses)
    smtp.wait_for(len(addresses), timeout=60)

    def all_sent():
        with app.app_context():
            return set(db.session.scalars(select(EmailJob.status))) == {JobStatus.SENT}

    wait_until(all_sent)
    assert sorted(m["To"] for m in smtp.received) == sorted(addresses)
    for worker in workers:
        assert b"Traceback" not in worker.log.read_bytes()


def test_a_killed_worker_repeats_at_most_the_email_in_flight(
    app, client, smtp, start_worker_process
):
    """kill -9 in the middle of a batch of confirmations; another worker sends the rest
    once the lease runs out. Each accepted email is recorded before the next goes."""
    addresses = {f"crash{n}@example.org" for n in range(30)}
    for address in addresses:
        client.post("/subscribe", data={"email": address})
    make_jobs_overdue(app)
    smtp.delay = 0.05
    env = {"SEND_LEASE_SECONDS": "2"}
    victim = start_worker_process(app, concurrency=1, env=env, pool="solo")
    smtp.wait_for(10, timeout=30)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed_at = len(smtp.received)
    assert killed_at < len(addresses)

    # The victim's rows come back when its short lease runs out; the worker taking over
    # keeps the usual lease, so that on a loaded machine its own batches, slower than two
    # seconds, are not taken over by its other process and sent twice.
    start_worker_process(app)
    wait_until_leases_run_out(app, EmailJob)
    sweep.delay()
    smtp.wait_for(len(addresses), timeout=60)
    received = after_one_more_email(app, smtp)
    assert_each_once_but_the_one_in_flight(received, addresses, killed_at)
