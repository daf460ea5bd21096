"""Admins list, add and edit newsletters and their digest schedules in the admin area."""

import re

import pytest
from sqlalchemy import func, select

from harness import csrf_token
from newsletter.content import digests, posts
from newsletter.content.models import Newsletter
from newsletter.extensions import db
from newsletter.subscribers.models import SubscriberStatus
from tests.helpers import add_subscribers


def cells(page, name):
    """The text of each cell in the list's row for a newsletter, tags and spacing removed."""
    row = re.search(rf"<tr><td><a [^>]*>{re.escape(name)}</a>.*?</tr>", page, re.S)[0]
    return [
        " ".join(re.sub(r"<[^>]+>", " ", cell).split())
        for cell in re.findall(r"<td>(.*?)</td>", row, re.S)
    ]


def newsletter_form(admin, path, **fields):
    form = {
        "csrf_token": csrf_token(admin.get(path)),
        "name": "Breaking news",
        "description": "The moment it happens.",
        "schedule": "daily",
        "schedule_weekday": "0",
        "schedule_hour": "6",
        "schedule_category": "Politics",
    }
    return {**form, **fields}


def count_newsletters(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Newsletter))


def test_an_admin_adds_a_newsletter_with_its_schedule_and_edits_it(app, admin_client):
    admin = admin_client
    add_subscribers(app, 2)
    add_subscribers(app, 1, status=SubscriberStatus.PENDING, prefix="pending")

    listed = admin.get("/admin/newsletters").text
    assert '<a href="/admin/newsletters" aria-current="page">Newsletters</a>' in listed
    assert cells(listed, "The Newsletter") == [
        "The Newsletter",
        "newsletter",
        "public",
        "yes",
        "2",
        "off",
        "none yet",
        "Compose a digest",
    ]

    new = admin.get("/admin/newsletters/new").text
    assert '<input checked id="default_on"' in new
    added = admin.post(
        "/admin/newsletters/new",
        data=newsletter_form(admin, "/admin/newsletters/new", slug="breaking"),
        follow_redirects=True,
    )
    assert added.status_code == 200
    assert "Newsletter “Breaking news” created." in added.text
    assert cells(added.text, "Breaking news") == [
        "Breaking news",
        "breaking",
        "private",
        "no",
        "0",
        "daily at 06:00 UTC, only “Politics”",
        "none yet",
        "Compose a digest",
    ]
    assert 'value="breaking"' in app.test_client().get("/").text

    with app.app_context():
        breaking = db.session.scalar(select(Newsletter.id).where(Newsletter.slug == "breaking"))
        posts.save_post(None, "Flood", "https://news.example/flood", "")
        digests.create_digest("Flood warning", newsletter_id=breaking)
    path = f"/admin/newsletters/{breaking}"
    page = admin.get(path).text
    assert "<code>breaking</code> (fixed" in page
    assert 'name="slug"' not in page
    assert 'value="Politics"' in page
    edited = admin.post(
        path,
        data=newsletter_form(
            admin,
            path,
            name="Breaking",
            default_on="y",
            public="y",
            schedule="weekly",
            schedule_weekday="4",
            schedule_hour="18",
            schedule_category="",
        ),
        follow_redirects=True,
    )
    assert "Newsletter “Breaking” saved." in edited.text
    assert cells(edited.text, "Breaking") == [
        "Breaking",
        "breaking",
        "public",
        "yes",
        "0",
        "weekly, Fridays at 18:00 UTC",
        "Flood warning (draft)",
        "Compose a digest",
    ]
    assert admin.get("/admin/newsletters/999999").status_code == 404


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"slug": "Not A Slug!"}, "A slug is 1 to 64 lower-case letters, digits and hyphens."),
        ({"slug": "newsletter"}, "There is a newsletter &#39;newsletter&#39; already."),
        ({"slug": "a" * 65}, "Field cannot be longer than 64 characters."),
        ({"slug": "   "}, "This field is required."),
        ({"slug": "ok", "name": "n" * 201}, "Field cannot be longer than 200 characters."),
        ({"slug": "ok", "name": " \t "}, "This field is required."),
        ({"slug": "ok", "name": "Nul\x00"}, "This must not contain a NUL character."),
        ({"slug": "ok\x00"}, "This must not contain a NUL character."),
        ({"slug": "ok", "schedule": "hourly"}, "Not a valid choice."),
        ({"slug": "ok", "schedule_weekday": "7"}, "Not a valid choice."),
        ({"slug": "ok", "schedule_weekday": "x"}, "Invalid Choice: could not coerce."),
        ({"slug": "ok", "schedule_hour": "24"}, "Number must be between 0 and 23."),
        ({"slug": "ok", "schedule_hour": "-1"}, "Number must be between 0 and 23."),
        ({"slug": "ok", "schedule_hour": "eight"}, "Not a valid integer value."),
        ({"slug": "ok", "schedule_category": "c" * 101}, "cannot be longer than 100 characters."),
        ({"slug": "ok", "description": "d" * 2001}, "cannot be longer than 2000 characters."),
    ],
)
def test_a_newsletter_the_form_cannot_take_is_an_error_on_the_form(
    app, admin_client, fields, error
):
    before = count_newsletters(app)
    refused = admin_client.post(
        "/admin/newsletters/new",
        data=newsletter_form(admin_client, "/admin/newsletters/new", **fields),
    )
    assert refused.status_code == 400
    assert error in refused.text
    assert 'role="alert"' in refused.text
    assert count_newsletters(app) == before


def test_an_edit_the_form_cannot_take_changes_nothing(app, admin_client):
    path = "/admin/newsletters/1"
    for fields, error in [
        ({"name": ""}, "This field is required."),
        ({"schedule_hour": "99"}, "Number must be between 0 and 23."),
        ({"csrf_token": "forged"}, "The CSRF token is invalid."),
    ]:
        refused = admin_client.post(path, data=newsletter_form(admin_client, path, **fields))
        assert refused.status_code == 400
        assert error in refused.text
    with app.app_context():
        first = db.session.get(Newsletter, 1)
        assert (first.name, first.schedule) == ("The Newsletter", "off")


def test_the_newsletter_pages_are_behind_the_login(client):
    for path in ["/admin/newsletters", "/admin/newsletters/new", "/admin/newsletters/1"]:
        answer = client.get(path)
        assert answer.status_code == 302
        assert "/admin/login" in answer.location
