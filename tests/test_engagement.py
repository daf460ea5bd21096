"""Engagement tracking (issue 19): opens and clicks per digest, people counted apart from
link scanners and mail proxies, nothing kept that the newsletter's mode does not allow."""

import re
from datetime import timedelta

import pytest
import sqlalchemy
from sqlalchemy import func, select

from newsletter.core import tokens
from newsletter.core.models import utcnow
from newsletter.engagement import events, figures, rules
from newsletter.engagement.models import EngagementEvent, EngagementKind, EngagementTotal
from newsletter.extensions import db
from newsletter.sending.models import Delivery
from newsletter.subscribers import privacy
from newsletter.subscribers.models import Subscriber
from tests.helpers import wait_until, wait_until_events_written
from tests.smtp import html_of, text_of
from tests.tracked_digests import (
    ARTICLES,
    BROWSER,
    OPEN_LINK,
    TRACKED_LINK,
    article_site,
    path_of,
    send_digest,
    tracked_links,
)


def figures_of(app, digest_id):
    wait_until_events_written(app)
    with app.app_context():
        return figures.figures(digest_id)


def events_of(app):
    wait_until_events_written(app)
    with app.app_context():
        return db.session.scalars(select(EngagementEvent).order_by(EngagementEvent.id)).all()


def test_off_rewrites_nothing_and_adds_no_pixel(app, smtp, worker):
    with article_site() as origin:
        _digest_id, copies = send_digest(app, smtp, "off", origin)
    message = copies["reader@example.org"]
    for part in (html_of(message), text_of(message)):
        assert f"{origin}/harbour" in part
        assert "/r/" not in part
        assert "/o/" not in part
    assert 'aria-hidden="true"' not in html_of(message)


def test_a_person_clicking_in_a_browser_counts_one_human_click_and_lands_on_the_article(
    site, smtp, browser
):
    site.config["TRACKING_MIN_SECONDS"] = 1
    with article_site() as origin:
        digest_id, copies = send_digest(site, smtp, "per-reader", origin)
        message = copies["reader@example.org"]
        # Tracked in both parts; the subscriber's own links and "View in browser" are not.
        assert f"{origin}/harbour" not in html_of(message) + text_of(message)
        assert TRACKED_LINK.search(text_of(message))
        assert "/unsubscribe/" in message["List-Unsubscribe"]
        assert re.search(r"/preferences/\S+", text_of(message))
        assert "/archive/" in text_of(message)
        with site.app_context():
            sent_at = db.session.scalar(select(Delivery.sent_at))
        # A person reads after the minimum delay; a scanner on arrival would not wait.
        wait_until(lambda: utcnow() > sent_at + timedelta(seconds=1.5))

        page = browser.new_page()
        page.set_content(html_of(message))
        page.get_by_role("link", name=ARTICLES["harbour"]).click()
        page.wait_for_url(f"{origin}/harbour")
        assert page.get_by_role("heading").inner_text() == ARTICLES["harbour"]
        page.close()

    counted = figures_of(site, digest_id)
    assert (counted.clicks.human, counted.clicks.machine, counted.clicks.human_copies) == (1, 0, 1)
    by_url = {link.url: link.counts for link in counted.links}
    assert by_url[f"{origin}/harbour"].human == 1
    assert by_url[f"{origin}/council"].human == 0
    # The pixel loaded with the page: one open, a person's; an open is never a click.
    assert (counted.opens.human, counted.opens.machine) == (1, 0)


def test_a_scanner_requesting_every_link_within_a_second_counts_only_as_machine(
    app, client, smtp, worker
):
    app.config["TRACKING_MIN_SECONDS"] = 0
    with article_site() as origin:
        digest_id, copies = send_digest(app, smtp, "counts", origin)
    links = tracked_links(copies["reader@example.org"])
    # Two articles and the trap; the scanner looks like a browser, and follows them all.
    assert len(links) == 3
    answers = [client.get(path_of(link), headers={"User-Agent": BROWSER}) for link in links]
    assert [answer.status_code for answer in answers] == [302, 302, 302]
    assert {answer.headers["Location"] for answer in answers} >= {
        f"{origin}/harbour",
        f"{origin}/council",
    }

    counted = figures_of(app, digest_id)
    assert (counted.clicks.human, counted.clicks.machine) == (0, 3)
    assert all(link.counts.human == 0 for link in counted.links)
    # Counts mode: no row names the subscriber, nor keeps their address or browser.
    assert all(event.subscriber_id is None for event in events_of(app))


def test_head_requests_count_as_machine_and_still_redirect(app, client, smtp, worker):
    app.config["TRACKING_MIN_SECONDS"] = 0
    with article_site() as origin:
        digest_id, copies = send_digest(app, smtp, "counts", origin)
    # The trap comes first in the HTML; the articles follow.
    link = tracked_links(copies["reader@example.org"])[1]
    checked = client.head(path_of(link), headers={"User-Agent": BROWSER})
    assert checked.status_code == 302
    assert checked.headers["Cache-Control"] == "no-store"
    followed = client.get(path_of(link), headers={"User-Agent": BROWSER})
    assert followed.headers["Location"] == checked.headers["Location"]
    counted = figures_of(app, digest_id)
    assert (counted.clicks.human, counted.clicks.machine) == (1, 1)


def test_a_changed_token_is_a_404(app, client, smtp, worker):
    with article_site() as origin:
        digest_id, copies = send_digest(app, smtp, "counts", origin)
    message = copies["reader@example.org"]
    click = path_of(tracked_links(message)[0])
    pixel = path_of(OPEN_LINK.search(html_of(message))[0])
    for path in (click, pixel):
        head, signature = path.rsplit(".", 1)
        changed = f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
        assert client.get(changed).status_code == 404
    assert client.get("/r/garbage").status_code == 404
    with app.app_context():
        nonce = db.session.scalar(select(Subscriber.token_nonce))
        # Signed by us, but for a link the digest does not carry, or another newsletter.
        no_such_link, _ = tokens.make_tracking_tokens(digest_id, [99], nonce, 1)
        other_newsletter, _ = tokens.make_tracking_tokens(digest_id, [1], nonce, 2)
    assert client.get(f"/r/{no_such_link[99]}").status_code == 404
    assert client.get(f"/r/{other_newsletter[1]}").status_code == 404
    assert events_of(app) == []


def test_per_reader_events_are_the_readers_data_and_go_with_them(app, client, smtp, worker):
    app.config["TRACKING_MIN_SECONDS"] = 0
    with article_site() as origin:
        _digest_id, copies = send_digest(app, smtp, "per-reader", origin)
    message = copies["reader@example.org"]
    followed = client.get(path_of(tracked_links(message)[1]), headers={"User-Agent": BROWSER})
    wait_until_events_written(app)
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber))
        data = privacy.data_of(subscriber)
        assert [event["link"] for event in data["opens_and_clicks"]] == [
            followed.headers["Location"]
        ]
        privacy.erase(subscriber, by="reader")
        assert db.session.scalar(select(func.count(EngagementEvent.id))) == 0


def test_sec_gpc_and_dont_track_me_count_with_no_name(app, client, smtp, worker):
    app.config["TRACKING_MIN_SECONDS"] = 0
    subscribers = ("gpc@example.org", "refuses@example.org", "tracked@example.org")
    with article_site() as origin:
        digest_id, copies = send_digest(app, smtp, "per-reader", origin, subscribers)
    with app.app_context():
        refuser = db.session.scalar(select(Subscriber).where(Subscriber.email == subscribers[1]))
        preferences = tokens.make_token(tokens.PREFERENCES, refuser)
    page = client.get(f"/preferences/{preferences}")
    assert b"Don&#39;t track me" in page.data or b"Don't track me" in page.data
    saved = client.post(
        f"/preferences/{preferences}",
        data={"name": "", "tracking_shown": "1", "tracking_refused": "yes"},
    )
    assert saved.status_code == 200

    for subscriber in subscribers:
        headers = {
            "User-Agent": BROWSER,
            **({"Sec-GPC": "1"} if subscriber == subscribers[0] else {}),
        }
        first = tracked_links(copies[subscriber])[1]
        assert client.get(path_of(first), headers=headers).status_code == 302

    named = [event.subscriber_id for event in events_of(app)]
    with app.app_context():
        tracked_id = db.session.scalar(
            select(Subscriber.id).where(Subscriber.email == subscribers[2])
        )
    assert named == [None, None, tracked_id]
    assert figures_of(app, digest_id).clicks.human == 3


def test_an_open_through_a_mail_proxy_counts_as_machine(app, client, smtp, worker):
    app.config["TRACKING_MIN_SECONDS"] = 0
    with article_site() as origin:
        digest_id, copies = send_digest(app, smtp, "counts", origin)
    pixel = path_of(OPEN_LINK.search(html_of(copies["reader@example.org"]))[0])
    gmail = (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    image = client.get(pixel, headers={"User-Agent": gmail})
    assert image.status_code == 200
    assert image.mimetype == "image/gif"
    assert image.headers["Cache-Control"] == "no-store"
    apple = {"REMOTE_ADDR": "17.58.0.9"}
    client.get(pixel, headers={"User-Agent": "Mozilla/5.0"}, environ_base=apple)
    client.get(pixel, headers={"User-Agent": BROWSER})
    counted = figures_of(app, digest_id)
    assert (counted.opens.human, counted.opens.machine, counted.opens.human_copies) == (1, 2, 1)
    assert (counted.clicks.human, counted.clicks.machine) == (0, 0)


def test_a_click_sooner_than_the_minimum_after_delivery_is_a_machines(app, client, smtp, worker):
    app.config["TRACKING_MIN_SECONDS"] = 3600
    with article_site() as origin:
        digest_id, copies = send_digest(app, smtp, "counts", origin)
    link = tracked_links(copies["reader@example.org"])[1]
    assert client.get(path_of(link), headers={"User-Agent": BROWSER}).status_code == 302
    assert [event.machine for event in events_of(app)] == [rules.TOO_SOON]
    assert figures_of(app, digest_id).clicks.machine == 1


def test_clicks_redirect_without_waiting_for_the_database_and_are_written_together(
    app, client, smtp, worker
):
    app.config["TRACKING_MIN_SECONDS"] = 0
    with article_site() as origin:
        _digest_id, copies = send_digest(app, smtp, "per-reader", origin)
    inserts = []
    with app.app_context():
        reader_id = db.session.scalar(select(Subscriber.id))
        held = events.buffer()
        sqlalchemy.event.listen(
            db.engine,
            "before_cursor_execute",
            lambda _conn, _cursor, statement, *_rest: (
                inserts.append(statement)
                if statement.startswith("INSERT INTO engagement_event")
                else None
            ),
        )
    links = tracked_links(copies["reader@example.org"])[1:] * 3
    # While the process's writer is held, every click still gets its redirect at once.
    with held.writing:
        for link in links:
            assert client.get(path_of(link), headers={"User-Agent": BROWSER}).status_code == 302
    written = events_of(app)
    assert len(inserts) == 1
    assert len(written) == len(links)
    # Each row of the one INSERT found its own subscriber.
    assert {event.subscriber_id for event in written} == {reader_id}


def test_old_events_are_folded_into_totals_with_the_same_figures(app, client, smtp, worker):
    app.config["TRACKING_MIN_SECONDS"] = 0
    with article_site() as origin:
        digest_id, copies = send_digest(app, smtp, "counts", origin)
    links = tracked_links(copies["reader@example.org"])
    client.get(path_of(links[1]), headers={"User-Agent": BROWSER})
    client.get(path_of(links[2]), headers={"User-Agent": "python-requests/2.32"})
    before = figures_of(app, digest_id)
    with app.app_context():
        assert figures.fold_old_events(utcnow() + timedelta(hours=2)) == 2
        assert db.session.scalar(select(func.count(EngagementEvent.id))) == 0
        assert db.session.scalar(select(func.count()).select_from(EngagementTotal)) > 0
    assert figures_of(app, digest_id) == before


def at(seconds):
    return utcnow() + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("requests", "machine"),
    [
        # One link, then another 30 s later: a person reading on.
        ([(0, 1, None), (30, 2, None)], [False, False]),
        # Two distinct links within 2 s: a scanner.
        ([(0, 1, None), (1, 2, None)], [True, True]),
        # The same link twice: a double click, still a person.
        ([(0, 1, None), (1, 1, None)], [False, False]),
        # The trap marks what comes within its window, before or after it.
        ([(0, 1, None), (8, 0, rules.TRAP), (40, 2, None)], [True, True, False]),
    ],
)
def test_the_copy_rules(requests, machine):
    read = [rules.Request(at(s), EngagementKind.CLICK, p, why) for s, p, why in requests]
    assert rules.copy_machine(read, trap_window_seconds=10, burst_seconds=2) == machine
