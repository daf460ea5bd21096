"""Accessibility, in a real browser (headless Chromium): axe-core finds nothing serious
or critical on any public or admin page, and a subscriber who only uses the keyboard can
sign up and confirm without ever landing in the field that is there to catch bots."""

import dns.resolver
import pytest
from sqlalchemy import select

from harness import free_port, served
from newsletter.admins import api_keys
from newsletter.content import newsletters
from newsletter.content.models import Digest, DigestStatus, Post
from newsletter.core.models import utcnow
from newsletter.core.tokens import CONFIRM, PREFERENCES, UNSUBSCRIBE, make_token, make_token_for
from newsletter.extensions import db
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from newsletter.webhooks.models import WebhookEndpoint
from tests.helpers import ADMIN, add_subscriber

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
axe_playwright = pytest.importorskip(
    "axe_playwright_python.sync_playwright", reason="axe-playwright-python is missing"
)

# Moderate and minor findings are worth a look, but only these block a subscriber outright.
BLOCKING = {"serious", "critical"}


@pytest.fixture
def page(browser):
    context = browser.new_context()
    yield context.new_page()
    context.close()


@pytest.fixture
def site(make_app):
    """The app served over real HTTP (no worker: no email needs to go out)."""
    port = free_port()
    app = make_app(BASE_URL=f"http://127.0.0.1:{port}")
    with served(app, port):
        yield app


class Findings:
    """What axe reports as blocking, page by page, so one run names every fix."""

    def __init__(self, page):
        self.page = page
        self.axe = axe_playwright.Axe()
        self.by_page = {}

    def check(self, name):
        results = self.axe.run(self.page)
        blocking = [v for v in results.response["violations"] if v["impact"] in BLOCKING]
        if blocking:
            self.by_page[name] = blocking

    def report(self):
        lines = []
        for name, violations in self.by_page.items():
            lines.append(f"{name}:")
            for violation in violations:
                targets = [node["target"] for node in violation["nodes"][:3]]
                lines.append(
                    f"  {violation['id']} [{violation['impact']}] {violation['help']}: {targets}"
                )
        return "\n".join(lines)


def subscriber_with_links(app, email, status):
    """A subscriber without newsletters, and their confirm, unsubscribe and preferences tokens."""
    with app.app_context():
        subscriber = Subscriber(email=email, status=status, signup_source="test")
        db.session.add(subscriber)
        db.session.commit()
        return subscriber.id, {
            purpose: make_token(purpose, subscriber)
            for purpose in (CONFIRM, UNSUBSCRIBE, PREFERENCES)
        }


def add_digests(app):
    """A post, a draft digest that carries it, and a sent one for the archive."""
    with app.app_context():
        post = Post(guid="post-1", link="https://example.org/1", title="A post", summary_html="")
        draft = Digest(subject="Next week", intro="Hello", posts=[post])
        sent = Digest(
            subject="Last week", status=DigestStatus.SENT, started_at=utcnow(), finished_at=utcnow()
        )
        db.session.add_all([post, draft, sent])
        db.session.commit()
        return draft.id


def add_admin_rows(app):
    """A webhook endpoint and an API key, so their tables show a row and its button."""
    with app.app_context():
        db.session.add(
            WebhookEndpoint(
                url="https://hooks.example.org/newsletter",
                events="subscriber.confirmed",
                secret="whsec_c2VjcmV0",
                last_status=500,
                last_error="The endpoint answered 500",
                last_delivery_at=utcnow(),
            )
        )
        api_keys.create("Deploy script")


def test_no_public_page_has_serious_or_critical_violations(site, page):
    app, url = site, site.config["BASE_URL"]
    pending_tokens = subscriber_with_links(app, "pending@example.org", SubscriberStatus.PENDING)[1]
    confirmed_tokens = subscriber_with_links(app, "reader@example.org", SubscriberStatus.CONFIRMED)[
        1
    ]
    findings = Findings(page)

    page.goto(f"{url}/")
    findings.check("sign-up page")
    page.get_by_label("Email address").fill("new@example.org")
    page.get_by_role("button", name="Subscribe", exact=True).click()
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("Now check your email")
    findings.check("check your email")

    page.goto(f"{url}/confirm/{pending_tokens[CONFIRM]}")
    findings.check("confirm")
    page.get_by_role("button", name="Confirm subscription").click()
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("You're subscribed")
    findings.check("confirmed")

    for name, path in [
        ("unsubscribe", f"/unsubscribe/{confirmed_tokens[UNSUBSCRIBE]}"),
        ("preferences", f"/preferences/{confirmed_tokens[PREFERENCES]}"),
        ("embed", "/embed"),
        ("not found", "/no-such-page"),
        ("archive", "/archive"),
    ]:
        page.goto(url + path)
        findings.check(name)

    # A digest's link: the page names its newsletter and offers everything as well.
    with app.app_context():
        breaking = newsletters.create("breaking", "Breaking news").id
    _, nonce = add_subscriber(app, "both@example.org", [1, breaking])
    with app.app_context():
        leave = make_token_for(UNSUBSCRIBE, nonce, breaking)
    page.goto(f"{url}/unsubscribe/{leave}")
    findings.check("unsubscribe from one newsletter")
    page.get_by_role("button", name="Unsubscribe from Breaking news").click()
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("You left Breaking news")
    findings.check("left one newsletter")

    assert not findings.by_page, findings.report()


def test_no_admin_page_has_serious_or_critical_violations(site, page, admin, monkeypatch):
    app, url = site, site.config["BASE_URL"]

    # No DNS here: every record is simply missing, at once.
    def no_records(name, rdtype, lifetime):
        raise dns.resolver.NXDOMAIN

    monkeypatch.setattr(dns.resolver, "resolve", no_records)
    subscriber_id = subscriber_with_links(app, "reader@example.org", SubscriberStatus.CONFIRMED)[0]
    digest_id = add_digests(app)
    add_admin_rows(app)
    findings = Findings(page)

    page.goto(f"{url}/admin/login")
    findings.check("login")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    sync_api.expect(page.get_by_role("navigation", name="Admin")).to_be_visible()

    for name, path in [
        ("dashboard", "/admin/"),
        ("subscribers", "/admin/subscribers"),
        ("a subscriber", f"/admin/subscribers/{subscriber_id}"),
        ("import", "/admin/subscribers/import"),
        ("posts", "/admin/posts"),
        ("new post", "/admin/posts/new"),
        ("digests", "/admin/digests"),
        ("new digest", "/admin/digests/new"),
        ("a digest", f"/admin/digests/{digest_id}"),
        ("newsletters", "/admin/newsletters"),
        ("new newsletter", "/admin/newsletters/new"),
        ("a newsletter", "/admin/newsletters/1"),
        ("blocked domains", "/admin/blocked-domains"),
        ("deliverability", "/admin/deliverability"),
        ("inbound mail", "/admin/inbound"),
        ("webhooks", "/admin/webhooks"),
        ("API keys", "/admin/api-keys"),
        ("settings", "/admin/settings"),
        ("two-factor login", "/admin/two-factor"),
    ]:
        response = page.goto(url + path)
        assert response.ok, f"{path}: {response.status}"
        findings.check(name)

    assert not findings.by_page, findings.report()


def focused(page):
    """The focused element as a subscriber hears it: its id, or else its text."""
    return page.evaluate("() => document.activeElement.id || document.activeElement.innerText")


def tab_to(page, target, most=10):
    """Press Tab until ``target`` has the focus; every stop on the way."""
    stops = []
    while focused(page) != target:
        assert len(stops) < most, f"Tab never reached {target!r}, only {stops}"
        page.keyboard.press("Tab")
        stops.append(focused(page))
    return stops


def test_a_keyboard_only_reader_signs_up_and_confirms_without_meeting_the_honeypot(site, page):
    app, url = site, site.config["BASE_URL"]

    page.goto(f"{url}/")
    stops = tab_to(page, "email")
    page.keyboard.type("keys@example.org")
    # The honeypot sits between the name field and the button: a person tabbing there
    # would fill it in and be taken for a bot.
    stops += tab_to(page, "Subscribe")
    assert "website" not in stops, stops
    page.keyboard.press("Enter")
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("Now check your email")

    with app.app_context():
        subscriber = db.session.scalar(
            select(Subscriber).where(Subscriber.email == "keys@example.org")
        )
        link = f"{url}/confirm/{make_token(CONFIRM, subscriber)}"
    page.goto(link)
    tab_to(page, "Confirm subscription")
    page.keyboard.press("Enter")
    sync_api.expect(page.get_by_role("heading", level=1)).to_have_text("You're subscribed")
    with app.app_context():
        assert db.session.get(Subscriber, subscriber.id).status == SubscriberStatus.CONFIRMED
