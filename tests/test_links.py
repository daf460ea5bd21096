"""The links in emails: signed, purpose-bound, time-limited, safe from mail scanners."""

from sqlalchemy import select

from newsletter.core import tokens
from newsletter.extensions import db
from newsletter.sending.models import EmailJob
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import status_of, wait_until
from tests.smtp import link_in


def add_subscriber(app, email="reader@example.org", status=SubscriberStatus.PENDING):
    with app.app_context():
        subscriber = Subscriber(email=email, status=status, signup_source="test")
        db.session.add(subscriber)
        db.session.commit()
        return subscriber.id


def token_for(app, purpose, subscriber_id):
    with app.app_context():
        return tokens.make_token(purpose, db.session.get(Subscriber, subscriber_id))


def test_opening_a_confirmation_link_changes_nothing(app, client):
    subscriber = add_subscriber(app)
    page = client.get(f"/confirm/{token_for(app, tokens.CONFIRM, subscriber)}")
    assert page.status_code == 200
    assert status_of(app, subscriber) == SubscriberStatus.PENDING


def test_a_tampered_link_gives_a_400_page(app, client):
    subscriber = add_subscriber(app)
    token = token_for(app, tokens.CONFIRM, subscriber)
    # The signature's first character holds six whole bits: any other one changes it.
    head, signature = token.rsplit(".", 1)
    tampered = f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    for method in (client.get, client.post):
        answer = method(f"/confirm/{tampered}")
        assert answer.status_code == 400
        assert b"This link is not valid" in answer.data
    assert client.post("/unsubscribe/garbage").status_code == 400
    assert status_of(app, subscriber) == SubscriberStatus.PENDING


def test_a_token_for_one_purpose_never_works_for_another(app, client):
    subscriber = add_subscriber(app, status=SubscriberStatus.CONFIRMED)
    confirm_token = token_for(app, tokens.CONFIRM, subscriber)
    unsubscribe_token = token_for(app, tokens.UNSUBSCRIBE, subscriber)
    assert client.post(f"/unsubscribe/{confirm_token}").status_code == 400
    assert status_of(app, subscriber) == SubscriberStatus.CONFIRMED
    assert client.post(f"/confirm/{unsubscribe_token}").status_code == 400


def test_an_expired_link_offers_a_new_one(make_app, smtp, start_worker_for):
    app = make_app(CONFIRM_MAX_AGE=1)
    start_worker_for(app)
    client = app.test_client()
    client.post("/subscribe", data={"email": "late@example.org"})
    old_link = link_in(smtp.wait_for(1)[0])
    # Opening a link changes nothing: ask until it has expired.
    wait_until(lambda: client.get(old_link).status_code == 410)

    expired = client.get(old_link)
    assert expired.status_code == 410
    assert b"This link has expired" in expired.data
    assert client.post(old_link).status_code == 410

    renewed = client.post(f"{old_link}/renew")
    assert b"Now check your email" in renewed.data
    new_link = link_in(smtp.wait_for(2)[1])
    assert b"You're subscribed" in client.post(new_link).data


def test_a_link_for_a_deleted_and_recreated_subscription_does_not_work(app, client):
    first = add_subscriber(app)
    token = token_for(app, tokens.CONFIRM, first)
    unsubscribe_token = token_for(app, tokens.UNSUBSCRIBE, first)
    with app.app_context():
        db.session.delete(db.session.get(Subscriber, first))
        db.session.commit()
    again = add_subscriber(app)

    for path in (f"/confirm/{token}", f"/unsubscribe/{unsubscribe_token}"):
        answer = client.post(path)
        assert answer.status_code == 404
        assert b"no longer works" in answer.data
    assert status_of(app, again) == SubscriberStatus.PENDING


def test_keys_rotate_without_breaking_links_in_flight(make_app):
    old_app = make_app(SECRET_KEY="old-key")
    subscriber = add_subscriber(old_app)
    token = token_for(old_app, tokens.CONFIRM, subscriber)

    rotated = make_app(SECRET_KEY="new-key,old-key")
    assert rotated.test_client().post(f"/confirm/{token}").status_code == 200
    assert token_for(rotated, tokens.CONFIRM, subscriber) != token
    dropped = make_app(SECRET_KEY="new-key")
    assert dropped.test_client().post(f"/confirm/{token}").status_code == 400


def test_unsubscribe_page_has_a_button_and_a_get_changes_nothing(app, client):
    subscriber = add_subscriber(app, status=SubscriberStatus.CONFIRMED)
    path = f"/unsubscribe/{token_for(app, tokens.UNSUBSCRIBE, subscriber)}"
    page = client.get(path)
    assert page.status_code == 200
    assert b'<button type="submit">Unsubscribe</button>' in page.data
    assert status_of(app, subscriber) == SubscriberStatus.CONFIRMED

    done = client.post(path)
    assert done.status_code == 200
    assert b"You're unsubscribed" in done.data
    assert status_of(app, subscriber) == SubscriberStatus.UNSUBSCRIBED
    assert client.post(path).status_code == 200
    assert b"You're unsubscribed" in client.get(path).data


def test_one_click_unsubscribe_works_form_encoded_and_multipart(app):
    for content in ("form", "multipart"):
        subscriber = add_subscriber(app, email=f"{content}@example.org", status="confirmed")
        path = f"/unsubscribe/{token_for(app, tokens.UNSUBSCRIBE, subscriber)}"
        client = app.test_client(use_cookies=False)
        if content == "form":
            answer = client.post(
                path,
                data="List-Unsubscribe=One-Click",
                content_type="application/x-www-form-urlencoded",
            )
        else:
            answer = client.post(
                path, data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data"
            )
        assert 200 <= answer.status_code < 300
        assert "Location" not in answer.headers
        assert status_of(app, subscriber) == SubscriberStatus.UNSUBSCRIBED


def test_confirming_after_unsubscribing_keeps_the_reader_unsubscribed(app, client):
    subscriber = add_subscriber(app)
    confirm_path = f"/confirm/{token_for(app, tokens.CONFIRM, subscriber)}"
    client.post(f"/unsubscribe/{token_for(app, tokens.UNSUBSCRIBE, subscriber)}")
    assert client.post(confirm_path).status_code == 404
    assert status_of(app, subscriber) == SubscriberStatus.UNSUBSCRIBED
    with app.app_context():
        assert db.session.scalars(select(EmailJob)).all() == []
