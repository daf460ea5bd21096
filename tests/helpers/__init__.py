"""Small helpers the stories share."""

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select

import harness
from newsletter.content import digests, posts
from newsletter.content.models import Digest, DigestStatus, Newsletter, Subscription
from newsletter.core import settings
from newsletter.core.models import utcnow
from newsletter.engagement import events
from newsletter.extensions import db
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.smtp import link_in
from workers.tasks import start_digest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Set by scripts/test.sh for its second half: PostgreSQL and Redis instead of SQLite.
SERVER_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
SERVER_BROKER_URL = os.environ.get("TEST_BROKER_URL")
ADMIN = ("admin@example.org", "correct horse battery")
FEED = str(PROJECT_ROOT / "tests" / "data" / "feed.rss")


def wait_until(predicate, timeout=20):
    """Poll until ``predicate()`` is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def wait_until_events_written(app):
    """Wait for the web process's event thread to write the clicks and opens its requests
    gathered (newsletter.engagement.events.EventBuffer)."""
    with app.app_context():
        held = events.buffer()
    wait_until(held.written)


def process_env(app, **settings):
    """The environment of a process started as an operator would (a worker, the inbound
    listener, gunicorn) that shares ``app``'s database, instance folder, secret key and
    broker queue; ``settings`` are added."""
    config = app.config
    env = {
        **os.environ,
        "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "INSTANCE_PATH": app.instance_path,
        "SECRET_KEY": config["SECRET_KEY"],
        **settings,
    }
    if SERVER_BROKER_URL:
        env["CELERY_BROKER_URL"] = SERVER_BROKER_URL
        env["CELERY_TASK_DEFAULT_QUEUE"] = config["CELERY_TASK_DEFAULT_QUEUE"]
    return env


def sign_up_concurrently(app, addresses, clients):
    """POST /api/subscribe for every address from ``clients`` threads; the status codes."""

    def sign_up(chunk):
        client = app.test_client()
        return [client.post("/api/subscribe", json={"email": a}).status_code for a in chunk]

    chunks = [addresses[i::clients] for i in range(clients)]
    with ThreadPoolExecutor(clients) as pool:
        return [status for statuses in pool.map(sign_up, chunks) for status in statuses]


def log_in(client, email=ADMIN[0], password=ADMIN[1]):
    """Log the test client in, as the fixtures' admin unless told otherwise."""
    return harness.log_in(client, email, password)


def add_subscribers(
    app, count, status=SubscriberStatus.CONFIRMED, prefix="reader", newsletter_id=1
):
    """Subscribers of one newsletter (the first, which the migrations made, by default)."""
    with app.app_context():
        subscribers = [
            Subscriber(email=f"{prefix}{n}@example.org", status=status, signup_source="test")
            for n in range(count)
        ]
        db.session.add_all(subscribers)
        db.session.flush()
        db.session.add_all(
            Subscription(subscriber_id=subscriber.id, newsletter_id=newsletter_id)
            for subscriber in subscribers
        )
        db.session.commit()
    return {f"{prefix}{n}@example.org" for n in range(count)}


def add_subscriber(app, email, newsletter_ids):
    """A confirmed subscriber of the given newsletters: their id and link nonce."""
    with app.app_context():
        subscriber = Subscriber(
            email=email,
            status=SubscriberStatus.CONFIRMED,
            signup_source="test",
            subscriptions=[Subscription(newsletter_id=n) for n in newsletter_ids],
        )
        db.session.add(subscriber)
        db.session.commit()
        return subscriber.id, subscriber.token_nonce


def newsletters_of(app, email):
    """The slugs of the newsletters a subscriber gets."""
    with app.app_context():
        return set(
            db.session.scalars(
                select(Newsletter.slug)
                .join(Subscription, Subscription.newsletter_id == Newsletter.id)
                .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
                .where(Subscriber.email == email, Subscription.active.is_(True))
            )
        )


def status_of(app, subscriber):
    """A subscriber's status as last stored, by address or by id."""
    with app.app_context():
        if isinstance(subscriber, int):
            status = db.session.get(Subscriber, subscriber).status
        else:
            status = db.session.scalar(
                select(Subscriber.status).where(Subscriber.email == subscriber)
            )
        db.session.rollback()
        return status


def copy_of_session(app, client):
    """Another browser holding a copy of this client's session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def tab_to(page, target, presses=40):
    """Press Tab until ``target`` has the focus, as a keyboard user moves through a page."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{presses} presses of Tab never reached {target}")


def after_one_more_email(app, smtp, email="later@example.org"):
    """Sign ``email`` up and wait for its confirmation: a positive event that comes after
    whatever the worker was given before it. A test that must show that something was
    NOT sent waits for this instead of sleeping. The messages received, less this one."""
    app.test_client().post("/subscribe", data={"email": email})
    wait_until(lambda: smtp.messages_to(email))
    return [message for message in smtp.received if email not in message["To"]]


def wait_until_leases_run_out(app, model):
    """Wait until every lease held now on ``model``'s rows (EmailJob, Delivery) has run
    out: what a killed worker held can then be claimed again."""
    with app.app_context():
        held = db.session.scalar(select(func.max(model.lease_until)))
        db.session.rollback()
    if held is not None:
        wait_until(lambda: utcnow() > held)


def digest_state(app, digest_id):
    with app.app_context():
        return db.session.get(Digest, digest_id).status, digests.progress(digest_id)


def wait_until_sent(app, digest_id, timeout=30):
    wait_until(lambda: digest_state(app, digest_id)[0] == DigestStatus.SENT, timeout)
    return digest_state(app, digest_id)[1]


def send_digest(app, subject, titles=None):
    """A digest of new posts with these titles (its subject, by default), sent by the
    real worker to every subscriber; its id once sent."""
    with app.app_context():
        # Posts of its own, since a digest carries only posts not sent before.
        for title in titles or [subject]:
            posts.save_post(None, title, f"https://news.example/{len(title)}/{title}", "")
        digest_id = digests.create_digest(subject).id
        digests.schedule(digest_id)
    start_digest.delay(digest_id)
    wait_until_sent(app, digest_id)
    return digest_id


def sign_up_and_get_a_digest(app, client, runner, smtp):
    """Ann signs up and confirms; the feed's posts go out to her as the digest "Week 48"."""
    with app.app_context():
        settings.update(welcome_enabled=False)
    client.post("/subscribe", data={"email": "ann@example.org", "name": "Ann"})
    client.post(link_in(smtp.wait_for(1)[0]))
    runner.invoke(args=["import-feed", FEED])
    digest_id = int(runner.invoke(args=["send-digest", "--subject", "Week 48"]).output)
    wait_until_sent(app, digest_id)


def assert_each_once_but_the_one_in_flight(received, subscribers, killed_at):
    """Every subscriber got the message; at most one got it twice, with one Message-ID."""
    assert {m["To"] for m in received} == subscribers
    copies = {}
    for message in received:
        copies.setdefault(message["To"], []).append(message["Message-ID"])
    repeated = {to: ids for to, ids in copies.items() if len(ids) > 1}
    assert len(received) - len(subscribers) <= 1, f"{repeated}; {killed_at} sent before the kill"
    for message_ids in repeated.values():
        assert len(set(message_ids)) == 1


def bearer(app, *scopes):
    """The Authorization header of a new API key made with `create-api-key`, with these
    scopes (none: every scope)."""
    options = [option for scope in scopes for option in ("--scope", scope)]
    made = app.test_cli_runner().invoke(args=["create-api-key", "test script", *options])
    assert made.exit_code == 0, made.output
    return {"Authorization": f"Bearer {made.output.strip().splitlines()[-1]}"}
