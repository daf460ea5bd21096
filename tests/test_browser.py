"""In a real browser (headless Chromium): a reader signs up on the page, and opening the
link in the email confirms with no click; with scripts off, the button does it."""

import os
import shutil
import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from newsletter import settings
from newsletter.extensions import db
from newsletter.models import Subscriber, SubscriberStatus
from tests.smtp import free_port, link_in

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Playwright cannot download its own browser here, so it drives Debian's Chromium, as root
# (hence no sandbox), with nothing that would reach out beyond loopback.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def site(make_app, start_worker_for):
    """The app served over real HTTP with a worker; the links it emails point back at it."""
    # The port goes into BASE_URL, which the app needs before it is built.
    port = free_port()
    app = make_app(BASE_URL=f"http://127.0.0.1:{port}")
    with app.app_context():
        # Each step waits for one more email; a welcome email would arrive in between.
        settings.update(welcome_enabled=False)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    start_worker_for(app)
    yield app
    server.shutdown()
    server.server_close()
    thread.join()


def status_of(app, email):
    with app.app_context():
        status = db.session.scalar(select(Subscriber.status).where(Subscriber.email == email))
        db.session.rollback()
        return status


def sign_up(page, base, email, smtp, count):
    """Fill in the form as a visitor; the confirmation link from the email that follows."""
    page.goto(f"{base}/")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Subscribe", exact=True).click()
    sync_api.expect(page.get_by_role("heading")).to_have_text("Now check your email")
    message = smtp.wait_for(count)[count - 1]
    assert message["To"] == email
    return base + link_in(message, base_url=base)


def test_the_link_in_the_email_confirms_in_a_browser_and_without_scripts_the_button_does(
    browser, site, smtp
):
    base = site.config["BASE_URL"]

    page = browser.new_context().new_page()
    link = sign_up(page, base, "reader@example.org", smtp, count=1)
    assert status_of(site, "reader@example.org") == SubscriberStatus.PENDING

    page.goto(link)
    sync_api.expect(page.get_by_role("heading")).to_have_text("You're subscribed")
    assert status_of(site, "reader@example.org") == SubscriberStatus.CONFIRMED

    page = browser.new_context(java_script_enabled=False).new_page()
    link = sign_up(page, base, "noscript@example.org", smtp, count=2)
    page.goto(link)
    sync_api.expect(page.get_by_role("heading")).to_have_text("Confirm your subscription")
    button = page.get_by_role("button", name="Confirm subscription")
    sync_api.expect(button).to_be_visible()
    # Opening the link is all a mail scanner does, and it must not confirm anyone.
    page.wait_for_load_state("networkidle")
    assert status_of(site, "noscript@example.org") == SubscriberStatus.PENDING

    button.click()
    sync_api.expect(page.get_by_role("heading")).to_have_text("You're subscribed")
    assert status_of(site, "noscript@example.org") == SubscriberStatus.CONFIRMED
