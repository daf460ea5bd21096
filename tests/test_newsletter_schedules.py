"""Each newsletter makes its own digest of new posts, daily or weekly, optionally of one
feed category: once per turn, however often or however many beats call for it."""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, time

from flask_migrate import downgrade, upgrade
from sqlalchemy import event, func, select, text

from newsletter.content import digests, posts
from newsletter.content.models import Digest, DigestStatus, Newsletter, Post
from newsletter.core.models import utcnow
from newsletter.extensions import db
from tests.helpers import FEED, add_subscribers, wait_until, wait_until_sent
from workers.tasks import run_periodic_digest

WEDNESDAY = datetime(2026, 12, 2)

CATEGORIZED_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>The Daily Example</title>
<link>https://news.example.org/</link><description>News</description>
<item><title>Election results</title><link>https://news.example.org/election</link>
  <category>Politics</category><pubDate>Mon, 30 Nov 2026 08:00:00 GMT</pubDate></item>
<item><title>Cup final</title><link>https://news.example.org/cup</link>
  <category>Sport</category><pubDate>Mon, 30 Nov 2026 09:00:00 GMT</pubDate></item>
<item><title>Budget vote</title><link>https://news.example.org/budget</link>
  <category> POLITICS </category><category>Economy</category>
  <pubDate>Tue, 01 Dec 2026 08:00:00 GMT</pubDate></item>
<item><title>Weather</title><link>https://news.example.org/weather</link>
  <pubDate>Tue, 01 Dec 2026 09:00:00 GMT</pubDate></item>
</channel></rss>
"""

CATEGORIZED_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>The Daily Example</title>
<id>urn:example:feed</id><updated>2026-12-02T10:00:00Z</updated>
<entry><title>Debate tonight</title><id>urn:example:debate</id>
  <link href="https://news.example.org/debate"/><updated>2026-12-02T10:00:00Z</updated>
  <category term="politics" label="Politics and power"/></entry>
<entry><title>Derby</title><id>urn:example:derby</id>
  <link href="https://news.example.org/derby"/><updated>2026-12-02T11:00:00Z</updated>
  <category term="sport"/></entry>
</feed>
"""


def create(runner, slug, *options):
    made = runner.invoke(args=["create-newsletter", slug, "--name", slug.title(), *options])
    assert made.exit_code == 0, made.output
    return int(made.output.rsplit("id ", 1)[1])


def made_digests(app):
    """Each digest's newsletter slug and post titles, oldest first."""
    with app.app_context():
        return [
            (digest.newsletter.slug, sorted(post.title for post in digest.posts))
            for digest in db.session.scalars(select(Digest).order_by(Digest.id))
        ]


def test_daily_and_weekly_newsletters_each_get_a_digest_of_their_new_posts_in_their_turn(
    app, runner
):
    create(runner, "morning", "--schedule", "daily", "--hour", "6")
    create(runner, "weekly", "--schedule", "weekly", "--weekday", "2", "--hour", "9")
    create(runner, "manual")
    runner.invoke(args=["import-feed", FEED])
    both = ["Council approves new bridge", "Weather: a sunny week"]
    with app.app_context():
        assert digests.run_periodic(WEDNESDAY.replace(hour=5, minute=59)) == []
        [morning] = digests.run_periodic(WEDNESDAY.replace(hour=7))
        assert digests.run_periodic(WEDNESDAY.replace(hour=7)) == []
        assert digests.run_periodic(WEDNESDAY.replace(hour=8, minute=59)) == []
        [weekly] = digests.run_periodic(WEDNESDAY.replace(hour=9, minute=5))
        assert digests.run_periodic(WEDNESDAY.replace(hour=23)) == []
        digest = db.session.get(Digest, morning)
        assert (digest.status, digest.subject) == (
            DigestStatus.SCHEDULED,
            "Morning: 02 December 2026",
        )
    # Posts the morning newsletter sent are still new to the weekly one.
    assert made_digests(app) == [("morning", both), ("weekly", both)]

    with app.app_context():
        # Thursday: the morning newsletter's turn, but nothing new: nothing is sent.
        assert digests.run_periodic(datetime(2026, 12, 3, 6, 30)) == []
        posts.save_post(None, "Snow", "https://news.example.org/snow", "")
        assert digests.run_periodic(datetime(2026, 12, 3, 12)) == []
        assert len(digests.run_periodic(datetime(2026, 12, 4, 6))) == 1
        # Moved to Friday after its Wednesday digest, the weekly one waits a week.
        weekly_newsletter = db.session.get(Newsletter, db.session.get(Digest, weekly).newsletter_id)
        weekly_newsletter.schedule_weekday = 4
        db.session.commit()
        assert digests.run_periodic(datetime(2026, 12, 4, 10)) == []
        assert len(digests.run_periodic(datetime(2026, 12, 11, 10))) == 1
    assert made_digests(app)[2:] == [("morning", ["Snow"]), ("weekly", ["Snow"])]


def test_a_newsletter_with_a_category_takes_only_the_feed_posts_in_it(app, runner, tmp_path):
    rss, atom = tmp_path / "feed.rss", tmp_path / "feed.atom"
    rss.write_text(CATEGORIZED_RSS)
    atom.write_text(CATEGORIZED_ATOM)
    runner.invoke(args=["import-feed", str(rss)])
    create(runner, "politics", "--schedule", "daily", "--hour", "0", "--category", "Politics")
    with app.app_context():
        budget = db.session.scalar(select(Post).where(Post.title == "Budget vote"))
        assert budget.category_names == {"politics", "economy"}
        assert len(digests.run_periodic(WEDNESDAY)) == 1
    assert made_digests(app) == [("politics", ["Budget vote", "Election results"])]

    runner.invoke(args=["import-feed", str(atom)])
    with app.app_context():
        first = db.session.get(Newsletter, 1)
        first.schedule, first.schedule_hour = "daily", 0
        db.session.commit()
        assert len(digests.run_periodic(datetime(2026, 12, 3, 1))) == 2
    assert made_digests(app)[1:] == [
        (
            "newsletter",
            ["Budget vote", "Cup final", "Debate tonight", "Derby", "Election results", "Weather"],
        ),
        ("politics", ["Debate tonight"]),
    ]


def test_a_beat_that_read_the_schedules_before_another_beat_took_the_turn_makes_nothing(
    app, runner
):
    """Two beats at once: B takes the turn between A's reading the schedules and A's
    taking it, and a post arrives after B's digest. A must make no second digest."""
    create(runner, "morning", "--schedule", "daily", "--hour", "6")
    runner.invoke(args=["import-feed", FEED])
    six = WEDNESDAY.replace(hour=6)
    other_beat = []

    def beat_then_a_new_post():
        with app.app_context():
            made = digests.run_periodic(six)
            posts.save_post(None, "Snow", "https://news.example.org/snow", "")
            return made

    def before_taking_the_turn(_connection, _cursor, statement, *_args):
        if statement.startswith("UPDATE newsletter") and not other_beat:
            other_beat.append("running")
            with ThreadPoolExecutor(1) as pool:
                other_beat.append(pool.submit(beat_then_a_new_post).result())

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", before_taking_the_turn)
        try:
            assert digests.run_periodic(six) == []
        finally:
            event.remove(db.engine, "before_cursor_execute", before_taking_the_turn)
    assert len(other_beat[1]) == 1
    assert made_digests(app) == [
        ("morning", ["Council approves new bridge", "Weather: a sunny week"])
    ]
    with app.app_context():
        assert digests.run_periodic(six) == []
        assert len(digests.run_periodic(six.replace(day=3))) == 1
    assert made_digests(app)[1] == ("morning", ["Snow"])


def test_beats_calling_at_once_make_each_due_digest_once(app, runner):
    create(runner, "morning", "--schedule", "daily", "--hour", "6")
    create(runner, "weekly", "--schedule", "weekly", "--weekday", "2", "--hour", "6")
    create(runner, "friday", "--schedule", "weekly", "--weekday", "4", "--hour", "6")
    runner.invoke(args=["import-feed", FEED])

    def beat(_):
        with app.app_context():
            return digests.run_periodic(WEDNESDAY.replace(hour=6))

    with ThreadPoolExecutor(4) as pool:
        made = [digest_id for ids in pool.map(beat, range(8)) for digest_id in ids]
    assert len(made) == len(set(made)) == 2
    assert sorted(slug for slug, _posts in made_digests(app)) == ["morning", "weekly"]


def test_the_beat_task_sends_a_due_digest_to_that_newsletters_readers_only(
    app, runner, smtp, worker
):
    breaking = create(runner, "breaking", "--not-default", "--schedule", "daily", "--hour", "0")
    tomorrow = (utcnow().weekday() + 1) % 7
    create(runner, "later", "--schedule", "weekly", "--weekday", str(tomorrow), "--hour", "0")
    add_subscribers(app, 2, prefix="weekly")
    subscribers = add_subscribers(app, 3, prefix="breaking", newsletter_id=breaking)
    with app.app_context():
        posts.save_post(None, "Flood", "https://news.example.org/flood", "")
        first = db.session.get(Newsletter, 1)
        # Due today too, but its turn was taken already: nothing more today.
        first.schedule, first.schedule_hour = "daily", 0
        first.schedule_last_run_at = datetime.combine(utcnow().date(), time())
        db.session.commit()

    run_periodic_digest.delay()

    def digest_id():
        with app.app_context():
            return db.session.scalar(select(Digest.id))

    wait_until(digest_id)
    wait_until_sent(app, digest_id())
    assert sorted(smtp.recipients) == sorted(subscribers)
    message = smtp.received[0]
    assert message["List-Id"] == "Breaking <breaking.127.0.0.1>"
    assert message["Subject"].startswith("Breaking: ")
    assert "Flood" in message.as_string()
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Digest)) == 1


def test_create_newsletter_takes_a_schedule_and_refuses_one_it_cannot_keep(app, runner):
    create(
        runner,
        "news",
        "--schedule",
        "weekly",
        "--weekday",
        "0",
        "--hour",
        "8",
        "--category",
        "News",
    )
    with app.app_context():
        news = db.session.scalar(select(Newsletter).where(Newsletter.slug == "news"))
        assert (news.schedule, news.schedule_weekday, news.schedule_hour) == ("weekly", 0, 8)
        assert news.schedule_category == "News"
    for options, error in [
        (["--hour", "24"], "24 is not in the range 0<=x<=23"),
        (["--schedule", "hourly"], "'hourly' is not one of 'off', 'daily', 'weekly'"),
        (["--category", "c" * 101], "A category is at most 100 characters."),
    ]:
        refused = runner.invoke(args=["create-newsletter", "bad", "--name", "Bad", *options])
        assert refused.exit_code != 0
        assert error in refused.output
    with app.app_context():
        assert db.session.scalar(select(Newsletter).where(Newsletter.slug == "bad")) is None


def test_the_migration_moves_the_weekly_settings_onto_the_first_newsletter_and_back(unmigrated_app):
    with unmigrated_app.app_context():
        upgrade(revision="0026")
        db.session.execute(
            text(
                "INSERT INTO settings (welcome_enabled, welcome_subject, welcome_intro, "
                "periodic_enabled, periodic_weekday, periodic_hour, periodic_last_run_at, "
                "send_rate_limit, send_clock) VALUES (:yes, 'Hi', '', :yes, 3, 7, "
                "'2026-11-26 07:05:00', 0, 0)"
            ),
            {"yes": True},
        )
        db.session.commit()
        upgrade(revision="0027")
        first = db.session.execute(
            text(
                "SELECT schedule, schedule_weekday, schedule_hour, schedule_last_run_at "
                "FROM newsletter WHERE id = 1"
            )
        ).one()
        assert tuple(first[:3]) == ("weekly", 3, 7)
        assert str(first[3]).startswith("2026-11-26 07:05:00")
        db.session.commit()
        downgrade(revision="0026")
        weekly = db.session.execute(
            text("SELECT periodic_enabled, periodic_weekday, periodic_hour FROM settings")
        ).one()
        assert tuple(weekly) == (True, 3, 7)
        db.session.commit()
        upgrade()
        db.session.remove()
        db.engine.dispose()
