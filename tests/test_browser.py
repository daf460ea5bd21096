"""In a real browser (headless Chromium): a reader signs up, and opening the link
in the email confirms with no click; without scripts, the button does it."""

import os
import shutil
import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from newsletter.extensions import db
from newsletter.models import Subscriber, SubscriberStatus
from tests.smtp import free_port, link_in

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium as root on a machine with no network but loopback.
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
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def site(make_app, start_worker_for):
    """The app served over real HTTP, with a worker, its links pointing at itself."""
    port = free_port()
    app = make_app(BASE_URL=f"http://127.0.0.1:{port}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    start_worker_for(app)
    yield app
    server.shutdown()
    thread.join()


def status_of(app, email):
    with app.app_context():
        return db.session.scalar(select(Subscriber.status).where(Subscriber.email == email))


def test_opening_the_link_in_a_browser_confirms_without_a_click(site, smtp, browser):
    base = site.config["BASE_URL"]
    page = browser.new_page()
    page.goto(f"{base}/")
    page.fill("#email", "browser@example.org")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Now check your email")

    link = base + link_in(smtp.wait_for(1)[0], base_url=base)
    assert status_of(site, "browser@example.org") == SubscriberStatus.PENDING
    page.goto(link)
    page.wait_for_selector("text=You're subscribed")
    assert status_of(site, "browser@example.org") == SubscriberStatus.CONFIRMED


def test_without_scripts_the_reader_presses_the_button(site, smtp, browser):
    base = site.config["BASE_URL"]
    site.test_client().post("/subscribe", data={"email": "noscript@example.org"})
    link = base + link_in(smtp.wait_for(1)[0], base_url=base)

    page = browser.new_context(java_script_enabled=False).new_page()
    page.goto(link)
    button = page.get_by_role("button", name="Confirm subscription")
    assert button.is_visible()
    assert status_of(site, "noscript@example.org") == SubscriberStatus.PENDING
    button.click()
    page.wait_for_selector("text=You're subscribed")
    assert status_of(site, "noscript@example.org") == SubscriberStatus.CONFIRMED
