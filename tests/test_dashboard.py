"""The admin dashboard: the list's last 90 days as a chart and a table, the latest
digests with their figures, and what is sending."""

import re
from datetime import datetime, time, timedelta

from newsletter import stats
from newsletter.extensions import db
from newsletter.models import (
    ConsentEvent,
    Delivery,
    Digest,
    FeedbackEvent,
    Subscriber,
    utcnow,
)


def days_ago(days: int) -> datetime:
    """Noon UTC that many days ago, well inside that day whenever the test runs."""
    return datetime.combine(utcnow().date() - timedelta(days=days), time(12))


def subscriber(email: str, status: str) -> Subscriber:
    row = Subscriber(email=email, status=status, signup_source="test")
    db.session.add(row)
    db.session.flush()
    return row


def add_a_season(app):
    """Seven readers over the last days: A and B confirmed 5 days ago, C 2 days ago;
    D, E and F 10 days ago, and since then D unsubscribed (yesterday), E bounced (3 days
    ago) and F complained (yesterday); G, confirmed long ago, was erased 4 days ago."""
    with app.app_context():
        a, b, c = (subscriber(f"{name}@example.org", "confirmed") for name in "abc")
        d = subscriber("d@example.org", "unsubscribed")
        e = subscriber("e@example.org", "bounced")
        f = subscriber("f@example.org", "complained")
        db.session.add_all(
            [
                ConsentEvent(subscriber_id=s.id, kind="confirm", source="link", at=days_ago(10))
                for s in (d, e, f)
            ]
            + [
                ConsentEvent(subscriber_id=s.id, kind="confirm", source="link", at=days_ago(5))
                for s in (a, b)
            ]
            + [
                ConsentEvent(subscriber_id=c.id, kind="confirm", source="code", at=days_ago(2)),
                ConsentEvent(subscriber_id=d.id, kind="unsubscribe", source="link", at=days_ago(1)),
                # A complaint logs an unsubscribe too: it counts once, as a complaint.
                ConsentEvent(
                    subscriber_id=f.id, kind="unsubscribe", source="complaint", at=days_ago(1)
                ),
                ConsentEvent(subscriber_id=None, kind="erasure", source="admin", at=days_ago(4)),
                # Before the window: not counted.
                ConsentEvent(subscriber_id=a.id, kind="signup", source="form", at=days_ago(120)),
                FeedbackEvent(
                    subscriber_id=e.id,
                    kind="soft_bounce",
                    source="dsn",
                    at=days_ago(6),
                    changed_status=False,
                ),
                FeedbackEvent(
                    subscriber_id=e.id,
                    kind="hard_bounce",
                    source="dsn",
                    at=days_ago(3),
                    changed_status=True,
                ),
                FeedbackEvent(
                    subscriber_id=f.id,
                    kind="complaint",
                    source="arf",
                    at=days_ago(1),
                    changed_status=True,
                ),
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
    # The erasure: a reader lost that no column shows.
    4: (5, 0, 0, 0, 0),
    5: (6, 2, 0, 0, 0),
    6: (4, 0, 0, 0, 0),
    10: (4, 3, 0, 0, 0),
    11: (1, 0, 0, 0, 0),
    89: (1, 0, 0, 0, 0),
}


def figures(day: stats.Day) -> tuple[int, ...]:
    return (day.confirmed, day.confirmations, day.unsubscribes, day.bounces, day.complaints)


def test_the_daily_history_counts_each_day_and_walks_the_total_back(app):
    add_a_season(app)
    with app.app_context():
        history = stats.daily_history()
    today = utcnow().date()
    assert len(history) == 90
    assert history[-1].day == today
    by_days_ago = {(today - day.day).days: figures(day) for day in history}
    for days, expected in SEASON.items():
        assert by_days_ago[days] == expected, days
    assert by_days_ago[8] == (4, 0, 0, 0, 0)


def add_digests(app):
    """Six digests sent, the latest with known figures, and a seventh going out."""
    with app.app_context():
        readers = {s.email[0]: s.id for s in db.session.query(Subscriber)}
        for number in range(1, 6):
            db.session.add(Digest(subject=f"Issue {number}", status="sent"))
        latest = Digest(subject="Issue 6", status="sent", started_at=days_ago(2))
        going_out = Digest(subject="Going out", status="sending", started_at=utcnow())
        db.session.add_all([latest, going_out])
        db.session.flush()
        for name, status in (("a", "sent"), ("b", "sent"), ("d", "sent"), ("e", "failed")):
            sent_at = days_ago(2) if status == "sent" else None
            db.session.add(
                Delivery(
                    digest_id=latest.id, subscriber_id=readers[name], status=status, sent_at=sent_at
                )
            )
        for name, status in (("a", "sent"), ("b", "pending"), ("c", "pending")):
            db.session.add(
                Delivery(digest_id=going_out.id, subscriber_id=readers[name], status=status)
            )
        # Reported of the latest issue without changing a status: its figures count
        # them, the list's history does not.
        db.session.add_all(
            [
                FeedbackEvent(
                    subscriber_id=readers["e"],
                    digest_id=latest.id,
                    kind="hard_bounce",
                    source="ses",
                    reference="1",
                    at=days_ago(1),
                ),
                FeedbackEvent(
                    subscriber_id=readers["b"],
                    digest_id=latest.id,
                    kind="complaint",
                    source="ses",
                    reference="2",
                    at=days_ago(1),
                ),
            ]
        )
        db.session.commit()


def flat(html: str) -> str:
    return re.sub(r">\s+<", "><", html)


def test_the_dashboard_draws_the_list_and_tables_its_numbers(app, admin_client):
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

    table = page.split('<table id="list-history">', 1)[1].split("</table>", 1)[0]
    today = utcnow().date()
    for days, expected in SEASON.items():
        day = (today - timedelta(days=days)).isoformat()
        cells = "".join(f"<td>{number}</td>" for number in expected)
        assert f'<th scope="row">{day}</th>{cells}' in table, day
    assert table.count('<th scope="row">') == 90
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
