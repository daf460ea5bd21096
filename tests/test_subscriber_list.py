"""The admin's subscriber list on a long list: pages found by place (Older, Newer), and
the counts per status, kept by the database, always what the list holds."""

import io
import re

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select, text

from harness import csrf_token
from newsletter.content.models import Subscription
from newsletter.extensions import db
from newsletter.subscribers import admin_actions
from newsletter.subscribers.models import Subscriber, SubscriberStatus, SubscriberTally
from tests.helpers import add_subscribers
from tests.smtp import link_in

LISTED = re.compile(r'<a href="/admin/subscribers/\d+">([^<]+)</a>')
OLDER = re.compile(r'<a href="([^"]+)" rel="next">Older')
NEWER = re.compile(r'<a href="([^"]+)" rel="prev">&larr; Newer')


def listed(page):
    return LISTED.findall(page.get_data(as_text=True))


def link(pattern, page):
    found = pattern.search(page.get_data(as_text=True))
    return found and found[1].replace("&amp;", "&")


def add_mixed_list(app):
    """130 subscribers, newest last: every other one pending, one in three at match.org,
    three in four reading the first newsletter."""
    with app.app_context():
        db.session.add_all(
            Subscriber(
                email=f"r{n:03}@{'match' if n % 3 == 0 else 'other'}.org",
                name=f"Reader {n}",
                status=SubscriberStatus.PENDING if n % 2 else SubscriberStatus.CONFIRMED,
                signup_source="test",
                subscriptions=[Subscription(newsletter_id=1)] if n % 4 != 3 else [],
            )
            for n in range(130)
        )
        db.session.commit()
    return [f"r{n:03}@{'match' if n % 3 == 0 else 'other'}.org" for n in range(130)]


def walk(admin_client, start, pattern, total):
    """The addresses on each page from ``start``, following ``pattern``'s link to the end;
    each page says how many there are in all."""
    pages = []
    path = start
    while path:
        page = admin_client.get(path)
        assert page.status_code == 200
        assert f'class="note">{total} found' in page.text
        pages.append(listed(page))
        path = link(pattern, page)
        assert len(pages) < 20, "the links go round in circles"
    return pages


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        ("", lambda n: True),
        ("status=pending", lambda n: n % 2),
        ("q=R0", lambda n: n < 100),
        ("q=match.org&status=confirmed", lambda n: n % 3 == 0 and n % 2 == 0),
        ("newsletter=newsletter", lambda n: n % 4 != 3),
        ("newsletter=newsletter&q=r1&status=pending", lambda n: n % 4 == 1 and n >= 100),
    ],
)
def test_older_and_newer_show_every_subscriber_exactly_once(app, admin_client, query, kept):
    emails = add_mixed_list(app)
    expected = [email for n, email in reversed(list(enumerate(emails))) if kept(n)]

    older = walk(admin_client, f"/admin/subscribers?{query}", OLDER, len(expected))
    assert [email for page in older for email in page] == expected
    assert all(len(page) == 50 for page in older[:-1])

    # From the last page back to the first, the same pages.
    last = admin_client.get(f"/admin/subscribers?{query}")
    while link(OLDER, last):
        last = admin_client.get(link(OLDER, last))
    newer_path = link(NEWER, last)
    if len(older) == 1:
        assert newer_path is None
        return
    newer = walk(admin_client, newer_path, NEWER, len(expected))
    assert list(reversed(newer)) == older[:-1]


def test_a_page_deep_in_a_long_list_and_places_past_its_ends(app, admin_client):
    emails = add_mixed_list(app)
    with app.app_context():
        ids = db.session.scalars(select(Subscriber.id).order_by(Subscriber.id)).all()
    page = admin_client.get(f"/admin/subscribers?after={ids[10]}")
    assert listed(page) == list(reversed(emails[:10]))
    assert "130 found" in page.text
    assert link(OLDER, page) is None
    assert "Newest" in page.text

    past_the_end = admin_client.get(f"/admin/subscribers?after={ids[0]}")
    assert listed(past_the_end) == []
    # Newer, from nowhere, leads back into the list.
    assert listed(admin_client.get(link(NEWER, past_the_end)))[-1] == emails[0]
    assert listed(admin_client.get(f"/admin/subscribers?after={ids[-1] + 100}"))[0] == emails[-1]

    # Nothing newer than the newest: the first page, full.
    newest = admin_client.get(f"/admin/subscribers?before={ids[-3]}")
    assert listed(newest) == list(reversed(emails))[:50]
    assert link(NEWER, newest) is None


@pytest.mark.parametrize(
    "place",
    ["after=abc", "after=-4", "before=-1", "after=99999999999999999999999", "before=2147483648"],
)
def test_a_place_that_is_no_id_shows_the_first_page(app, admin_client, place):
    emails = add_mixed_list(app)
    page = admin_client.get(f"/admin/subscribers?{place}")
    assert page.status_code == 200
    assert listed(page) == list(reversed(emails))[:50]


def test_a_search_that_fits_on_one_page_is_counted_as_listed(app, admin_client):
    add_mixed_list(app)
    page = admin_client.get("/admin/subscribers?q=r12")
    assert listed(page) == [
        f"r12{n}@{'match' if n % 3 == 0 else 'other'}.org" for n in range(9, -1, -1)
    ]
    assert "10 found" in page.text
    assert 'class="note">0 found' in admin_client.get("/admin/subscribers?q=nobody").text


def counts_shown(admin_client):
    """The counts per status in the list's filter, and the dashboard's, which must agree."""
    page = admin_client.get("/admin/subscribers").text
    counts = {status: int(n) for status, n in re.findall(r">(\w+) \((\d+)\)</option>", page)}
    dashboard = admin_client.get("/admin/").text
    for status in SubscriberStatus:
        assert f"{status}</a></th><td>{counts[status]}<" in dashboard
    counts["all"] = int(re.search(r">all \((\d+)\)</option>", page)[1])
    return counts


def expect(pending=0, confirmed=0, unsubscribed=0, bounced=0, complained=0):
    counts = {
        "pending": pending,
        "confirmed": confirmed,
        "unsubscribed": unsubscribed,
        "bounced": bounced,
        "complained": complained,
    }
    return counts | {"all": sum(counts.values())}


def test_counts_follow_sign_up_confirm_unsubscribe_erase_and_bulk_actions(
    app, client, admin_client, smtp, worker
):
    assert counts_shown(admin_client) == expect()

    for name in ("ann", "bob", "cid"):
        client.post("/subscribe", data={"email": f"{name}@example.org"})
    assert counts_shown(admin_client) == expect(pending=3)

    confirmations = smtp.wait_for(3)
    for message in confirmations:
        if message["To"] != "cid@example.org":
            client.post(link_in(message))
    assert counts_shown(admin_client) == expect(pending=1, confirmed=2)

    [welcome] = [
        m
        for m in smtp.wait_for(5)
        if m["Subject"] == "Welcome aboard" and m["To"] == "bob@example.org"
    ]
    unsubscribe = re.search(
        r"<http://127\.0\.0\.1:5000(/unsubscribe/[^>]+)>", welcome["List-Unsubscribe"]
    )[1]
    client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert counts_shown(admin_client) == expect(pending=1, confirmed=1, unsubscribed=1)

    add_subscribers(app, 4, prefix="bulk")
    with app.app_context():
        ids = dict(db.session.execute(select(Subscriber.email, Subscriber.id)).tuples().all())
    listing = admin_client.get("/admin/subscribers")
    admin_client.post(
        "/admin/subscribers/bulk",
        data={
            "csrf_token": csrf_token(listing),
            "action": "unsubscribe",
            "ids": [ids["bulk0@example.org"], ids["bulk1@example.org"], ids["cid@example.org"]],
        },
    )
    assert counts_shown(admin_client) == expect(confirmed=3, unsubscribed=4)

    admin_client.post(
        "/admin/subscribers/bulk",
        data={
            "csrf_token": csrf_token(listing),
            "action": "erase",
            "ids": [ids["bulk0@example.org"], ids["bulk2@example.org"]],
        },
    )
    admin_client.post(
        f"/admin/subscribers/{ids['ann@example.org']}/erase",
        data={"csrf_token": csrf_token(listing)},
    )
    assert counts_shown(admin_client) == expect(confirmed=1, unsubscribed=3)

    upload = (io.BytesIO(b"email\nnew1@example.org\nnew2@example.org\n"), "l.csv")
    admin_client.post(
        "/admin/subscribers/import",
        data={"csrf_token": csrf_token(listing), "file": upload, "confirmed": "y"},
    )
    assert counts_shown(admin_client) == expect(confirmed=3, unsubscribed=3)


def tally_rows(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(SubscriberTally))


def test_counts_stay_exact_when_many_changes_are_folded(app, admin_client, runner, tmp_path):
    csv_file = tmp_path / "readers.csv"
    csv_file.write_text("email\n" + "".join(f"reader{n}@example.org\n" for n in range(700)))
    assert (
        "added 700"
        in runner.invoke(args=["import-subscribers", str(csv_file), "--confirmed"]).output
    )
    add_subscribers(app, 30, status=SubscriberStatus.PENDING, prefix="waiting")
    assert tally_rows(app) > admin_actions.TALLY_FOLD_AT
    assert counts_shown(admin_client) == expect(pending=30, confirmed=700)
    # Reading folded the changes into a row a status.
    assert tally_rows(app) == 2
    add_subscribers(app, 5, status=SubscriberStatus.BOUNCED, prefix="gone")
    assert counts_shown(admin_client) == expect(pending=30, confirmed=700, bounced=5)


def test_the_migration_counts_the_readers_there_and_keeps_sent_digests_totals(unmigrated_app):
    with unmigrated_app.app_context():
        upgrade(revision="0028")
        for n, status in enumerate(["confirmed", "confirmed", "confirmed", "pending"]):
            db.session.execute(
                text(
                    "INSERT INTO subscriber (email, name, status, token_nonce, created_at, "
                    "signup_at, signup_source) VALUES (:email, '', :status, :nonce, "
                    "'2026-11-01', '2026-11-01', 'test')"
                ),
                {"email": f"r{n}@example.org", "status": status, "nonce": f"nonce{n}"},
            )
        for digest_id, status in [(1, "sent"), (2, "sending")]:
            db.session.execute(
                text(
                    "INSERT INTO digest (id, newsletter_id, subject, intro, status, created_at) "
                    "VALUES (:id, 1, 'Weekly', '', :status, '2026-11-20')"
                ),
                {"id": digest_id, "status": status},
            )
        for digest_id, subscriber, status in [(1, 1, "sent"), (1, 2, "sent"), (1, 3, "failed")]:
            db.session.execute(
                text(
                    "INSERT INTO delivery (digest_id, subscriber_id, status, due_at, attempts) "
                    "VALUES (:digest, :reader, :status, '2026-11-20', 1)"
                ),
                {"digest": digest_id, "reader": subscriber, "status": status},
            )
        db.session.commit()

        upgrade(revision="0029")
        counts = admin_actions.status_counts()
        assert (counts["confirmed"], counts["pending"], counts["unsubscribed"]) == (3, 1, 0)
        totals = db.session.execute(
            text("SELECT id, sent_count, failed_count, skipped_count FROM digest ORDER BY id")
        ).all()
        assert [tuple(row) for row in totals] == [(1, 2, 1, 0), (2, None, None, None)]
        # From here the triggers count.
        db.session.execute(text("UPDATE subscriber SET status = 'unsubscribed' WHERE id = 1"))
        db.session.execute(text("DELETE FROM subscriber WHERE id = 4"))
        db.session.commit()
        counts = admin_actions.status_counts()
        assert (counts["confirmed"], counts["pending"], counts["unsubscribed"]) == (2, 0, 1)
        db.session.commit()

        downgrade(revision="0028")
        # No trigger is left behind to write into the table that went.
        db.session.execute(text("UPDATE subscriber SET status = 'confirmed' WHERE id = 1"))
        db.session.commit()
        upgrade()
        assert admin_actions.status_counts()["confirmed"] == 3
        db.session.remove()
        db.engine.dispose()
