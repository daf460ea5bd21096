"""The sign-up box that a site shows in a frame on its own pages (/embed): only the
sites of EMBED_ORIGINS may frame it, and a sign-up in it ends in place."""

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import EmailJob, Subscriber

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
        reader = db.session.scalar(select(Subscriber))
        assert (reader.email, reader.signup_source) == ("ann@example.org", "blog-sidebar")
        assert db.session.scalar(select(EmailJob.kind)) == "confirmation"


def test_a_refused_sign_up_in_the_box_shows_why_in_the_box(app, client):
    refused = client.post("/embed", data={"email": "not an address", "name": "Ann"})
    assert refused.status_code == 400
    assert b"That email address is not valid" in refused.data
    assert b'action="/embed"' in refused.data
    assert b'value="Ann"' in refused.data
    with app.app_context():
        assert db.session.scalar(select(Subscriber)) is None
