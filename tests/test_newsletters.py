"""Several newsletters: subscribers choose at sign-up and in their preferences, and each
digest reaches its own newsletter's subscribers only."""

import re

import pytest
from sqlalchemy import event, insert, select

from harness import csrf_token
from newsletter.content import digests, newsletters, posts
from newsletter.content.models import Digest, DigestStatus, Newsletter, Post
from newsletter.core.tokens import PREFERENCES, make_token
from newsletter.extensions import db
from newsletter.subscribers.models import ConsentEvent, Subscriber, SubscriberStatus
from tests.helpers import FEED, add_subscribers, newsletters_of, wait_until_sent
from workers.tasks import start_digest


def create(runner, slug, name, *options):
    return runner.invoke(args=["create-newsletter", slug, "--name", name, *options])


def test_a_slug_taken_by_a_concurrent_request_is_a_clear_refusal(app):
    """Two admins make the same slug at once: the one who commits second is told so."""
    with app.app_context():

        def the_other_admin_commits_first(session, flush_context, instances):
            with db.engine.begin() as connection:
                connection.execute(
                    insert(Newsletter).values(slug="breaking", name="Theirs", description="")
                )

        event.listen(db.session, "before_flush", the_other_admin_commits_first, once=True)
        with pytest.raises(newsletters.SlugTaken, match="already"):
            newsletters.create("breaking", "Mine")
        assert db.session.scalars(
            select(Newsletter.name).where(Newsletter.slug == "breaking")
        ).all() == ["Theirs"]


def test_an_admin_creates_newsletters_and_readers_choose_among_them(app, client, runner):
    assert 'name="newsletters"' not in client.get("/").text
    made = create(runner, "breaking", "Breaking news", "--not-default", "--description", "At once")
    assert made.exit_code == 0, made.output
    assert "Created newsletter 'breaking'" in made.output
    assert create(runner, "breaking", "Again").exit_code != 0
    assert "lower-case" in create(runner, "Not A Slug!", "Bad").output

    form = client.get("/").text
    assert re.search(r'value="newsletter"\s+checked', form)
    assert re.search(r'value="breaking"\s+>', form)
    assert "At once" in form

    client.post(
        "/subscribe",
        data={
            "email": "both@example.org",
            "newsletters_shown": "1",
            "newsletters": ["newsletter", "breaking"],
        },
    )
    client.post("/subscribe", data={"email": "default@example.org"})
    none = client.post("/subscribe", data={"email": "none@example.org", "newsletters_shown": "1"})
    assert none.status_code == 400
    assert "choose at least one newsletter" in none.text
    assert newsletters_of(app, "both@example.org") == {"newsletter", "breaking"}
    assert newsletters_of(app, "default@example.org") == {"newsletter"}

    api = client.post(
        "/api/subscribe", json={"email": "api@example.org", "newsletters": ["breaking"]}
    )
    assert api.status_code == 202
    assert newsletters_of(app, "api@example.org") == {"breaking"}
    unknown = client.post(
        "/api/subscribe", json={"email": "x@example.org", "newsletters": ["nope"]}
    )
    assert (unknown.status_code, unknown.json["error"]) == (422, "There is no newsletter nope.")
    shaped = client.post(
        "/api/subscribe", json={"email": "x@example.org", "newsletters": "breaking"}
    )
    assert shaped.status_code == 400
    with app.app_context():
        assert (
            db.session.scalar(select(Subscriber).where(Subscriber.email == "x@example.org")) is None
        )


def test_a_digest_reaches_its_own_newsletters_readers_with_its_own_list_id(
    app, runner, smtp, worker
):
    create(runner, "breaking", "Breaking news", "--not-default", "--private")
    with app.app_context():
        breaking = db.session.scalar(select(Newsletter).where(Newsletter.slug == "breaking")).id
    weekly_subscribers = add_subscribers(app, 3, prefix="weekly")
    breaking_subscribers = add_subscribers(app, 2, prefix="urgent", newsletter_id=breaking)
    with app.app_context():
        posts.save_post(None, "Flood", "https://news.example/flood", "")
    sent = runner.invoke(args=["send-digest", "--subject", "Alert", "--newsletter", "breaking"])
    digest_id = int(sent.output)
    wait_until_sent(app, digest_id)
    assert set(smtp.recipients) == breaking_subscribers
    assert {m["List-Id"] for m in smtp.received} == {"Breaking news <breaking.127.0.0.1>"}

    smtp.reset()
    with app.app_context():
        posts.save_post(None, "Weather", "https://news.example/weather", "")
        weekly = digests.create_digest("Weekly").id
        digests.schedule(weekly)
    start_digest.delay(weekly)
    wait_until_sent(app, weekly)
    assert set(smtp.recipients) == weekly_subscribers
    # A private newsletter's digests stay out of the archive.
    archive = app.test_client().get("/archive").text
    assert "Weekly" in archive
    assert "Alert" not in archive
    assert "--newsletter" not in runner.invoke(args=["send-digest", "--newsletter", "nope"]).output
    assert (
        "There is no newsletter 'nope'"
        in runner.invoke(args=["send-digest", "--newsletter", "nope"]).output
    )


def test_a_reader_switches_each_newsletter_on_and_off_in_their_preferences(app, client, runner):
    create(runner, "breaking", "Breaking news", "--not-default")
    add_subscribers(app, 1)
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber))
        token = make_token(PREFERENCES, subscriber)
    page = client.get(f"/preferences/{token}").text
    assert re.search(r'value="newsletter"\s+checked', page)
    assert re.search(r'value="breaking"\s+>', page)

    saved = client.post(
        f"/preferences/{token}",
        data={
            "name": "Ann",
            "action": "save",
            "newsletters_shown": "1",
            "newsletters": ["breaking"],
        },
    )
    assert saved.status_code == 200
    assert newsletters_of(app, "reader0@example.org") == {"breaking"}
    assert consent_log(app) == [("join", "breaking"), ("leave", "newsletter")]
    assert "Breaking news" in client.get(f"/preferences/{token}/data").text

    # Unticking the last one is unsubscribing, as leaving it by its email's link is.
    client.post(
        f"/preferences/{token}", data={"name": "Ann", "action": "save", "newsletters_shown": "1"}
    )
    assert newsletters_of(app, "reader0@example.org") == set()
    assert consent_log(app)[-1] == ("unsubscribe", None)
    with app.app_context():
        assert db.session.scalar(select(Subscriber.status)) == SubscriberStatus.UNSUBSCRIBED
    assert "Subscribe again" in client.get(f"/preferences/{token}").text


def consent_log(app):
    """The subscriber's consent log after sign-up: each kind, with the newsletter it names."""
    with app.app_context():
        return db.session.execute(
            select(ConsentEvent.kind, Newsletter.slug)
            .outerjoin(Newsletter, Newsletter.id == ConsentEvent.newsletter_id)
            .where(ConsentEvent.source == "preferences")
            .order_by(ConsentEvent.id)
        ).all()


def test_the_composer_offers_the_posts_not_yet_sent_in_the_newsletter_chosen(
    app, admin_client, runner
):
    create(runner, "breaking", "Breaking news", "--not-default")
    assert runner.invoke(args=["import-feed", FEED]).exit_code == 0
    with app.app_context():
        sent = digests.create_digest("Sent already")
        sent.status = DigestStatus.SENT
        db.session.commit()
        titles = [post.title for post in sent.posts]
        breaking_id = newsletters.by_slug("breaking").id

    for_the_first = admin_client.get("/admin/digests/new").text
    assert not any(title in for_the_first for title in titles)
    assert "There are no posts" not in for_the_first
    assert (
        f"/admin/digests/new?newsletter={breaking_id}"
        in admin_client.get("/admin/newsletters").text
    )

    composing = admin_client.get(f"/admin/digests/new?newsletter={breaking_id}")
    for_breaking = composing.text
    assert "New digest for Breaking news" in for_breaking
    assert all(title in for_breaking for title in titles)
    made = admin_client.post(
        "/admin/digests/new",
        data={
            "csrf_token": csrf_token(composing),
            "newsletter": breaking_id,
            "subject": "Breaking",
            "posts": post_ids(app),
        },
    )
    assert made.status_code == 302
    with app.app_context():
        digest = db.session.scalar(select(Digest).where(Digest.subject == "Breaking"))
        assert digest.newsletter_id == breaking_id
        assert sorted(post.title for post in digest.posts) == sorted(titles)


def post_ids(app):
    with app.app_context():
        return db.session.scalars(select(Post.id)).all()
