"""The admin's story, in a real browser against the app served over HTTP with a real
worker: log in, write a post in Markdown and watch its live preview, compose a digest
of it with the keyboard alone, preview it at desktop and phone widths, send a test copy,
send it to every subscriber while the progress bar fills, and find it on the dashboard."""

import pytest
from sqlalchemy import select

from newsletter.core.models import utcnow
from newsletter.core.tokens import CONFIRM, make_token
from newsletter.extensions import db
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import ADMIN, add_subscribers, tab_to

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
expect = sync_api.expect

POST_MARKDOWN = "The council said **yes** to [the bridge](https://news.example.org/bridge)."
INTRO_MARKDOWN = "Hello readers, *this week* is all about the bridge."
SUBJECT = "The bridge, at last"


def confirm_through_the_page(browser, app, emails):
    """Each subscriber presses the button on their confirmation page, as subscribers do, so the
    consent log holds their confirmations for the dashboard's chart."""
    base = app.config["BASE_URL"]
    with app.app_context():
        subscribers = db.session.scalars(select(Subscriber).where(Subscriber.email.in_(emails)))
        links = [f"{base}/confirm/{make_token(CONFIRM, subscriber)}" for subscriber in subscribers]
    context = browser.new_context()
    page = context.new_page()
    for link in links:
        page.goto(link)
        page.get_by_role("button", name="Confirm subscription").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("You're subscribed")
    context.close()


def preview_frame(page, width):
    return page.frame_locator(f'iframe[title="Email preview, {width} width"]')


def test_an_admin_writes_composes_tests_and_sends_a_digest_and_sees_it_on_the_dashboard(
    browser, site, smtp
):
    base = site.config["BASE_URL"]
    result = site.test_cli_runner().invoke(args=["create-admin", ADMIN[0], "--password", ADMIN[1]])
    assert result.exit_code == 0, result.output
    subscribers = add_subscribers(site, 3, status=SubscriberStatus.PENDING)
    confirm_through_the_page(browser, site, subscribers)

    page = browser.new_context().new_page()
    page.goto(f"{base}/admin/")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("The Newsletter")

    # A post written by hand: the preview shows the Markdown as the email will.
    page.get_by_role("link", name="Posts").click()
    page.get_by_role("link", name="written by hand").click()
    page.get_by_label("Title").fill("The bridge")
    page.get_by_label("Link").fill("https://news.example.org/bridge")
    page.get_by_label("Summary (Markdown)").fill(POST_MARKDOWN)
    expect(preview_frame(page, "desktop").locator("strong")).to_have_text("yes")
    expect(
        preview_frame(page, "desktop").get_by_role("link", name="the bridge", exact=True)
    ).to_be_visible()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Post saved.")

    # The digest, composed and submitted from the keyboard alone.
    page.get_by_role("link", name="Digests").click()
    page.get_by_role("link", name="Compose a new digest").click()
    tab_to(page, page.get_by_label("Subject"))
    page.keyboard.type(SUBJECT)
    page.keyboard.press("Tab")
    page.keyboard.type(INTRO_MARKDOWN)
    expect(preview_frame(page, "phone").locator("em")).to_have_text("this week")
    the_post = page.get_by_role("checkbox", name="The bridge")
    page.keyboard.press("Tab")
    expect(the_post).to_be_focused()
    expect(the_post).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save and preview")).to_be_focused()
    page.keyboard.press("Enter")

    # Its page: the email at a desktop client's width and a phone's.
    expect(page.get_by_role("heading", level=1)).to_have_text(SUBJECT)
    for width, pixels in (("desktop", 600), ("phone", 375)):
        frame = preview_frame(page, width)
        expect(frame.locator("em")).to_have_text("this week")
        expect(frame.locator("strong")).to_have_text("yes")
        box = page.locator(f'iframe[title="Email preview, {width} width"]').bounding_box()
        assert pixels <= box["width"] <= pixels + 2

    page.get_by_label("Send a test to").fill("editor@example.org")
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_role("status")).to_contain_text("on its way to editor@example.org")
    [test_copy] = smtp.wait_for(1)
    assert (test_copy["To"], test_copy["Subject"]) == ("editor@example.org", SUBJECT)

    # Sent to every subscriber: the page's script polls until the bar is full.
    page.get_by_role("button", name="Send now to every confirmed subscriber").click()
    expect(page.locator("#digest-status")).to_have_text("sent", timeout=20_000)
    bar = page.locator("#progress-bar")
    expect(bar).to_have_attribute("max", "3")
    expect(bar).to_have_attribute("value", "3")
    expect(page.locator("#count-sent")).to_have_text("3")
    received = smtp.wait_for(4)[1:]
    assert {message["To"] for message in received} == subscribers
    assert {message["Subject"] for message in received} == {SUBJECT}

    # The dashboard: the digest and its figures, and today's confirmations in the chart.
    page.get_by_role("link", name="Dashboard").click()
    row = page.locator("#latest-digests tr", has_text=SUBJECT)
    expect(row.locator("td")).to_have_text([SUBJECT, "sent", "3", "0", "0", "0", "0"])
    expect(page.get_by_role("img", name="Subscribers over the last 90 days")).to_be_visible()
    page.get_by_text("The numbers, day by day").click()
    today = page.locator("#list-history tr", has_text=utcnow().date().isoformat())
    expect(today.locator("td")).to_have_text(["3", "3", "0", "0", "0"])
