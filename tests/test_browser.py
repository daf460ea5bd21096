"""In a real browser (headless Chromium): opening the confirmation link, as a mail scanner
does, confirms nothing however long the page stays open; a press of its button does, and
so does the code from the email typed on the "check your email" page. The ALTCHA widget
works under the page's CSP, and its solution signs the subscriber up. A subscriber chooses
among newsletters at sign-up and, by keyboard alone, in their preferences. The embedded
box speaks the browser's language."""

import pytest
from sqlalchemy import select

from harness import another_site, free_port, served
from newsletter.content import posts
from newsletter.extensions import db
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import status_of, tab_to
from tests.smtp import code_in, link_in

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")


def sign_up(page, base, email, smtp, count):
    """Fill in the form as a visitor; the confirmation link from the email that follows."""
    page.goto(f"{base}/")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Subscribe", exact=True).click()
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("Now check your email")
    message = smtp.wait_for(count)[count - 1]
    assert message["To"] == email
    return base + link_in(message, base_url=base)


def test_a_scanner_opening_the_link_confirms_nothing_and_a_click_does(browser, site, smtp):
    base = site.config["BASE_URL"]
    page = browser.new_context().new_page()
    link = sign_up(page, base, "reader@example.org", smtp, count=1)

    # What Safe Links and its peers do: open the page in a real browser, scripts on, and
    # stay on it; the page's clock runs an hour at once, so a form that submitted
    # itself after a delay would have done so.
    scanner = browser.new_context().new_page()
    scanner.clock.install()
    scanner.goto(link)
    scanner.wait_for_load_state("networkidle")
    scanner.clock.run_for("01:00:00")
    scanner.wait_for_load_state("networkidle")
    sync_api.expect(scanner.get_by_role("heading", level=1)).to_have_text(
        "Confirm your subscription"
    )
    assert status_of(site, "reader@example.org") == SubscriberStatus.PENDING

    page.goto(link)
    page.get_by_role("button", name="Confirm subscription").click()
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("You're subscribed")
    assert status_of(site, "reader@example.org") == SubscriberStatus.CONFIRMED


def test_the_code_from_the_email_confirms_on_the_check_email_page(browser, site, smtp):
    base = site.config["BASE_URL"]
    page = browser.new_context().new_page()
    sign_up(page, base, "coder@example.org", smtp, count=1)
    assert page.get_by_label("Email address").input_value() == "coder@example.org"

    page.get_by_label("Six-digit code").fill(code_in(smtp.received[0]))
    page.get_by_role("button", name="Confirm with the code").click()
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("You're subscribed")
    assert status_of(site, "coder@example.org") == SubscriberStatus.CONFIRMED


def test_a_reader_chooses_one_newsletter_and_turns_another_on_by_keyboard(browser, site, smtp):
    base = site.config["BASE_URL"]
    made = site.test_cli_runner().invoke(
        args=["create-newsletter", "breaking", "--name", "Breaking news", "--not-default"]
    )
    assert made.exit_code == 0, made.output
    page = browser.new_context().new_page()
    page.goto(f"{base}/")
    weekly = page.get_by_role("checkbox", name="The Newsletter")
    breaking = page.get_by_role("checkbox", name="Breaking news")
    sync_api.expect(weekly).to_be_checked()
    sync_api.expect(breaking).not_to_be_checked()
    page.get_by_label("Email address").fill("chooser@example.org")
    weekly.uncheck()
    breaking.check()
    page.get_by_role("button", name="Subscribe", exact=True).click()
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("Now check your email")
    page.goto(base + link_in(smtp.wait_for(1)[0], base_url=base))
    page.get_by_role("button", name="Confirm subscription").click()
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("You're subscribed")

    # The first digest of the newsletter chosen brings the link to the preferences.
    with site.app_context():
        posts.save_post(None, "Flood", "https://news.example/flood", "")
    sent = site.test_cli_runner().invoke(
        args=["send-digest", "--subject", "Alert", "--newsletter", "breaking"]
    )
    assert sent.exit_code == 0, sent.output
    digest = smtp.wait_for(2)[1]
    assert (digest["To"], digest["Subject"]) == ("chooser@example.org", "Alert")
    preferences = f"{base}/preferences/"
    page.goto(preferences + link_in(digest, base_url=preferences))
    weekly = page.get_by_role("checkbox", name="The Newsletter")
    breaking = page.get_by_role("checkbox", name="Breaking news")
    # Three newsletters, and "Don't track me".
    sync_api.expect(page.get_by_role("checkbox")).to_have_count(4)
    sync_api.expect(page.get_by_role("checkbox", name="Don't track me")).not_to_be_checked()
    sync_api.expect(weekly).not_to_be_checked()
    sync_api.expect(breaking).to_be_checked()

    tab_to(page, weekly)
    page.keyboard.press("Space")
    tab_to(page, page.get_by_role("button", name="Save"))
    page.keyboard.press("Enter")
    sync_api.expect(page.get_by_role("status")).to_have_text("Saved.")
    sync_api.expect(page.get_by_role("checkbox", name="The Newsletter")).to_be_checked()
    sync_api.expect(page.get_by_role("checkbox", name="Breaking news")).to_be_checked()


def test_the_altcha_widget_solves_its_challenge_under_the_csp_and_signs_up(browser, make_app):
    port = free_port()
    app = make_app(BASE_URL=f"http://127.0.0.1:{port}", CAPTCHA_PROVIDER="altcha")
    page = browser.new_context().new_page()
    refused = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    with served(app, port):
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_label("Email address").fill("person@example.org")
        # Without the check, the form is not sent: the widget asks for it.
        page.get_by_role("button", name="Subscribe", exact=True).click()
        sync_api.expect(page.get_by_role("heading", level=1)).to_have_text(
            "Subscribe to The Newsletter"
        )
        # The widget ticks its box itself, once the work is done.
        page.get_by_role("checkbox").click(force=True)
        sync_api.expect(page.locator("input[name=altcha]")).not_to_have_value("", timeout=30_000)
        page.get_by_role("button", name="Subscribe", exact=True).click()
        sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("Now check your email")
    assert status_of(app, "person@example.org") == SubscriberStatus.PENDING
    assert refused == []


def framing(service):
    return (
        f'<!doctype html><title>News</title><iframe src="{service}/embed" title="Subscribe"'
        ' width="400" height="420"></iframe>'
    )


def with_script(service):
    return (
        '<!doctype html><html lang="en"><title>News</title><h1>An article</h1>'
        '<div data-newsletter-signup data-source="article"></div>'
        f'<script src="{service}/embed.js"></script></html>'
    )


def test_a_site_of_embed_origins_shows_the_box_and_a_sign_up_ends_in_it(browser, make_app):
    port, site_port = free_port(), free_port()
    service = f"http://127.0.0.1:{port}"
    app = make_app(BASE_URL=service, EMBED_ORIGINS=f"http://localhost:{site_port}")
    page = browser.new_context().new_page()
    with served(app, port), another_site(site_port, framing(service)) as news:
        page.goto(news)
        box = page.frame_locator("iframe")
        box.get_by_label("Email address").fill("framed@example.org")
        box.get_by_role("button", name="Subscribe").click()
        sync_api.expect(box.get_by_role("heading", level=1)).to_have_text(
            "Success! Now check your email"
        )
    assert page.url == news
    assert status_of(app, "framed@example.org") == SubscriberStatus.PENDING


def test_a_site_not_in_embed_origins_cannot_show_the_box(browser, make_app):
    port, site_port = free_port(), free_port()
    service = f"http://127.0.0.1:{port}"
    app = make_app(BASE_URL=service, EMBED_ORIGINS="https://news.example")
    page = browser.new_context().new_page()
    refused = []
    page.on("console", lambda message: refused.append(message.text))
    with served(app, port), another_site(site_port, framing(service)) as news:
        page.goto(news)
        page.wait_for_load_state("networkidle")
        sync_api.expect(page.frame_locator("iframe").get_by_label("Email address")).to_have_count(0)
    assert any("frame-ancestors" in text for text in refused), refused


def test_the_script_draws_the_box_on_a_site_of_embed_origins_and_answers_in_place(
    browser, make_app
):
    port, site_port = free_port(), free_port()
    service = f"http://127.0.0.1:{port}"
    app = make_app(BASE_URL=service, EMBED_ORIGINS=f"http://localhost:{site_port}")
    page = browser.new_context().new_page()
    with served(app, port), another_site(site_port, with_script(service)) as news:
        page.goto(news)
        page.get_by_label("Email address").fill("scripted@example.org")
        page.get_by_role("button", name="Subscribe").click()
        sync_api.expect(page.get_by_text("Success! Now check your email")).to_be_visible()
        sync_api.expect(page.get_by_text("spam folder")).to_be_visible()
    assert page.url == news
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber))
        assert (subscriber.email, subscriber.signup_source) == ("scripted@example.org", "article")


def test_the_script_on_a_site_not_in_embed_origins_cannot_sign_anyone_up(browser, make_app):
    port, site_port = free_port(), free_port()
    service = f"http://127.0.0.1:{port}"
    app = make_app(BASE_URL=service, EMBED_ORIGINS="https://news.example")
    page = browser.new_context().new_page()
    with served(app, port), another_site(site_port, with_script(service)) as news:
        page.goto(news)
        page.get_by_label("Email address").fill("stranger@example.org")
        page.get_by_role("button", name="Subscribe").click()
        sync_api.expect(page.get_by_text("could not be reached")).to_be_visible()
    # A JSON post needs the preflight's leave, which the service gave no stranger.
    assert status_of(app, "stranger@example.org") is None


def test_a_german_browser_gets_the_scripts_box_in_german_and_the_reader_keeps_german(
    browser, make_app
):
    port, site_port = free_port(), free_port()
    service = f"http://127.0.0.1:{port}"
    app = make_app(BASE_URL=service, EMBED_ORIGINS=f"http://localhost:{site_port}")
    page = browser.new_context(locale="de-DE").new_page()
    with served(app, port), another_site(site_port, with_script(service)) as news:
        page.goto(news)
        page.get_by_label("E-Mail-Adresse").fill("nonsense")
        page.get_by_role("button", name="Abonnieren").click()
        sync_api.expect(page.get_by_text("Diese E-Mail-Adresse ist ungültig")).to_be_visible()
        page.get_by_label("E-Mail-Adresse").fill("anna@example.org")
        page.get_by_role("button", name="Abonnieren").click()
        sync_api.expect(
            page.get_by_text("Geschafft! Sehen Sie jetzt in Ihr Postfach")
        ).to_be_visible()
    with app.app_context():
        assert db.session.scalar(select(Subscriber.locale)) == "de"
