"""Admins write posts and digest intros in Markdown and watch the email take shape:
what subscribers get is the rendered, sanitised HTML and readable text, and nothing
hostile that was typed ever becomes markup, in the email or in the preview."""

import html
import re

import pytest
from sqlalchemy import select

from harness import csrf_token
from newsletter.content.models import Digest, Post
from newsletter.extensions import db
from tests.helpers import add_subscribers, wait_until_sent
from tests.smtp import html_of, text_of

POST_MARKDOWN = """The council voted **yes** on the *new* bridge.

- Cost: 12 million
- Opens: [in spring](https://news.example.org/bridge-dates)

> Finally, said the mayor."""

INTRO_MARKDOWN = (
    "Hello readers,\n\nthis week is **all about** [the bridge](https://news.example.org/b)."
)

HOSTILE_MARKDOWN = """<script>alert(1)</script>

[x](javascript:alert(1)) [y](JaVaScRiPt:alert(2)) [z](jav&#x61;script:alert(3))

<img src=x onerror=alert(4)>

![pic](javascript:alert(5)) <a href="javascript:alert(6)">a</a>"""


def write_post(client, summary_markdown, title="Bridge approved", post_id=None):
    path = f"/admin/posts/{post_id}" if post_id else "/admin/posts/new"
    token = csrf_token(client.get(path))
    fields = {
        "csrf_token": token,
        "title": title,
        "link": "https://news.example.org/bridge",
        "summary_markdown": summary_markdown,
    }
    assert client.post(path, data=fields).status_code == 302


def new_digest(client, app, intro):
    with app.app_context():
        post_ids = db.session.scalars(select(Post.id)).all()
    token = csrf_token(client.get("/admin/digests/new"))
    created = client.post(
        "/admin/digests/new",
        data={"csrf_token": token, "subject": "Bridge week", "intro": intro, "posts": post_ids},
    )
    assert created.status_code == 302
    return created.headers["Location"]


def send(client, app, digest_path, smtp):
    client.post(f"{digest_path}/send", data={"csrf_token": csrf_token(client.get(digest_path))})
    [message] = smtp.wait_for(1)
    with app.app_context():
        digest_id = db.session.scalar(select(Digest.id))
    assert wait_until_sent(app, digest_id)["sent"] == 1
    return message


def assert_nothing_hostile(html_part, text_part):
    """What was typed may stay as words (raw HTML is shown as typed, html disabled),
    never as markup: no script element, no event handler, no javascript: address."""
    tags = re.findall(r"<[^>]+>", html_part)
    assert tags
    assert not [tag for tag in tags if re.search(r"(?i)<script|\son\w+=|javascript:", tag)]
    # The text part gives each link's address after its words: none is javascript:.
    assert "(javascript:" not in text_part.lower()


def test_markdown_in_a_post_and_an_intro_becomes_the_emails_html_and_text(
    app, admin_client, smtp, worker
):
    add_subscribers(app, 1)
    write_post(admin_client, POST_MARKDOWN)
    with app.app_context():
        assert db.session.scalar(select(Post.summary_markdown)) == POST_MARKDOWN
    message = send(admin_client, app, new_digest(admin_client, app, INTRO_MARKDOWN), smtp)

    body = html_of(message)
    assert re.search(r"<strong[^>]*>all about</strong>", body)
    assert re.search(r'<a href="https://news.example.org/b"[^>]*>the bridge</a>', body)
    assert re.search(r"<strong[^>]*>yes</strong> on the <em[^>]*>new</em> bridge", body)
    assert re.search(r"<li[^>]*>Cost: 12 million</li>", body)
    assert re.search(r"<blockquote[^>]*>\s*<p[^>]*>Finally, said the mayor.</p>", body)
    assert "**" not in body

    text = text_of(message).replace("\r\n", "\n")
    assert (
        "Hello readers,\n\nthis week is all about the bridge (https://news.example.org/b)." in text
    )
    assert "The council voted yes on the new bridge." in text
    assert "- Cost: 12 million\n- Opens: in spring (https://news.example.org/bridge-dates)" in text
    assert "**" not in text


def test_hostile_markdown_never_becomes_markup_in_the_email(app, admin_client, smtp, worker):
    add_subscribers(app, 1)
    write_post(admin_client, HOSTILE_MARKDOWN)
    message = send(admin_client, app, new_digest(admin_client, app, HOSTILE_MARKDOWN), smtp)
    assert_nothing_hostile(html_of(message), text_of(message))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_of(message)
    # The link words stay, without their address.
    assert re.search(r"<a rel=\"noopener noreferrer\"[^>]*>x</a>", html_of(message))


def preview(client, fields, **query):
    token = csrf_token(client.get("/admin/digests/new"))
    return client.post("/admin/preview", query_string=query, data={"csrf_token": token, **fields})


def test_the_preview_shows_the_email_as_readers_get_it(app, admin_client, runner):
    runner.invoke(args=["import-feed", "tests/data/feed.rss"])
    with app.app_context():
        post_ids = db.session.scalars(select(Post.id)).all()
    answer = preview(
        admin_client,
        {"subject": "Bridge week", "intro": INTRO_MARKDOWN, "posts": post_ids},
        composing="digest",
    )
    assert answer.status_code == 200
    assert re.search(r"<strong[^>]*>all about</strong>", answer.json["html"])
    assert "Council approves new bridge" in answer.json["html"]
    assert answer.json["text"].startswith("Bridge week\n===")
    assert "all about the bridge (https://news.example.org/b)" in answer.json["text"]
    with app.app_context():
        assert db.session.scalar(select(Digest.id)) is None, "a preview saves nothing"

    post = preview(
        admin_client,
        {"title": "Draft", "link": "javascript:alert(1)", "summary_markdown": POST_MARKDOWN},
        composing="post",
    )
    assert post.status_code == 200
    assert re.search(r"<strong[^>]*>yes</strong>", post.json["html"])
    assert 'href="#"' in post.json["html"], "an unchecked link is not shown as one"
    assert_nothing_hostile(post.json["html"], post.json["text"])

    hostile = preview(
        admin_client,
        {"subject": "x", "intro": HOSTILE_MARKDOWN, "posts": post_ids},
        composing="digest",
    )
    assert_nothing_hostile(hostile.json["html"], hostile.json["text"])


def test_editing_a_feed_post_keeps_its_html_until_markdown_replaces_it(app, admin_client, runner):
    runner.invoke(args=["import-feed", "tests/data/feed.rss"])
    with app.app_context():
        bridge = db.session.scalar(select(Post).where(Post.title.like("Council%")))
        feed_html, bridge_id = bridge.summary_html, bridge.id
    form = admin_client.get(f"/admin/posts/{bridge_id}").get_data(as_text=True)
    assert "came from the feed as HTML" in form
    kept = preview(
        admin_client, {"title": "Bridge", "link": bridge.link}, composing="post", post_id=bridge_id
    )
    assert "<strong>bridge</strong>" in kept.json["html"]

    write_post(admin_client, "", title="Bridge, edited", post_id=bridge_id)
    with app.app_context():
        assert db.session.get(Post, bridge_id).summary_html == feed_html
    write_post(admin_client, "Now *Markdown*", post_id=bridge_id)
    with app.app_context():
        edited = db.session.get(Post, bridge_id)
        assert edited.summary_html == "<p>Now <em>Markdown</em></p>"
        assert edited.summary_markdown == "Now *Markdown*"


def test_the_preview_needs_a_csrf_token_and_a_login(app, admin, client):
    refused = client.post("/admin/preview", data={"subject": "x"})
    assert refused.status_code in (302, 400)
    if refused.status_code == 302:
        assert "/admin/login" in refused.headers["Location"]

    logged_out_with_token = client.post(
        "/admin/preview", data={"csrf_token": csrf_token(client.get("/admin/login"))}
    )
    assert logged_out_with_token.status_code == 302
    assert "/admin/login" in logged_out_with_token.headers["Location"]


def test_the_preview_refuses_a_logged_in_admin_without_csrf_token(admin_client):
    assert admin_client.post("/admin/preview", data={"subject": "x"}).status_code == 400


def assert_sandboxed_frames(body):
    """The email at a desktop client's width and a phone's, where nothing may run."""
    desktop, phone = re.findall(r"<iframe[^>]*>", body)
    assert 'sandbox=""' in desktop
    assert 'sandbox=""' in phone
    assert "width:600px" in desktop
    assert "width:375px" in phone


@pytest.mark.parametrize("page", ["/admin/posts/new", "/admin/digests/new"])
def test_the_composer_shows_sandboxed_frames_and_its_script_by_nonce(admin_client, page):
    response = admin_client.get(page)
    body = response.get_data(as_text=True)
    assert_sandboxed_frames(body)
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])[1]
    assert f'<script nonce="{nonce}" src="/static/js/composer.js">' in body
    assert not re.search(r"\son[a-z]+=", body), "no inline event handlers"
    assert 'name="preview"' in body


def test_the_preview_button_shows_the_same_preview_without_javascript(app, admin_client):
    token = csrf_token(admin_client.get("/admin/posts/new"))
    shown = admin_client.post(
        "/admin/posts/new",
        data={
            "csrf_token": token,
            "title": "Draft",
            "link": "https://news.example.org/d",
            "summary_markdown": "A **bold** start <script>alert(1)</script>",
            "preview": "1",
        },
    )
    assert shown.status_code == 200
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', shown.get_data(as_text=True))[1])
    assert re.search(r"<strong[^>]*>bold</strong>", srcdoc)
    assert "<script" not in srcdoc
    with app.app_context():
        assert db.session.scalar(select(Post.id)) is None, "a preview saves nothing"

    token = csrf_token(admin_client.get("/admin/digests/new"))
    digest_page = admin_client.post(
        "/admin/digests/new",
        data={"csrf_token": token, "subject": "Week", "intro": "*Hi*", "preview": "1"},
    )
    assert digest_page.status_code == 200
    assert "&lt;em" in digest_page.get_data(as_text=True)


def test_a_digests_page_previews_it_at_desktop_and_phone_widths(app, admin_client, runner):
    runner.invoke(args=["import-feed", "tests/data/feed.rss"])
    page = admin_client.get(new_digest(admin_client, app, "Hello *there*"))
    body = page.get_data(as_text=True)
    assert_sandboxed_frames(body)
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', body)[1])
    assert re.search(r"<em[^>]*>there</em>", srcdoc)
    assert "Hello there" in body
