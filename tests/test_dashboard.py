"""The admin dashboard: the list's last 90 days as a chart and a table, the latest
digests with their figures, and what is sending."""

import re
from datetime import date, datetime, time, timedelta

import pytest

from newsletter.admins import stats
from newsletter.bounces.models import FeedbackEvent
from newsletter.content.models import Digest
from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.sending.models import Delivery
from newsletter.subscribers.models import ConsentEvent, Subscriber


def days_ago(days: int) -> datetime:
    """Noon UTC that many days ago, well inside that day whenever the test runs."""
    return datetime.combine(utcnow().date() - timedelta(days=days), time(12))


def subscriber(email: str, status: str) -> Subscriber:
    row = Subscriber(email=email, status=status, signup_source="test")
    db.session.add(row)
    db.session.flush()
    return row


def consent(subscriber_id: int | None, kind: str, source: str, days: int) -> ConsentEvent:
    return ConsentEvent(subscriber_id=subscriber_id, kind=kind, source=source, at=days_ago(days))


def feedback(subscriber_id: int, kind: str, source: str, days: int, **fields) -> FeedbackEvent:
    return FeedbackEvent(
        subscriber_id=subscriber_id, kind=kind, source=source, at=days_ago(days), **fields
    )


def add_a_season(app):
    """Seven subscribers over the last days: A and B confirmed 5 days ago, C 2 days ago;
    D, E and F 10 days ago, and since then D unsubscribed (yesterday), E bounced (3 days
    ago) and F complained (yesterday); G, confirmed long ago, was erased 4 days ago."""
    with app.app_context():
        a, b, c = (subscriber(f"{name}@example.org", "confirmed").id for name in "abc")
        d = subscriber("d@example.org", "unsubscribed").id
        e = subscriber("e@example.org", "bounced").id
        f = subscriber("f@example.org", "complained").id
        db.session.add_all(
            [
                *(consent(subscriber, "confirm", "link", 10) for subscriber in (d, e, f)),
                *(consent(subscriber, "confirm", "link", 5) for subscriber in (a, b)),
                consent(c, "confirm", "code", 2),
                consent(d, "unsubscribe", "link", 1),
                # A complaint logs an unsubscribe too: it counts once, as a complaint.
                consent(f, "unsubscribe", "complaint", 1),
                consent(None, "erasure", "admin", 4),
                # Before the window: not counted.
                consent(a, "signup", "form", 120),
                feedback(e, "soft_bounce", "dsn", 6, changed_status=False),
                feedback(e, "hard_bounce", "dsn", 3, changed_status=True),
                feedback(f, "complaint", "arf", 1, changed_status=True),
            ]
        )
        db.session.commit()


# What add_a_season makes, by days ago: (confirmed at the day's end, new confirmations,
# unsubscribes, bounces, complaints).
SEASON = {
    0: (3, 0, 0, 0, 0),
    1: (3, 0, 1, 0, 1),
    2: (5, 1, 0, 0, 0),
    3: (4, 0, 0, 1, 0),
    # The erasure: a subscriber lost that no column shows.
    4: (5, 0, 0, 0, 0),
    5: (6, 2, 0, 0, 0),
    6: (4, 0, 0, 0, 0),
    10: (4, 3, 0, 0, 0),
    11: (1, 0, 0, 0, 0),
    89: (1, 0, 0, 0, 0),
}


def flat(html: str) -> str:
    return re.sub(r">\s+<", "><", html)


def history_from_stats(app, admin_client) -> dict[int, tuple[int, ...]]:
    """The 90 days' figures by days ago, as stats.daily_history counts them."""
    with app.app_context():
        history = stats.daily_history()
    today = utcnow().date()
    return {
        (today - day.day).days: (
            day.confirmed,
            day.confirmations,
            day.unsubscribes,
            day.bounces,
            day.complaints,
        )
        for day in history
    }


def history_from_dashboard(app, admin_client) -> dict[int, tuple[int, ...]]:
    """The 90 days' figures by days ago, as the dashboard's table shows them."""
    page = flat(admin_client.get("/admin/").get_data(as_text=True))
    table = page.split('<table id="list-history">', 1)[1].split("</table>", 1)[0]
    today = utcnow().date()
    return {
        (today - date.fromisoformat(day)).days: tuple(int(n) for n in re.findall(r"\d+", cells))
        for day, cells in re.findall(r'<th scope="row">([\d-]+)</th>((?:<td>\d+</td>)+)', table)
    }


@pytest.mark.parametrize("read_history", [history_from_stats, history_from_dashboard])
def test_the_daily_history_counts_each_day_and_walks_the_total_back(
    app, admin_client, read_history
):
    """The same figures, as counted and as the dashboard's table shows them."""
    add_a_season(app)
    history = read_history(app, admin_client)
    assert sorted(history) == list(range(90))
    assert {days: history[days] for days in SEASON} == SEASON
    assert history[8] == (4, 0, 0, 0, 0)


def add_digests(app):
    """Six digests sent, the latest with known figures, and a seventh going out."""
    with app.app_context():
        subscribers = {s.email[0]: s.id for s in db.session.query(Subscriber)}
        for number in range(1, 6):
            db.session.add(Digest(subject=f"Issue {number}", status="sent"))
        latest = Digest(subject="Issue 6", status="sent", started_at=days_ago(2))
        going_out = Digest(subject="Going out", status="sending", started_at=utcnow())
        db.session.add_all([latest, going_out])
        db.session.flush()
        for digest, statuses in (
            (latest, {"a": "sent", "b": "sent", "d": "sent", "e": "failed"}),
            (going_out, {"a": "sent", "b": "pending", "c": "pending"}),
        ):
            db.session.add_all(
                Delivery(
                    digest_id=digest.id,
                    subscriber_id=subscribers[name],
                    status=status,
                    sent_at=digest.started_at if status == "sent" else None,
                )
                for name, status in statuses.items()
            )
        # Reported of the latest issue without changing a status: its figures count
        # them, the list's history does not.
        db.session.add_all(
            [
                feedback(
                    subscribers["e"], "hard_bounce", "ses", 1, digest_id=latest.id, reference="1"
                ),
                feedback(
                    subscribers["b"], "complaint", "ses", 1, digest_id=latest.id, reference="2"
                ),
            ]
        )
        db.session.commit()


def test_the_dashboard_draws_the_list_as_a_described_chart(app, admin_client):
    add_a_season(app)
    page = flat(admin_client.get("/admin/").get_data(as_text=True))

    assert '<svg role="img" aria-labelledby="list-chart-title list-chart-desc"' in page
    assert '<title id="list-chart-title">Subscribers over the last 90 days</title>' in page
    assert (
        '<desc id="list-chart-desc">Confirmed subscribers grew from 1 to 3 in 90 days '
        "(new confirmations 6, unsubscribes 1, bounces 1, complaints 1).</desc>"
    ) in page
    assert "<polyline points=" in page
    assert "<script" not in page.split("<svg", 1)[1].split("</svg>", 1)[0]

    # The counts per status and the sign-up box stay.
    assert re.search(r"confirmed</a></th><td>3<", page)
    assert "The sign-up box on your site" in page


def test_the_dashboard_shows_the_latest_digests_and_what_is_sending(app, admin_client):
    add_a_season(app)
    add_digests(app)
    page = flat(admin_client.get("/admin/").get_data(as_text=True))

    latest = page.split('<table id="latest-digests">', 1)[1].split("</table>", 1)[0]
    subjects = re.findall(r'<a href="/admin/digests/\d+">([^<]+)</a>', latest)
    assert subjects == ["Going out", "Issue 6", "Issue 5", "Issue 4", "Issue 3"]
    # Sent, failed, bounced, complained, unsubscribed (D, yesterday, after it came).
    assert re.search(
        r">Issue 6</a></td><td>sent</td><td>3</td><td>1</td><td>1</td><td>1</td><td>1</td>",
        latest,
    )

    sending = page.split("<h2>Sending now</h2>", 1)[1].split("<h2>", 1)[0]
    assert re.search(r'<a href="/admin/digests/7">Going out</a>: sending', sending)
    assert "Sent 1 · failed 0 · skipped 0 · pending 2" in sending
    assert '<progress max="3" value="1"' in sending
    assert "Nothing is sending" not in sending


def test_the_dashboard_says_when_nothing_is_sending(admin_client):
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert "Nothing is sending." in page
    assert "No digests yet." in page
    assert "Confirmed subscribers stayed at 0 in 90 days" in page
