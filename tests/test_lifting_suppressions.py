"""An owner allows a suppressed address again: its subscriber gets a fresh confirmation
email, and no digest until they confirm."""

import pytest
from sqlalchemy import select

from harness import csrf_token
from newsletter.admins.models import AuditEntry
from newsletter.content import posts
from newsletter.core.models import SuppressedAddress
from newsletter.core.suppression import address_hash
from newsletter.extensions import db
from newsletter.sending.models import EmailJob
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import add_subscribers, wait_until_sent
from tests.smtp import link_in

STOPPED = "stopped0@example.org"


def stopped_subscriber(app, status):
    """A subscriber whose address bounced or complained, as feedback leaves them."""
    add_subscribers(app, 1, status, prefix="stopped")
    with app.app_context():
        db.session.add(SuppressedAddress(address_hash=address_hash(STOPPED), reason=status))
        db.session.commit()
        return db.session.scalar(select(Subscriber.id).where(Subscriber.email == STOPPED))


def subscriber(app, email):
    with app.app_context():
        return db.session.scalar(select(Subscriber).where(Subscriber.email == email))


@pytest.mark.parametrize("status", [SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED])
def test_a_lifted_suppression_asks_for_consent_before_any_digest(
    app, admin_client, runner, smtp, worker, status
):
    client = app.test_client()
    runner.invoke(args=["import-feed", "tests/data/feed.rss"])
    add_subscribers(app, 1, prefix="other")
    subscriber_id = stopped_subscriber(app, status)
    # Suppressed, the address cannot come back by the form: no email is owed.
    client.post("/subscribe", data={"email": STOPPED})
    with app.app_context():
        assert (
            db.session.scalar(select(EmailJob.id).where(EmailJob.subscriber_id == subscriber_id))
            is None
        )

    page = admin_client.get(f"/admin/subscribers/{subscriber_id}")
    assert f"This address is suppressed ({status})" in page.text
    lifted = admin_client.post(
        f"/admin/subscribers/{subscriber_id}/lift-suppression",
        data={"csrf_token": csrf_token(page)},
        follow_redirects=True,
    )
    assert f"{STOPPED} is allowed again: a confirmation email is on its way" in lifted.text
    assert "This address is suppressed" not in lifted.text
    [confirmation] = smtp.wait_for(1)
    assert confirmation["To"] == STOPPED
    assert "Confirm your subscription" in confirmation["Subject"]
    assert subscriber(app, STOPPED).status == SubscriberStatus.PENDING

    first = int(runner.invoke(args=["send-digest", "--subject", "Before confirming"]).output)
    assert wait_until_sent(app, first)["sent"] == 1
    assert [m["Subject"] for m in smtp.messages_to(STOPPED)] == [confirmation["Subject"]]

    assert client.post(link_in(confirmation)).status_code == 200
    assert subscriber(app, STOPPED).status == SubscriberStatus.CONFIRMED
    with app.app_context():
        posts.save_post(None, "After confirming", "https://example.org/after", "")
    second = int(runner.invoke(args=["send-digest", "--subject", "After confirming"]).output)
    assert wait_until_sent(app, second)["sent"] == 2
    # Confirmed, they get the digest (and the welcome email, in either order).
    subjects = [m["Subject"] for m in smtp.messages_to(STOPPED)]
    assert "After confirming" in subjects
    assert "Before confirming" not in subjects

    again = admin_client.post(
        f"/admin/subscribers/{subscriber_id}/lift-suppression",
        data={"csrf_token": csrf_token(page)},
        follow_redirects=True,
    )
    assert f"{STOPPED} is not suppressed: nothing to lift." in again.text
    with app.app_context():
        entries = db.session.execute(
            select(AuditEntry.actor, AuditEntry.target).where(
                AuditEntry.action == "suppressions.lift"
            )
        ).all()
    assert entries == [("admin@example.org", f"subscriber {subscriber_id}")]


def test_an_erased_address_is_allowed_again_and_must_confirm(app, admin_client, smtp, worker):
    add_subscribers(app, 1, prefix="erased")
    erased = "erased0@example.org"
    erased_id = subscriber(app, erased).id
    token = csrf_token(admin_client.get("/admin/subscribers"))
    admin_client.post(f"/admin/subscribers/{erased_id}/erase", data={"csrf_token": token})
    assert subscriber(app, erased) is None

    unknown = admin_client.post(
        "/admin/subscribers/lift-erased",
        data={"csrf_token": token, "email": "never@example.org"},
        follow_redirects=True,
    )
    assert "never@example.org is not suppressed: nothing to lift." in unknown.text
    empty = admin_client.post("/admin/subscribers/lift-erased", data={"csrf_token": token})
    assert empty.status_code == 400

    lifted = admin_client.post(
        "/admin/subscribers/lift-erased",
        data={"csrf_token": token, "email": "Erased0@Example.org"},
        follow_redirects=True,
    )
    assert "is allowed again: a confirmation email is on its way" in lifted.text
    [confirmation] = smtp.wait_for(1)
    assert confirmation["To"] == erased
    back = subscriber(app, erased)
    assert (back.status, back.signup_source) == (SubscriberStatus.PENDING, "admin-lifted")
