"""Posts come from the site's feed, sanitized and deduplicated."""

import http.server
import threading
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.content.models import Post
from newsletter.content.posts import sanitize
from newsletter.core.models import utcnow
from newsletter.extensions import db

DATA = Path(__file__).parent / "data"


def all_posts(app):
    with app.app_context():
        found = db.session.scalars(select(Post).order_by(Post.published_at)).all()
        db.session.expunge_all()
        return found


def test_import_feed_adds_posts_with_safe_html(app, runner):
    result = runner.invoke(args=["import-feed", str(DATA / "feed.rss")])
    assert result.exit_code == 0, result.output
    assert "added 2, updated 0, unchanged 0" in result.output
    bridge, weather = all_posts(app)
    assert bridge.title == "Council approves new bridge"
    assert bridge.guid == "https://news.example.org/?p=1"
    assert bridge.published_at == datetime(2026, 11, 23, 8, 0)
    for unsafe in ("<script", "onclick", "onerror", "<form", "<input", "javascript:"):
        assert unsafe not in bridge.summary_html
    assert "<strong>bridge</strong>" in bridge.summary_html
    assert 'href="https://news.example.org/bridge"' in bridge.summary_html
    assert '<img src="https://news.example.org/b.jpg"' in bridge.summary_html
    assert weather.guid == "https://news.example.org/weather"


def test_the_same_post_is_not_added_twice_by_guid_or_by_link(app, runner):
    runner.invoke(args=["import-feed", str(DATA / "feed.rss")])
    again = runner.invoke(args=["import-feed", str(DATA / "feed.rss")])
    assert "added 0, updated 0, unchanged 2" in again.output

    atom = runner.invoke(args=["import-feed", str(DATA / "feed.atom")])
    assert "added 1, updated 1, unchanged 0" in atom.output
    titles = [post.title for post in all_posts(app)]
    assert titles == ["Council approves new bridge", "Weather: a sunny week", "Library reopens"]
    library = all_posts(app)[-1]
    assert library.summary_html == "<p>Books <em>again</em>.</p>"


def test_a_post_edited_by_hand_is_not_overwritten_by_the_feed(app, runner):
    runner.invoke(args=["import-feed", str(DATA / "feed.rss")])
    with app.app_context():
        weather = db.session.scalar(select(Post).where(Post.title.like("Weather%")))
        weather.title = "Weather, edited"
        weather.edited_at = utcnow()
        db.session.commit()
    runner.invoke(args=["import-feed", str(DATA / "feed.atom")])
    assert "Weather, edited" in [post.title for post in all_posts(app)]


def test_feed_errors_are_explained(app, runner, tmp_path):
    missing = runner.invoke(args=["import-feed", str(tmp_path / "nope.xml")])
    assert missing.exit_code != 0
    assert "Cannot read the feed" in missing.output
    (tmp_path / "junk.xml").write_text("this is not a feed <<<")
    junk = runner.invoke(args=["import-feed", str(tmp_path / "junk.xml")])
    assert junk.exit_code != 0
    assert "not an RSS or Atom feed" in junk.output
    unset = runner.invoke(args=["import-feed"])
    assert unset.exit_code != 0
    assert "FEED_URL" in unset.output


@pytest.fixture
def feed_server():
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *args, directory=str(DATA)
    )
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_feed_url_is_fetched_over_http(make_app, feed_server):
    app = make_app(FEED_URL=f"{feed_server}/feed.rss")
    result = app.test_cli_runner().invoke(args=["import-feed"])
    assert "added 2" in result.output, result.output


def test_sanitize_keeps_formatting_and_drops_anything_active():
    html = (
        '<h2 style="x">Hi</h2><a href="https://a.example/" onmouseover="x()">a</a>'
        "<svg><script>x</script></svg>"
    )
    expected = '<h2>Hi</h2><a href="https://a.example/" rel="noopener noreferrer">a</a>'
    assert sanitize(html) == expected


def test_a_feed_item_whose_link_is_not_http_is_refused(app, runner, tmp_path):
    feed = tmp_path / "hostile.rss"
    items = [
        ("Fine", "https://news.example.org/fine"),
        ("Script", "javascript:alert(document.cookie)"),
        ("Data", "data:text/html,<script>alert(1)</script>"),
        ("Scheme only", "https:alert"),
    ]
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        + "".join(
            f"<item><title>{title}</title><link>{link.replace('<', '&lt;')}</link>"
            f"<guid>g-{title}</guid></item>"
            for title, link in items
        )
        + "</channel></rss>"
    )
    result = runner.invoke(args=["import-feed", str(feed)])
    assert result.exit_code == 0, result.output
    assert "added 1, updated 0, unchanged 0, refused 3" in result.output
    assert [(post.title, post.link) for post in all_posts(app)] == [
        ("Fine", "https://news.example.org/fine")
    ]
