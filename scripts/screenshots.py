"""Remake the docs' screenshots: python scripts/screenshots.py [OUTDIR]

Builds the app on a temporary SQLite database with demo data (subscribers who came over
90 days, a few who left, posts and two sent digests, the later one tracked), serves it
on a free port of 127.0.0.1, and photographs it in Debian's headless Chromium through
Playwright: the dashboard, the composer with its live preview, the sign-up box on a page
of another origin before and after a sign-up, and the tracked digest's opens and clicks
after subscribers' and link scanners' requests on its links. Nothing leaves loopback (no
redirect is followed); OUTDIR defaults to docs/screenshots/.
"""

import http.client
import random
import secrets
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

# Run as a file, the script sees scripts/ on its path, not the project it photographs.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade
from playwright.sync_api import expect, sync_playwright
from sqlalchemy import select

from config import Config
from harness import CHROMIUM, CHROMIUM_ARGS, another_site, free_port, served
from newsletter import create_app
from newsletter.admins import accounts
from newsletter.content import digests, posts
from newsletter.content.models import Digest, DigestStatus, TrackingMode
from newsletter.core import tokens
from newsletter.core.models import utcnow
from newsletter.engagement import links
from newsletter.extensions import db
from newsletter.mail.digest import DigestMessages
from newsletter.sending.models import Delivery, DeliveryStatus
from newsletter.subscribers.models import ConsentEvent, ConsentKind, Subscriber, SubscriberStatus

ADMIN = ("editor@example.org", secrets.token_urlsafe(16))
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
GMAIL_PROXY = "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"
DAYS = 90
COMPOSER_WIDTH = 1440
POSTS = [
    (
        "The bridge opens in spring",
        "The council said **yes**: [the dates](https://news.example/b).",
    ),
    ("A new library for the old town", "Three floors of books, and a *reading garden*."),
    ("Night buses return", "Lines 4 and 9 run again **after midnight** from May."),
    ("The market moves indoors", "Stalls find a roof in the old tram depot."),
]
COMPOSED = """The council voted **yes** on the new bridge, and [the dates](https://news.example/b) \
are out.

- Cost: 12 million
- Opens: *in spring*

> Finally, said the mayor."""


def build_app(instance, port, site_port):
    settings = {
        "SECRET_KEY": secrets.token_hex(32),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'demo.sqlite'}",
        "CELERY_BROKER_URL": None,
        "MAIL_SERVER": None,
        "OUTBOX_DIR": str(instance / "outbox"),
        "BASE_URL": f"http://127.0.0.1:{port}",
        "EMBED_ORIGINS": f"http://localhost:{site_port}",
        "FEED_URL": None,
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    app = create_app(type("ScreenshotConfig", (Config,), settings), instance_path=str(instance))
    with app.app_context():
        upgrade()
        accounts.create_admin(*ADMIN)
        add_subscribers(random.Random(90))
        tracked_digest = add_posts_and_digests()
    return app, tracked_digest


def add_subscribers(rng):
    """Subscribers who confirmed before the chart's window and in it, growing week by week,
    with a rush after each digest, some still pending and a few who left."""
    now = utcnow()
    signups = [(now - timedelta(days=rng.uniform(95, 400)), False) for _ in range(240)]
    for days_ago in range(DAYS - 1, -1, -1):
        rush = 9 if days_ago in (60, 25) else 0
        for _ in range(rng.randint(0, 3 + (DAYS - days_ago) // 15) + rush):
            signed_up = now - timedelta(days=days_ago, hours=rng.uniform(0, 20))
            signups.append((signed_up, rng.random() < 0.08))
    subscribers = [
        Subscriber(email=f"reader{n}@example.org", signup_at=signed_up, signup_source="form")
        for n, (signed_up, _pending) in enumerate(signups)
    ]
    db.session.add_all(subscribers)
    db.session.flush()
    for subscriber, (_signed_up, pending) in zip(subscribers, signups, strict=True):
        db.session.add_all(consent(subscriber, rng, pending))
    db.session.commit()


def consent(subscriber, rng, pending):
    """The subscriber's consent log, and the status it leaves them in."""
    signed_up = subscriber.signup_at
    events = [ConsentEvent(kind=ConsentKind.SIGNUP, at=signed_up, source="form")]
    if not pending:
        confirmed = signed_up + timedelta(minutes=3)
        subscriber.status, subscriber.confirmed_at = SubscriberStatus.CONFIRMED, confirmed
        events.append(ConsentEvent(kind=ConsentKind.CONFIRM, at=confirmed, source="link"))
        left = confirmed + timedelta(days=rng.uniform(1, 30))
        if rng.random() < 0.07 and left < utcnow():
            subscriber.status, subscriber.unsubscribed_at = SubscriberStatus.UNSUBSCRIBED, left
            events.append(ConsentEvent(kind=ConsentKind.UNSUBSCRIBE, at=left, source="one-click"))
    for event in events:
        event.subscriber_id = subscriber.id
    return events


def add_posts_and_digests():
    """Four posts, two digests of two each, sent to everyone confirmed at the time; the
    later one's newsletter counts opens and clicks. Returns the later one's id."""
    written = [
        posts.save_post(None, title, f"https://news.example/{n}", markdown)
        for n, (title, markdown) in enumerate(POSTS)
    ]
    for days_ago, subject, pair in (
        (60, "Spring plans", written[:2]),
        (25, "Back at night", written[2:]),
    ):
        digest = digests.create_digest(subject, "This week in **the town**.", [p.id for p in pair])
        sent = utcnow() - timedelta(days=days_ago)
        digest.status, digest.started_at, digest.finished_at = DigestStatus.SENT, sent, sent
        subscribers = db.session.scalars(
            select(Subscriber.id).where(Subscriber.confirmed_at < sent)
        )
        db.session.add_all(
            Delivery(
                digest_id=digest.id,
                subscriber_id=subscriber,
                status=DeliveryStatus.SENT,
                sent_at=sent,
            )
            for subscriber in subscribers
        )
        db.session.commit()
    digest.newsletter.tracking = TrackingMode.COUNTS
    db.session.commit()
    # Its links recorded, as its first render for sending records them.
    DigestMessages(digest, track_links=lambda urls: links.positions_for(digest.id, urls))
    return digest.id


def subscribers_requests(app, base, digest_id, rng):
    """Requests on the tracked digest's links and pixel, over HTTP: subscribers who open it
    and follow the article they want, mail proxies that fetch every image, and mail
    gateways that check every link of a copy, the invisible trap's included."""
    with app.app_context():
        digest = db.session.get(Digest, digest_id)
        positions = sorted(links.positions_for(digest_id, []).values())
        nonces = db.session.scalars(
            select(Subscriber.token_nonce)
            .join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Delivery.digest_id == digest_id)
        ).all()
        copies = [
            tokens.make_tracking_tokens(digest_id, [0, *positions], nonce, digest.newsletter_id)
            for nonce in nonces
        ]
    server = http.client.HTTPConnection(*base.removeprefix("http://").split(":"))

    def request(method, path, agent):
        server.request(method, path, headers={"User-Agent": agent})
        server.getresponse().read()

    for clicks, opened in copies:
        chance = rng.random()
        if chance < 0.08:
            for token in clicks.values():
                request("HEAD", f"/r/{token}", BROWSER)
        elif chance < 0.2:
            request("GET", f"/o/{opened}", GMAIL_PROXY)
        elif chance < 0.55:
            request("GET", f"/o/{opened}", BROWSER)
            if rng.random() < 0.45:
                chosen = positions[0] if rng.random() < 0.7 else positions[-1]
                request("GET", f"/r/{clicks[chosen]}", BROWSER)
    server.close()


def article(service):
    """A news site's article with the sign-up box drawn by the service's script; the
    box takes its looks from the site's stylesheet, as it would on a real one."""
    return f"""<!doctype html><html lang="en"><title>The Town Gazette</title>
<style>
body {{ font: 16px/1.5 Georgia, serif; max-width: 560px; margin: 2rem auto; color: #222 }}
.newsletter-signup {{ display: grid; gap: .3rem; padding: 1rem; border: 1px solid #ccc;
  border-radius: 6px; background: #f7f5ef; font-family: sans-serif }}
.newsletter-signup input {{ padding: .4rem; font-size: 1rem }}
.newsletter-signup button {{ justify-self: start; padding: .4rem 1rem; font-size: 1rem }}
</style>
<body>
<h1>The bridge opens in spring</h1>
<p>After ten years of plans, the council voted yes. Get the week's news by email:</p>
<div data-newsletter-signup data-source="article"></div>
<script src="{service}/embed.js" async></script></body></html>"""


def log_in(page, base):
    page.goto(f"{base}/admin/login")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Latest digests")).to_be_visible()


def shoot_dashboard(page, outdir):
    """From the top to the latest digests: the counts, the chart and the figures."""
    end = page.locator("#latest-digests").bounding_box()
    height = end["y"] + end["height"] + 24
    page.screenshot(
        path=outdir / "dashboard.png",
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": height},
    )


def shoot_composer(browser, base, outdir):
    """The form and, beside each other, both preview frames: wider than the dashboard,
    and tall enough that the frames are painted, not left blank below the fold."""
    page = browser.new_page(viewport={"width": COMPOSER_WIDTH, "height": 1200})
    log_in(page, base)
    page.goto(f"{base}/admin/posts/new")
    page.get_by_label("Title").fill("The bridge opens in spring")
    page.get_by_label("Link").fill("https://news.example/bridge")
    page.get_by_label("Summary (Markdown)").fill(COMPOSED)
    for width in ("desktop", "phone"):
        frame = page.frame_locator(f'iframe[title="Email preview, {width} width"]')
        expect(frame.locator("blockquote")).to_be_visible()
    preview = page.locator("section[aria-labelledby=preview-heading] > div").bounding_box()
    height = preview["y"] + preview["height"] + 16
    page.screenshot(
        path=outdir / "composer.png",
        clip={"x": 0, "y": 0, "width": COMPOSER_WIDTH, "height": height},
    )


def shoot_embed(browser, news, outdir):
    page = browser.new_page(viewport={"width": 720, "height": 380})
    page.goto(news)
    expect(page.get_by_label("Email address")).to_be_visible()
    page.screenshot(path=outdir / "embed-before.png")
    page.get_by_label("Email address").fill("new.reader@example.org")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_text("Success! Now check your email")).to_be_visible()
    page.screenshot(path=outdir / "embed-after.png")
    page.close()


def shoot_digest_figures(browser, base, digest_id, outdir):
    """The tracked digest's section of opens and clicks, down to the preview with each
    link's share: tall enough that its frame is painted, not left blank below the fold."""
    page = browser.new_page(viewport={"width": 1280, "height": 2400})
    log_in(page, base)
    page.goto(f"{base}/admin/digests/{digest_id}")
    frame = page.frame_locator("#engagement-preview")
    expect(frame.locator("[data-link-share]").first).to_be_visible()
    section = page.locator("#engagement").bounding_box()
    page.screenshot(
        path=outdir / "digest-figures.png",
        clip={"x": 0, "y": section["y"] - 8, "width": 1280, "height": section["height"] + 16},
    )
    page.close()


def main(outdir):
    outdir.mkdir(parents=True, exist_ok=True)
    port, site_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as instance:
        app, tracked_digest = build_app(Path(instance), port, site_port)
        with (
            served(app, port),
            another_site(site_port, article(base)) as news,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            log_in(page, base)
            shoot_dashboard(page, outdir)
            shoot_composer(browser, base, outdir)
            shoot_embed(browser, news, outdir)
            subscribers_requests(app, base, tracked_digest, random.Random(19))
            shoot_digest_figures(browser, base, tracked_digest, outdir)
            browser.close()
        with app.app_context():
            db.engine.dispose()
    for png in sorted(outdir.glob("*.png")):
        print(f"{png} ({png.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
