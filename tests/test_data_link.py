"""A subscriber who unsubscribed holds only a preferences link minted on the unsubscribe page,
which cannot open their data; "Email me a link to my data" sends them one that can, to
their own address, through the real worker and SMTP server."""

import re

import pytest
from sqlalchemy import func, select

from harness import csrf_token
from newsletter.core import suppression
from newsletter.core.models import SuppressedAddress
from newsletter.core.tokens import PREFERENCES_FROM_UNSUBSCRIBE, make_token
from newsletter.extensions import db
from newsletter.sending.models import EmailJob, EmailKind, JobStatus
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import add_subscribers, sign_up_and_get_a_digest, wait_until
from tests.smtp import html_of, link_in, text_of

BASE = "http://127.0.0.1:5000"
ASKED = "If we can send email to the address of this subscription"


@pytest.fixture
def app(make_app):
    """Within a minute, one data link per subscriber, as in production (tests default to 0)."""
    return make_app(CONFIRM_RESEND_INTERVAL=60)


def data_links(app, status=None):
    with app.app_context():
        query = select(func.count(EmailJob.id)).where(EmailJob.kind == EmailKind.DATA_LINK)
        if status:
            query = query.where(EmailJob.status == status)
        return db.session.scalar(query)


def press(client, page, **extra):
    """Press "Email me a link to my data" on a page, as a browser posts its form."""
    action = re.search(r'action="(/preferences/[^"]+/email-data-link)"', page.text)[1]
    return client.post(action, data={"csrf_token": csrf_token(page), **extra})


def minted_link(app, email):
    """The preferences link the unsubscribe page makes for a subscriber: it opens no data."""
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber).where(Subscriber.email == email))
        return f"/preferences/{make_token(PREFERENCES_FROM_UNSUBSCRIBE, subscriber)}"


def test_an_unsubscribed_reader_gets_a_link_to_their_data_by_email(
    app, client, runner, smtp, worker
):
    """Ann leaves through her digest's unsubscribe link. The preferences page it leads to
    cannot open her data, so she asks for a link by email; it comes to her own address
    and downloads and erases her data. Pressing again within the minute sends nothing."""
    sign_up_and_get_a_digest(app, client, runner, smtp)
    digest = smtp.wait_for(2)[1]
    [unsubscribe] = re.findall(rf"{BASE}(/unsubscribe/\S+)", text_of(digest))

    left = client.post(unsubscribe)
    minted = re.search(r'href="(/preferences/[^"]+)"', left.text)[1]
    page = client.get(minted)
    assert "Delete my data" not in page.text
    assert "Email me a link to my data" in page.text
    refused = client.get(f"{minted}/data")
    assert refused.status_code == 403
    assert "Email me a link to my data" in refused.text

    # From the 403 answer; an address in the form is no address we send to.
    asked = press(client, refused, email="mallory@example.org")
    assert asked.status_code == 200
    assert ASKED in asked.text
    email = smtp.wait_for(3)[2]
    assert email["To"] == "Ann <ann@example.org>"
    assert smtp.recipients[2] == "ann@example.org"
    assert email["Subject"] == "Your link to your data at The Newsletter"
    emailed = link_in(email)
    assert emailed.startswith("/preferences/")
    assert f'href="{BASE}{emailed}"' in html_of(email)

    # Again, from the page: the same answer, and no second email.
    again = press(client, client.get(minted))
    assert answer_of(again) == answer_of(asked)
    assert data_links(app) == 1
    assert data_links(app, JobStatus.SENT) == 1

    download = client.get(f"{emailed}/data")
    assert download.status_code == 200
    assert download.json["email"] == "ann@example.org"
    assert download.json["status"] == "unsubscribed"
    assert ("data_link", "sent") in [(e["kind"], e["status"]) for e in download.json["emails"]]
    erased = client.post(f"{emailed}/erase", data={"confirm": "yes"})
    assert "Your data is deleted" in erased.text
    with app.app_context():
        assert db.session.scalar(select(func.count(Subscriber.id))) == 0
    assert len(smtp.received) == 3


def answer_of(page):
    """What a page says: its heading and text, without what changes with each response."""
    return re.search(r"<h1>.*?</h1>\s*<p>.*?</p>", page.text, re.S)[0]


def test_the_link_comes_in_the_readers_language(app, client, smtp, worker):
    add_subscribers(app, 1, status=SubscriberStatus.UNSUBSCRIBED)
    with app.app_context():
        db.session.scalar(select(Subscriber)).locale = "de"
        db.session.commit()
    page = client.get(minted_link(app, "reader0@example.org"))
    assert "Link zu meinen Daten per E-Mail senden" in page.text
    asked = press(client, page)
    assert "Link zu Ihren Daten dorthin unterwegs" in asked.text
    [email] = smtp.wait_for(1)
    assert email["Content-Language"] == "de"
    assert email["Subject"] == "Ihr Link zu Ihren Daten bei The Newsletter"
    assert "Dieser Link öffnet Ihre Einstellungen" in text_of(email)
    assert '<html lang="de">' in html_of(email)
    assert "Meine Daten öffnen" in html_of(email)
    assert client.get(f"{link_in(email)}/data").json["email"] == "reader0@example.org"


def test_bounced_complained_and_suppressed_addresses_get_nothing_and_the_same_answer(
    app, client, smtp, worker
):
    """The button answers alike for every subscriber, whether an email goes or not, so
    whoever holds a link learns nothing from it; only the unsubscribed subscriber whose
    address may be mailed gets the email."""
    add_subscribers(app, 1, status=SubscriberStatus.BOUNCED, prefix="bounced")
    add_subscribers(app, 1, status=SubscriberStatus.COMPLAINED, prefix="complained")
    add_subscribers(app, 1, status=SubscriberStatus.UNSUBSCRIBED, prefix="suppressed")
    add_subscribers(app, 1, status=SubscriberStatus.UNSUBSCRIBED, prefix="left")
    with app.app_context():
        db.session.add(
            SuppressedAddress(
                address_hash=suppression.address_hash("suppressed0@example.org"), reason="bounced"
            )
        )
        db.session.commit()
    answers = []
    for prefix in ("bounced", "complained", "suppressed", "left"):
        answer = press(client, client.get(minted_link(app, f"{prefix}0@example.org")))
        assert answer.status_code == 200
        answers.append(answer_of(answer))
    assert len(set(answers)) == 1
    # Only the one email was owed: the others' presses wrote nothing.
    assert data_links(app) == 1
    smtp.wait_for(1)
    assert smtp.recipients == ["left0@example.org"]


def test_an_address_that_bounces_before_the_worker_sends_gets_nothing(
    app, client, smtp, start_worker_for
):
    """The link was asked for; before a worker took the job the address bounced: the
    worker skips it."""
    add_subscribers(app, 1, status=SubscriberStatus.UNSUBSCRIBED)
    press(client, client.get(minted_link(app, "reader0@example.org")))
    assert data_links(app, JobStatus.QUEUED) == 1
    with app.app_context():
        db.session.scalar(select(Subscriber)).status = SubscriberStatus.BOUNCED
        db.session.commit()
    start_worker_for(app)
    wait_until(lambda: data_links(app, JobStatus.SKIPPED) == 1)
    assert smtp.received == []


def test_the_button_needs_the_pages_csrf_token_and_a_genuine_link(app, client, smtp):
    add_subscribers(app, 1, status=SubscriberStatus.UNSUBSCRIBED)
    minted = minted_link(app, "reader0@example.org")
    client.get(minted)
    forged = client.post(f"{minted}/email-data-link")
    assert forged.status_code == 400
    assert "CSRF token" in forged.text
    page = client.get(minted)
    tampered = client.post(
        "/preferences/not-a-token/email-data-link", data={"csrf_token": csrf_token(page)}
    )
    assert tampered.status_code == 400
    assert "This link is not valid" in tampered.text
    assert data_links(app) == 0
