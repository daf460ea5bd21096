"""What comes back about sent mail (bounces, complaints, unsubscribes by mail) finds
its subscriber by what we signed (the VERP return path, the Message-ID), or by the address
when a provider's signed webhook gives it, and the next digest skips exactly the
subscribers it should."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from newsletter.bounces import feedback
from newsletter.bounces.models import FeedbackEvent, FeedbackKind
from newsletter.content.models import Digest, DigestStatus
from newsletter.core.models import utcnow
from newsletter.core.tokens import UNSUBSCRIBE, make_token
from newsletter.extensions import db
from newsletter.mail import return_path
from newsletter.sending.models import Delivery
from newsletter.subscribers import privacy
from newsletter.subscribers.models import ConsentEvent, Subscriber, SubscriberStatus
from tests.helpers import add_subscribers, send_digest, status_of
from tests.helpers.inbound import BOUNCES


@pytest.fixture
def verp_app(make_app):
    return make_app(BOUNCE_ADDRESS=BOUNCES)


def test_each_email_returns_to_a_verp_address_naming_its_reader_and_message(
    verp_app, smtp, start_worker_for
):
    start_worker_for(verp_app)
    subscribers = add_subscribers(verp_app, 3)
    assert verp_app.test_client().post("/subscribe", data={"email": "new@example.org"})
    smtp.wait_for(1)
    digest_id = send_digest(verp_app, "Monday")
    smtp.wait_for(4)

    with verp_app.app_context():
        nonces = dict(db.session.execute(select(Subscriber.email, Subscriber.token_nonce)).all())
        for recipient, path in zip(smtp.recipients, smtp.return_paths, strict=True):
            local, _, domain = path.partition("@")
            assert domain == "news.example"
            assert local.startswith("bounces+")
            assert len(local) <= 64
            named = return_path.read(path)
            assert named.nonce == nonces[recipient]
            if recipient in subscribers:
                assert (named.kind, named.row_id) == (return_path.DIGEST, digest_id)
            else:
                assert named.kind == return_path.EMAIL_JOB
            # Any other token, or this one changed, names nobody.
            changed = path.replace(local[-3:], "aaa" if local[-3:] != "aaa" else "bbb")
            assert return_path.read(changed) is None
            assert return_path.read(path.replace("news.example", "evil.example")) is None
            assert return_path.read("bounces@news.example") is None


def test_without_a_bounce_address_mail_returns_to_the_sender(app, client, smtp, worker):
    client.post("/subscribe", data={"email": "ann@example.org"})
    smtp.wait_for(1)
    assert smtp.return_paths == ["newsletter@localhost"]


def report_for(app, email, kind, digest_id=None, **fields):
    """A report that names the subscriber by the VERP address of a digest's copy."""
    with app.app_context():
        nonce = db.session.scalar(select(Subscriber.token_nonce).where(Subscriber.email == email))
        path = return_path.for_message(nonce, return_path.DIGEST, digest_id or 1)
    return feedback.Report(kind, "dsn", return_path=path, **fields)


def record(app, report):
    with app.app_context():
        event = feedback.record(report)
        return event and (event.subscriber_id, event.digest_id, event.changed_status)


def test_the_next_digest_skips_the_bounced_the_complained_and_the_unsubscribed(
    verp_app, smtp, start_worker_for
):
    start_worker_for(verp_app)
    subscribers = add_subscribers(verp_app, 6)
    first = send_digest(verp_app, "First")
    smtp.wait_for(6)
    hard = feedback.Report(
        FeedbackKind.HARD_BOUNCE,
        "dsn",
        reference="<dsn-1@mx.example>",
        return_path=smtp.return_paths[smtp.recipients.index("reader0@example.org")],
        status="5.1.1",
        detail="user unknown",
    )
    assert record(verp_app, hard)[1:] == (first, True)
    assert record(verp_app, hard) is None, "the same report twice counts once"
    by_message_id = feedback.Report(
        FeedbackKind.COMPLAINT,
        "arf",
        message_id=next(m["Message-ID"] for m in smtp.received if m["To"] == "reader1@example.org"),
    )
    assert record(verp_app, by_message_id)[1:] == (first, True)
    # An address a report by mail gives names nobody: anybody can write one.
    forged = feedback.Report(FeedbackKind.UNSUBSCRIBE, "mailto", address="Reader2@Example.org")
    assert record(verp_app, forged) == (None, None, False)
    # A provider's signed webhook vouches for the address it gives.
    vouched = feedback.Report(
        FeedbackKind.UNSUBSCRIBE,
        "sendgrid",
        address="Reader2@Example.org",
        address_is_vouched_for=True,
    )
    assert record(verp_app, vouched)[2] is True
    assert record(verp_app, feedback.Report(FeedbackKind.HARD_BOUNCE, "dsn", address="x@y.z")) == (
        None,
        None,
        False,
    )

    smtp.reset()
    send_digest(verp_app, "Second")
    assert set(smtp.recipients) == subscribers - {
        "reader0@example.org",
        "reader1@example.org",
        "reader2@example.org",
    }
    assert status_of(verp_app, "reader0@example.org") == SubscriberStatus.BOUNCED
    assert status_of(verp_app, "reader1@example.org") == SubscriberStatus.COMPLAINED
    assert status_of(verp_app, "reader2@example.org") == SubscriberStatus.UNSUBSCRIBED
    with verp_app.app_context():
        consent = db.session.scalars(select(ConsentEvent.source).order_by(ConsentEvent.id))
        assert list(consent) == ["complaint", "sendgrid"]


def test_soft_bounces_bounce_a_reader_only_when_enough_fall_within_the_window(verp_app):
    add_subscribers(verp_app, 2)
    soft = FeedbackKind.SOFT_BOUNCE
    for number in range(2):
        record(verp_app, report_for(verp_app, "reader0@example.org", soft, reference=f"a{number}"))
    assert status_of(verp_app, "reader0@example.org") == SubscriberStatus.CONFIRMED
    # A delivery reported now wipes the slate: two more are not yet three.
    with verp_app.app_context():
        feedback.delivered(report_for(verp_app, "reader0@example.org", soft))
    for number in range(2):
        record(verp_app, report_for(verp_app, "reader0@example.org", soft, reference=f"b{number}"))
    assert status_of(verp_app, "reader0@example.org") == SubscriberStatus.CONFIRMED
    record(verp_app, report_for(verp_app, "reader0@example.org", soft, reference="b2"))
    assert status_of(verp_app, "reader0@example.org") == SubscriberStatus.BOUNCED

    # Spread over more than 30 days, three are not enough.
    for number, days_ago in enumerate([40, 20]):
        record(verp_app, report_for(verp_app, "reader1@example.org", soft, reference=f"c{number}"))
        with verp_app.app_context():
            latest = db.session.scalar(select(func.max(FeedbackEvent.id)))
            db.session.get(FeedbackEvent, latest).at = utcnow() - timedelta(days=days_ago)
            db.session.commit()
    record(verp_app, report_for(verp_app, "reader1@example.org", soft, reference="c2"))
    assert status_of(verp_app, "reader1@example.org") == SubscriberStatus.CONFIRMED


def test_a_bounced_or_complained_address_is_never_added_again_even_once_erased(
    verp_app, admin_client, tmp_path
):
    add_subscribers(verp_app, 2)
    record(verp_app, report_for(verp_app, "reader0@example.org", FeedbackKind.HARD_BOUNCE))
    record(verp_app, report_for(verp_app, "reader1@example.org", FeedbackKind.COMPLAINT))
    with verp_app.app_context():
        for subscriber in db.session.scalars(select(Subscriber)).all():
            privacy.erase(subscriber, by="admin")
    csv_file = tmp_path / "readers.csv"
    csv_file.write_text("email\nreader0@example.org\nreader1@example.org\nfresh@example.org\n")
    imported = verp_app.test_cli_runner().invoke(args=["import-subscribers", str(csv_file)])
    assert "added 1, skipped 2" in imported.output
    for address in ["reader0@example.org", "reader1@example.org"]:
        assert verp_app.test_client().post("/subscribe", data={"email": address}).status_code == 200
    with verp_app.app_context():
        assert set(db.session.scalars(select(Subscriber.email))) == {"fresh@example.org"}


def test_admins_see_what_came_back_per_digest_and_per_reader(verp_app, admin_client):
    subscribers = sorted(add_subscribers(verp_app, 5))
    with verp_app.app_context():
        digest = Digest(subject="Weekly", status=DigestStatus.SENT, started_at=utcnow())
        db.session.add(digest)
        db.session.flush()
        ids = dict(db.session.execute(select(Subscriber.email, Subscriber.id)).all())
        db.session.add_all(
            Delivery(digest_id=digest.id, subscriber_id=ids[email], sent_at=utcnow())
            for email in subscribers
        )
        db.session.commit()
        digest_id = digest.id
        leave = make_token(UNSUBSCRIBE, db.session.get(Subscriber, ids[subscribers[3]]))
    hard = report_for(verp_app, subscribers[0], FeedbackKind.HARD_BOUNCE, digest_id, status="5.1.1")
    record(verp_app, hard)
    record(verp_app, report_for(verp_app, subscribers[1], FeedbackKind.COMPLAINT, digest_id))
    soft = report_for(verp_app, subscribers[2], FeedbackKind.SOFT_BOUNCE, digest_id, reference="s")
    record(verp_app, soft)
    assert admin_client.post(f"/unsubscribe/{leave}").status_code == 200

    history = admin_client.get("/admin/digests").get_data(as_text=True)
    assert re.search(
        r"Weekly</a></td>\s*<td>sent</td>"
        + r"<td>\d+</td>" * 3
        + r"\s*<td>2</td><td>1</td><td>1</td>",
        history,
    )
    page = admin_client.get(f"/admin/digests/{digest_id}").get_data(as_text=True)
    assert "bounced <strong>2</strong>" in page
    assert "complained <strong>1</strong>" in page
    assert "unsubscribed within 7 days <strong>1</strong>" in page

    subscriber = admin_client.get(f"/admin/subscribers/{ids[subscribers[0]]}").get_data(
        as_text=True
    )
    assert "<td>hard_bounce</td><td>dsn</td>" in subscriber
    assert "<td>5.1.1</td>" in subscriber
    assert "<td>yes</td>" in subscriber
    assert f'href="/admin/subscribers/{ids[subscribers[0]]}"' in admin_client.get(
        "/admin/subscribers"
    ).get_data(as_text=True)


def test_each_digests_unsubscribes_count_in_its_own_week_in_one_query(app):
    """Four subscribers got two digests ten days apart: one left in the first one's week,
    one in the gap between them, one in the second one's week, and one by complaining
    (counted apart); a third digest has not started."""
    subscribers = sorted(add_subscribers(app, 4))
    with app.app_context():
        ids = dict(db.session.execute(select(Subscriber.email, Subscriber.id)).all())
        first, second = (
            Digest(subject=subject, status=DigestStatus.SENT, started_at=utcnow() - ago)
            for subject, ago in (("First", timedelta(days=20)), ("Second", timedelta(days=10)))
        )
        draft = Digest(subject="Draft")
        db.session.add_all([first, second, draft])
        db.session.flush()
        db.session.add_all(
            Delivery(digest_id=digest.id, subscriber_id=subscriber, sent_at=digest.started_at)
            for digest in (first, second)
            for subscriber in ids.values()
        )
        for email, days_ago, source in zip(
            subscribers, [17, 12, 8, 9], ["link", "link", "one-click", "complaint"], strict=True
        ):
            db.session.add(
                ConsentEvent(
                    subscriber_id=ids[email],
                    kind="unsubscribe",
                    source=source,
                    at=utcnow() - timedelta(days=days_ago),
                )
            )
        db.session.commit()
        shown = db.session.scalars(select(Digest).order_by(Digest.id)).all()
        statements = []

        def count(_connection, _cursor, statement, *_args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        counted = feedback.reactions(shown)
        event.remove(db.engine, "before_cursor_execute", count)
        unsubscribed = {digest.subject: counted[digest.id]["unsubscribed"] for digest in shown}
    assert unsubscribed == {"First": 1, "Second": 1, "Draft": 0}
    # The reported bounces and complaints, and the unsubscribes: whatever the digests' number.
    assert len(statements) == 2
