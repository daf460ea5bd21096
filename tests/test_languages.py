"""Subscribers in their language: the browser's at sign-up, kept on the subscription and
spoken by every page of theirs and every email they get; English by default."""

import re

import pytest
from sqlalchemy import select

from newsletter.core import settings
from newsletter.core.tokens import PREFERENCES, UNSUBSCRIBE, make_token
from newsletter.extensions import db
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import add_subscribers, log_in, wait_until_sent
from tests.smtp import html_of, link_in, text_of

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


def stored_language(app, email):
    with app.app_context():
        return db.session.scalar(select(Subscriber.locale).where(Subscriber.email == email))


def page_language(response):
    return re.search(r'<html lang="([^"]*)">', response.get_data(as_text=True))[1]


def set_language(app, emails, locale):
    with app.app_context():
        for subscriber in db.session.scalars(
            select(Subscriber).where(Subscriber.email.in_(emails))
        ):
            subscriber.locale = locale
        db.session.commit()


def test_a_german_browser_signs_up_and_every_page_and_email_speaks_german(
    app, client, smtp, worker, feed
):
    form = client.get("/", headers=GERMAN)
    assert page_language(form) == "de"
    assert "<h1>The Newsletter abonnieren</h1>" in form.get_data(as_text=True)
    assert '<label for="email">E-Mail-Adresse</label>' in form.get_data(as_text=True)

    answer = client.post("/subscribe", data={"email": "anna@example.org"}, headers=GERMAN)
    assert "<h1>Sehen Sie jetzt in Ihr Postfach</h1>" in answer.get_data(as_text=True)
    assert stored_language(app, "anna@example.org") == "de"

    [confirmation] = smtp.wait_for(1)
    assert confirmation["Subject"] == "Bestätigen Sie Ihr Abonnement von The Newsletter"
    assert confirmation["Content-Language"] == "de"
    assert '<html lang="de">' in html_of(confirmation)
    assert ">Abonnement bestätigen</a>" in html_of(confirmation)
    assert "bitte bestätigen Sie, dass Sie The Newsletter unter anna@example.org" in text_of(
        confirmation
    )
    assert "Der Link und der Code gelten 48 Stunden." in text_of(confirmation)

    # Opened on another device, whose browser asks for English: the subscriber's own page
    # speaks the subscriber's language.
    english_browser = app.test_client()
    path = link_in(confirmation)
    opened = english_browser.get(path, headers={"Accept-Language": "en-US"})
    assert page_language(opened) == "de"
    assert ">Abonnement bestätigen</button>" in opened.get_data(as_text=True)
    confirmed = english_browser.post(path)
    assert "<h1>Sie sind angemeldet</h1>" in confirmed.get_data(as_text=True)

    welcome = smtp.wait_for(2)[1]
    assert welcome["Subject"] == "Willkommen an Bord"
    assert welcome["Content-Language"] == "de"
    assert '<html lang="de">' in html_of(welcome)
    assert "Vielen Dank für Ihr Abonnement." in text_of(welcome)
    assert "Council approves new bridge" in text_of(welcome)
    assert ">Artikel lesen</a>" in html_of(welcome)
    assert ">Ihre Einstellungen</a> · <a" in html_of(welcome)
    assert "Sie erhalten diese E-Mail, weil Sie The Newsletter abonniert haben." in text_of(welcome)


def test_the_admins_own_welcome_words_reach_every_reader_as_written(app, client, smtp, worker):
    with app.app_context():
        settings.update(welcome_subject="Hallo und welcome", welcome_intro="Our own words.")
    client.post("/subscribe", data={"email": "anna@example.org"}, headers=GERMAN)
    client.post(link_in(smtp.wait_for(1)[0]))
    welcome = smtp.wait_for(2)[1]
    assert welcome["Subject"] == "Hallo und welcome"
    assert "Our own words." in text_of(welcome)
    assert "Abbestellen" in text_of(welcome)


def test_a_digest_gives_each_reader_the_chrome_of_their_language(app, runner, smtp, worker, feed):
    add_subscribers(app, 1, prefix="english")
    add_subscribers(app, 1, prefix="german")
    add_subscribers(app, 1, prefix="unknown")
    set_language(app, ["english0@example.org"], "en")
    set_language(app, ["german0@example.org"], "de")
    result = runner.invoke(args=["send-digest", "--subject", "This week: a bridge"])
    digest_id = int(result.output)
    messages = {message["To"]: message for message in smtp.wait_for(3)}
    wait_until_sent(app, digest_id)

    german = messages["german0@example.org"]
    assert german["Subject"] == "This week: a bridge"
    assert german["Content-Language"] == "de"
    assert '<html lang="de">' in html_of(german)
    assert ">Im Browser ansehen</a>" in html_of(german)
    assert ">Abbestellen</a>" in html_of(german)
    assert "Sie erhalten diese E-Mail, weil Sie The Newsletter abonniert haben." in text_of(german)
    assert "Council approves new bridge" in text_of(german)

    for address in ("english0@example.org", "unknown0@example.org"):
        english = messages[address]
        assert english["Content-Language"] == "en"
        assert '<html lang="en">' in html_of(english)
        assert ">View in browser</a>" in html_of(english)
        assert "You get this because you subscribed to The Newsletter." in text_of(english)

    # The links in the German copy lead to German pages, whatever the browser says.
    unsubscribe = re.search(r"/unsubscribe/\S+", text_of(german))[0]
    page = app.test_client().get(unsubscribe)
    assert page_language(page) == "de"
    # A digest's link leaves its newsletter, or everything with the second button.
    assert "<h1>The Newsletter abbestellen</h1>" in page.get_data(as_text=True)
    assert ">Alles abbestellen</button>" in page.get_data(as_text=True)


def test_a_browser_language_we_do_not_have_gets_the_default(app, client, smtp, worker):
    japanese = {"Accept-Language": "ja-JP,ja;q=0.9,zh;q=0.8"}
    page = client.post("/subscribe", data={"email": "kenji@example.org"}, headers=japanese)
    assert page_language(page) == "en"
    assert b"Now check your email" in page.data
    assert stored_language(app, "kenji@example.org") is None
    [confirmation] = smtp.wait_for(1)
    assert confirmation["Subject"] == "Confirm your subscription to The Newsletter"
    assert '<html lang="en">' in html_of(confirmation)


def test_default_locale_sets_the_language_of_everyone_who_asked_for_none_of_ours(
    make_app, start_worker_for, smtp
):
    app = make_app(DEFAULT_LOCALE="de")
    start_worker_for(app)
    client = app.test_client()
    page = client.post(
        "/subscribe", data={"email": "kenji@example.org"}, headers={"Accept-Language": "ja"}
    )
    assert page_language(page) == "de"
    assert stored_language(app, "kenji@example.org") is None
    [confirmation] = smtp.wait_for(1)
    assert confirmation["Subject"] == "Bestätigen Sie Ihr Abonnement von The Newsletter"
    # A browser that asks for English still gets English, and so do its emails.
    english = client.post(
        "/subscribe", data={"email": "kim@example.org"}, headers={"Accept-Language": "en-GB"}
    )
    assert page_language(english) == "en"
    assert smtp.wait_for(2)[1]["Subject"] == "Confirm your subscription to The Newsletter"


def test_an_unknown_default_locale_stops_the_service_from_starting(make_app):
    with pytest.raises(ValueError, match="DEFAULT_LOCALE='xx'"):
        make_app(DEFAULT_LOCALE="xx")


def test_the_reader_chooses_a_language_on_the_preferences_page_and_the_next_email_speaks_it(
    app, runner, smtp, worker, feed
):
    add_subscribers(app, 1)
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber))
        path = f"/preferences/{make_token(PREFERENCES, subscriber)}"
    client = app.test_client()
    page = client.get(path).get_data(as_text=True)
    assert '<option value="en" lang="en" selected>English</option>' in page
    assert '<option value="de" lang="de">Deutsch</option>' in page

    refused = client.post(path, data={"action": "save", "name": "", "language": "klingon"})
    assert refused.status_code == 400
    assert "Please choose one of the languages offered." in refused.get_data(as_text=True)
    assert stored_language(app, "reader0@example.org") is None

    saved = client.post(path, data={"action": "save", "name": "Jo", "language": "de"})
    assert saved.status_code == 200
    assert page_language(saved) == "de"
    assert "Gespeichert." in saved.get_data(as_text=True)
    assert '<option value="de" lang="de" selected>Deutsch</option>' in saved.get_data(as_text=True)
    assert stored_language(app, "reader0@example.org") == "de"

    digest_id = int(runner.invoke(args=["send-digest"]).output)
    [digest] = smtp.wait_for(1)
    wait_until_sent(app, digest_id)
    assert '<html lang="de">' in html_of(digest)
    assert "Ihre Einstellungen:" in text_of(digest)


def test_the_api_takes_a_language_and_answers_in_it(app, client, smtp, worker):
    answer = client.post("/api/subscribe", json={"email": "a@example.org", "language": "de-AT"})
    assert answer.status_code == 202
    assert stored_language(app, "a@example.org") == "de"
    assert smtp.wait_for(1)[0]["Content-Language"] == "de"

    unsupported = client.post("/api/subscribe", json={"email": "b@example.org", "language": "xx"})
    assert unsupported.status_code == 422
    assert unsupported.json == {"error": '"language" must be one of: en, de.'}
    not_text = client.post("/api/subscribe", json={"email": "b@example.org", "language": ["de"]})
    assert not_text.status_code == 400
    refused = client.post("/api/subscribe", json={"email": "nonsense", "language": "de"})
    assert refused.status_code == 422
    assert refused.json["error"].startswith("Diese E-Mail-Adresse ist ungültig")
    # Without a language, the browser's; without that, the default.
    client.post("/api/subscribe", json={"email": "c@example.org"}, headers=GERMAN)
    assert stored_language(app, "c@example.org") == "de"
    client.post("/api/subscribe", json={"email": "d@example.org"})
    assert stored_language(app, "d@example.org") is None
    assert stored_language(app, "b@example.org") is None


def test_the_embedded_box_and_its_script_speak_the_readers_language(app, client):
    box = client.get("/embed", headers=GERMAN)
    assert page_language(box) == "de"
    assert ">Abonnieren</button>" in box.get_data(as_text=True)
    done = client.post("/embed", data={"email": "e@example.org"}, headers=GERMAN)
    assert "Geschafft! Sehen Sie jetzt in Ihr Postfach" in done.get_data(as_text=True)
    assert stored_language(app, "e@example.org") == "de"

    script = client.get("/embed.js").get_data(as_text=True)
    # One copy for every subscriber: the script picks the language, so it carries them all.
    assert '"subscribe": "Abonnieren"' in script
    assert '"subscribe": "Subscribe"' in script
    assert 'var fallback = "en";' in script
    assert script == client.get("/embed.js", headers=GERMAN).get_data(as_text=True)


def test_the_admin_pages_stay_english_for_a_german_browser(app, client, admin):
    log_in(client)
    page = client.get("/admin/", headers=GERMAN)
    assert page.status_code == 200
    assert page_language(page) == "en"


@pytest.mark.parametrize(
    "header",
    [
        "@@@;;;q=abc,,,",
        "de;q=NaN, en;q=inf",
        "de;q=-1",
        "*",
        "de-" + "x" * 5000,
        ",".join(["xx-YY;q=0.1"] * 3000),
        # As a server hands on UTF-8 bytes: decoded as Latin-1.
        "日本語, Ünïcödé;q=0.5, de".encode().decode("latin-1"),
        "zz" * 40,
    ],
)
def test_hostile_accept_language_headers_get_a_page_in_a_language_of_ours(app, client, header):
    headers = {"Accept-Language": header}
    for response in (
        client.get("/", headers=headers),
        client.post("/subscribe", data={"email": "h@example.org"}, headers=headers),
        client.get("/nowhere", headers=headers),
    ):
        assert response.status_code in (200, 404)
        assert page_language(response) in ("en", "de")
    api = client.post("/api/subscribe", json={"email": "h@example.org"}, headers=headers)
    assert api.status_code == 202
    assert stored_language(app, "h@example.org") in (None, "en", "de")


def test_a_reader_who_never_chose_keeps_following_the_default(app, client):
    add_subscribers(app, 1, status=SubscriberStatus.CONFIRMED)
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber))
        path = f"/preferences/{make_token(PREFERENCES, subscriber)}"
        unsubscribe = f"/unsubscribe/{make_token(UNSUBSCRIBE, subscriber)}"
    client.post(path, data={"action": "save", "name": "Jo", "language": "en"})
    assert stored_language(app, "reader0@example.org") is None
    # No language of their own: their pages follow the browser.
    assert page_language(client.get(unsubscribe, headers=GERMAN)) == "de"


def test_the_admin_sees_each_readers_language_on_their_page_and_in_the_api(
    app, client, admin, runner
):
    client.post("/subscribe", data={"email": "greta@example.org"}, headers=GERMAN)
    client.post(
        "/subscribe", data={"email": "kenji@example.org"}, headers={"Accept-Language": "ja"}
    )
    with app.app_context():
        ids = dict(db.session.execute(select(Subscriber.email, Subscriber.id)).all())
    log_in(client)
    assert "emails in Deutsch" in client.get(f"/admin/subscribers/{ids['greta@example.org']}").text
    assert (
        "emails in English (the default)"
        in client.get(f"/admin/subscribers/{ids['kenji@example.org']}").text
    )

    key = runner.invoke(args=["create-api-key", "crm"]).output.strip().splitlines()[-1]
    listed = client.get("/api/v1/subscribers", headers={"Authorization": f"Bearer {key}"}).json
    assert {item["email"]: item["language"] for item in listed["items"]} == {
        "greta@example.org": "de",
        "kenji@example.org": None,
    }
