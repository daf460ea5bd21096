"""The sign-up box that a site shows in a frame on its own pages (/embed): only the
sites of EMBED_ORIGINS may frame it, and a sign-up in it ends in place."""

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.sending.models import EmailJob
from newsletter.subscribers.models import Subscriber
from tests.helpers import log_in

SITES = "https://news.example https://*.blog.example:8443"


def frame_ancestors(response):
    policy = response.headers["Content-Security-Policy"]
    return next(d for d in policy.split("; ") if d.startswith("frame-ancestors"))


def test_only_the_embed_origins_may_frame_the_box_and_no_one_frames_other_pages(make_app):
    client = make_app(EMBED_ORIGINS=SITES).test_client()
    box = client.get("/embed")
    assert box.status_code == 200
    assert frame_ancestors(box) == f"frame-ancestors 'self' {SITES}"
    assert "X-Frame-Options" not in box.headers
    assert b'action="/embed"' in box.data

    for path in ["/", "/api/subscribe", "/admin/login"]:
        page = client.get(path)
        assert frame_ancestors(page) == "frame-ancestors 'none'"
        assert page.headers["X-Frame-Options"] == "DENY"


def test_without_embed_origins_the_box_is_framed_only_by_this_site(client):
    assert frame_ancestors(client.get("/embed")) == "frame-ancestors 'self'"


@pytest.mark.parametrize(
    "origins", ["news.example", "https://news.example/page", "javascript:alert(1)", "https://"]
)
def test_a_wrong_embed_origin_stops_the_app_from_starting(make_app, origins):
    with pytest.raises(ValueError, match="EMBED_ORIGINS"):
        make_app(EMBED_ORIGINS=origins)


def test_a_sign_up_in_the_box_ends_in_place_and_names_the_site(app, make_app):
    client = make_app(EMBED_ORIGINS=SITES).test_client()
    form = client.get("/embed?source=blog-sidebar")
    assert b'name="source" value="blog-sidebar"' in form.data

    done = client.post(
        "/embed", data={"email": "ann@example.org", "name": "Ann", "source": "blog-sidebar"}
    )
    assert done.status_code == 200
    assert b"Success! Now check your email" in done.data
    assert b"spam folder" in done.data
    assert frame_ancestors(done) == f"frame-ancestors 'self' {SITES}"
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber))
        assert (subscriber.email, subscriber.signup_source) == ("ann@example.org", "blog-sidebar")
        assert db.session.scalar(select(EmailJob.kind)) == "confirmation"


def test_a_refused_sign_up_in_the_box_shows_why_in_the_box(app, client):
    refused = client.post("/embed", data={"email": "not an address", "name": "Ann"})
    assert refused.status_code == 400
    assert b"That email address is not valid" in refused.data
    assert b'action="/embed"' in refused.data
    assert b'value="Ann"' in refused.data
    with app.app_context():
        assert db.session.scalar(select(Subscriber)) is None


def test_the_api_answers_the_embed_origins_across_sites_and_no_other(make_app):
    client = make_app(EMBED_ORIGINS=SITES).test_client()
    for origin in ["https://news.example", "https://www.blog.example:8443"]:
        preflight = client.options(
            "/api/subscribe",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Content-Type",
            },
        )
        assert preflight.headers["Access-Control-Allow-Origin"] == origin
        posted = client.post(
            "/api/subscribe",
            json={"email": f"r@{origin.split('//')[1].split(':')[0]}", "source": "sidebar"},
            headers={"Origin": origin},
        )
        assert posted.status_code == 202
        assert posted.headers["Access-Control-Allow-Origin"] == origin
    for stranger in ["https://evil.example", "https://blog.example:8443", "http://news.example"]:
        answer = client.options("/api/subscribe", headers={"Origin": stranger})
        assert "Access-Control-Allow-Origin" not in answer.headers
    assert (
        "Access-Control-Allow-Origin"
        not in client.get("/", headers={"Origin": SITES.split(maxsplit=1)[0]}).headers
    )


def test_the_script_is_served_and_the_admin_shows_the_snippets(make_app, admin):
    app = make_app(EMBED_ORIGINS=SITES, BASE_URL="https://letters.example")
    client = app.test_client()
    script = client.get("/embed.js")
    assert script.status_code == 200
    assert script.mimetype == "text/javascript"
    assert b"/api/subscribe" in script.data
    script.close()
    log_in(client)
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert '&lt;script src="https://letters.example/embed.js" async&gt;' in dashboard
    assert "https://news.example, https://*.blog.example:8443" in dashboard
