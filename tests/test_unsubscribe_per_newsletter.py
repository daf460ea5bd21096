"""Unsubscribing from one newsletter: a digest's link and its one-click header take the
subscriber off that digest's newsletter only, and the page offers everything as well; links
from emails of no newsletter, and links made before, still leave everything."""

import re

from sqlalchemy import select

from newsletter.bounces import feedback
from newsletter.content import posts
from newsletter.content.models import Digest, Newsletter
from newsletter.core import tokens
from newsletter.extensions import db
from newsletter.subscribers.models import ConsentEvent, Subscriber, SubscriberStatus
from tests.helpers import add_subscriber, newsletters_of, status_of, wait_until_sent
from tests.smtp import html_of, text_of

ANN, BOB, CY = "ann@example.org", "bob@example.org", "cy@example.org"
FIRST = 1
HEADER = re.compile(r"^List-Unsubscribe: <(http://127\.0\.0\.1:5000(/unsubscribe/[^>]+))>\r$", re.M)
ONE_CLICK = {
    "data": "List-Unsubscribe=One-Click",
    "content_type": "application/x-www-form-urlencoded",
}


def create_breaking(app, runner):
    made = runner.invoke(
        args=["create-newsletter", "breaking", "--name", "Breaking news", "--not-default"]
    )
    assert made.exit_code == 0, made.output
    with app.app_context():
        return db.session.scalar(select(Newsletter.id).where(Newsletter.slug == "breaking"))


def consent_of(app, email):
    """(kind, source, newsletter slug) of each of the subscriber's consent events."""
    with app.app_context():
        return db.session.execute(
            select(ConsentEvent.kind, ConsentEvent.source, Newsletter.slug)
            .outerjoin(Newsletter, Newsletter.id == ConsentEvent.newsletter_id)
            .join(Subscriber, Subscriber.id == ConsentEvent.subscriber_id)
            .where(Subscriber.email == email)
            .order_by(ConsentEvent.id)
        ).all()


def send(app, runner, smtp, slug, subject):
    """Send a digest of one new post to a newsletter's subscribers; who got it."""
    smtp.reset()
    with app.app_context():
        posts.save_post(None, subject, f"https://news.example/{slug}/{subject}", "")
    sent = runner.invoke(args=["send-digest", "--subject", subject, "--newsletter", slug])
    assert sent.exit_code == 0, sent.output
    digest_id = int(sent.output)
    wait_until_sent(app, digest_id)
    return digest_id, set(smtp.recipients)


def link_token(app, email, newsletter_id=None):
    """The unsubscribe path a digest of ``newsletter_id`` carries (None: an email of no
    newsletter, or a link made before links named one)."""
    with app.app_context():
        nonce = db.session.scalar(select(Subscriber.token_nonce).where(Subscriber.email == email))
        return f"/unsubscribe/{tokens.make_token_for(tokens.UNSUBSCRIBE, nonce, newsletter_id)}"


def test_a_digests_one_click_and_its_page_leave_its_newsletter_only(app, runner, smtp, worker):
    breaking = create_breaking(app, runner)
    for email in (ANN, BOB):
        add_subscriber(app, email, [FIRST, breaking])
    add_subscriber(app, CY, [breaking])

    flood, subscribers = send(app, runner, smtp, "breaking", "Flood")
    assert subscribers == {ANN, BOB, CY}
    copies = {smtp.recipients[n]: (smtp.received[n], smtp.raw[n]) for n in range(3)}

    # Ann's mail client: the header's one-click POST, no cookies, no CSRF token.
    message, raw = copies[ANN]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url, path = HEADER.search(raw.decode("ascii")).groups()
    assert url in text_of(message)
    assert url in html_of(message)
    one_click = app.test_client(use_cookies=False).post(path, **ONE_CLICK)
    assert one_click.status_code == 200
    assert "Location" not in one_click.headers
    assert "You left Breaking news" in one_click.text
    assert "You still get The Newsletter" in one_click.text
    assert "/preferences/" in one_click.text
    assert newsletters_of(app, ANN) == {"newsletter"}
    assert status_of(app, ANN) == SubscriberStatus.CONFIRMED
    assert consent_of(app, ANN)[-1] == ("leave", "one-click", "breaking")
    again = app.test_client(use_cookies=False).post(path, **ONE_CLICK)
    assert again.status_code == 200
    assert len(consent_of(app, ANN)) == 1

    # Bob follows the link in the body: opening it changes nothing (link scanners do).
    body_link = re.search(r"http://127\.0\.0\.1:5000(/unsubscribe/\S+)", text_of(copies[BOB][0]))
    client = app.test_client()
    page = client.get(body_link[1])
    assert page.status_code == 200
    assert "Unsubscribe from Breaking news</button>" in page.text
    assert "Unsubscribe from everything</button>" in page.text
    assert newsletters_of(app, BOB) == {"newsletter", "breaking"}
    everything = client.post(body_link[1], data={"everything": "yes"})
    assert "You're unsubscribed" in everything.text
    assert status_of(app, BOB) == SubscriberStatus.UNSUBSCRIBED
    assert consent_of(app, BOB)[-1] == ("unsubscribe", "link", None)
    assert "You're unsubscribed" in client.get(body_link[1]).text

    with app.app_context():
        reactions = feedback.reactions([db.session.get(Digest, flood)])[flood]
        assert reactions["unsubscribed"] == 2

    # The first newsletter still reaches Ann; Breaking news no longer does.
    assert send(app, runner, smtp, "newsletter", "Weather")[1] == {ANN}
    assert send(app, runner, smtp, "breaking", "Storm")[1] == {CY}


def test_leaving_the_last_newsletter_unsubscribes_and_subscribing_again_restores_one(
    app, runner, admin_client
):
    breaking = create_breaking(app, runner)
    cy, _ = add_subscriber(app, CY, [breaking])
    left = app.test_client(use_cookies=False).post(link_token(app, CY, breaking), **ONE_CLICK)
    assert left.status_code == 200
    assert "You're unsubscribed" in left.text
    assert "You left Breaking news, the last newsletter you got" in left.text
    assert status_of(app, CY) == SubscriberStatus.UNSUBSCRIBED
    assert newsletters_of(app, CY) == set()
    assert consent_of(app, CY) == [("unsubscribe", "one-click", "breaking")]
    assert "unsubscribe (breaking)" in admin_client.get(f"/admin/subscribers/{cy}").text

    preferences = re.search(r'href="(/preferences/[^"]+)"', left.text)[1]
    client = app.test_client()
    assert "Subscribe again" in client.get(preferences).text
    # Made from an unsubscribe link, which may have been forwarded: it opens no data.
    assert client.get(f"{preferences}/data").status_code == 403
    back = client.post(
        preferences,
        data={
            "name": "",
            "action": "resubscribe",
            "newsletters_shown": "1",
            "newsletters": ["breaking"],
        },
    )
    assert "Now check your email" in back.text
    assert status_of(app, CY) == SubscriberStatus.PENDING
    assert newsletters_of(app, CY) == {"breaking"}


def test_with_one_newsletter_one_click_and_subscribe_again_work_as_before(app):
    add_subscriber(app, ANN, [FIRST])
    client = app.test_client()
    left = client.post(link_token(app, ANN, FIRST), **ONE_CLICK)
    assert "You're unsubscribed" in left.text
    assert status_of(app, ANN) == SubscriberStatus.UNSUBSCRIBED
    # Their form shows no choice with one newsletter: they come back to it.
    preferences = re.search(r'href="(/preferences/[^"]+)"', left.text)[1]
    client.post(preferences, data={"name": "", "action": "resubscribe"})
    assert status_of(app, ANN) == SubscriberStatus.PENDING
    assert newsletters_of(app, ANN) == {"newsletter"}


def test_a_link_that_names_no_newsletter_still_leaves_everything(app, runner):
    breaking = create_breaking(app, runner)
    subscriber_id, _ = add_subscriber(app, ANN, [FIRST, breaking])
    client = app.test_client()
    path = link_token(app, ANN)
    page = client.get(path)
    assert '<button type="submit">Unsubscribe</button>' in page.text
    assert "everything" not in page.text
    assert client.post(path, **ONE_CLICK).status_code == 200
    assert status_of(app, ANN) == SubscriberStatus.UNSUBSCRIBED
    assert consent_of(app, ANN) == [("unsubscribe", "one-click", None)]

    # The oldest links carried [subscriber id, nonce].
    add_subscriber(app, BOB, [FIRST, breaking])
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber).where(Subscriber.email == BOB))
        legacy = tokens._serializer(tokens.UNSUBSCRIBE).dumps(
            [subscriber_id, subscriber.token_nonce]
        )
    assert client.post(f"/unsubscribe/{legacy}").status_code == 200
    assert status_of(app, BOB) == SubscriberStatus.UNSUBSCRIBED


def test_a_tampered_or_malformed_link_gets_a_clear_400_and_changes_nothing(app, runner):
    breaking = create_breaking(app, runner)
    add_subscriber(app, ANN, [FIRST, breaking])
    path = link_token(app, ANN, breaking)
    flipped = path[:-3] + ("A" if path[-3] != "A" else "B") + path[-2:]
    with app.app_context():
        nonce = db.session.scalar(select(Subscriber.token_nonce))
        serializer = tokens._serializer(tokens.UNSUBSCRIBE)
        # Genuinely signed, but no payload we make.
        malformed = [
            serializer.dumps(payload)
            for payload in ([nonce, "breaking"], [nonce, True], [nonce, breaking, 1], {"n": nonce})
        ]
    client = app.test_client(use_cookies=False)
    for bad in (flipped, path + "x", *(f"/unsubscribe/{token}" for token in malformed)):
        for answer in (client.get(bad), client.post(bad, **ONE_CLICK)):
            assert answer.status_code == 400, bad
            assert "This link is not valid" in answer.text
    assert newsletters_of(app, ANN) == {"newsletter", "breaking"}
    assert status_of(app, ANN) == SubscriberStatus.CONFIRMED


def test_an_unsubscribe_link_older_than_a_preferences_link_offers_none(make_app):
    app = make_app(PREFERENCES_MAX_AGE=-1)
    add_subscriber(app, ANN, [FIRST])
    left = app.test_client().post(link_token(app, ANN, FIRST))
    assert "You're unsubscribed" in left.text
    assert "/preferences/" not in left.text
