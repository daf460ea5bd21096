"""The admins' API, /api/v1, as a script with an API key uses it: keys made on the
command line with scopes and an expiry and revoked on the admin page, subscribers, posts
and digests, the audit log of what each key did, and the OpenAPI document."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from harness import csrf_token
from newsletter.admins.models import ApiKey, AuditEntry
from newsletter.content import digests, posts
from newsletter.content.models import Digest, DigestStatus
from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.sending.models import EmailJob
from newsletter.subscribers import privacy
from newsletter.subscribers.models import ConsentEvent, Subscriber, SubscriberStatus
from tests.helpers import ADMIN, FEED, add_subscribers


def create_key(runner, name="crm sync", *options):
    result = runner.invoke(args=["create-api-key", name, *options])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


@pytest.fixture
def key(runner):
    return create_key(runner)


@pytest.fixture
def api(client, key):
    """The test client, sending the key with every request."""
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def test_a_key_is_printed_once_as_the_last_line_and_only_its_hash_is_kept(app, runner):
    key = create_key(runner)
    assert key.startswith("nl_")
    assert len(key) >= 40
    with app.app_context():
        stored = db.session.scalar(select(ApiKey))
        assert stored.prefix == key[:8]
        assert key not in stored.key_hash
    assert runner.invoke(args=["create-api-key", " "]).exit_code != 0


@pytest.mark.parametrize("authorization", [None, "Bearer nl_wrong", "Bearer ", "Basic eDp5"])
def test_no_key_or_a_wrong_one_is_a_401(client, key, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    answer = client.get("/api/v1/subscribers", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.get_json()["error"]


def test_last_use_is_noted_at_most_once_a_minute(app, api):
    assert api.get("/api/v1/posts").status_code == 200
    with app.app_context():
        first = db.session.scalar(select(ApiKey.last_used_at))
        assert first is not None
    assert api.get("/api/v1/posts").status_code == 200
    with app.app_context():
        assert db.session.scalar(select(ApiKey.last_used_at)) == first
        db.session.get(ApiKey, 1).last_used_at = first - timedelta(minutes=2)
        db.session.commit()
    api.get("/api/v1/posts")
    with app.app_context():
        assert db.session.scalar(select(ApiKey.last_used_at)) > first - timedelta(minutes=2)


def test_a_key_revoked_on_the_admin_page_stops_working(admin_client, key):
    page = admin_client.get("/admin/api-keys")
    assert "crm sync" in page.get_data(as_text=True)
    assert key[:8] in page.get_data(as_text=True)
    revoked = admin_client.post("/admin/api-keys/1/revoke", data={"csrf_token": csrf_token(page)})
    assert revoked.status_code == 302
    answer = admin_client.get("/api/v1/posts", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 401
    with admin_client.application.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "api_keys.revoke"))
        assert (entry.actor, entry.target) == (ADMIN[0], f"crm sync ({key[:8]}…)")


def test_a_logged_in_admins_cookie_does_not_open_the_api(app, admin_client):
    """The API is exempt from CSRF tokens, so a cookie there would let another site's
    page send a digest with a body-less POST: only a Bearer key opens it."""
    with app.app_context():
        posts.import_feed(FEED)
        digest_id = digests.create_digest("Weekly").id
    add_subscribers(app, 2)
    token = csrf_token(admin_client.get("/admin/api-keys"))
    for answer in (
        admin_client.get("/api/v1/posts"),
        admin_client.post(f"/api/v1/digests/{digest_id}/send"),
        admin_client.post(f"/api/v1/digests/{digest_id}/send", headers={"X-CSRFToken": token}),
        admin_client.post(f"/api/v1/digests/{digest_id}/send", data={"csrf_token": token}),
    ):
        assert answer.status_code == 401
        assert "Bearer" in answer.get_json()["error"]
    with app.app_context():
        assert db.session.get(Digest, digest_id).status == DigestStatus.DRAFT


def test_a_key_may_do_only_what_its_scopes_allow(app, runner, client):
    key = create_key(runner, "reporting", "--scope", "subscribers:read", "--scope", "digests:read")
    add_subscribers(app, 2)
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    assert client.get("/api/v1/subscribers").status_code == 200
    assert client.get("/api/v1/digests").status_code == 200

    refused = client.post(
        "/api/v1/subscribers", json={"email": "new@example.org", "consent": {"source": "crm"}}
    )
    assert refused.status_code == 403
    assert "subscribers:write" in refused.get_json()["error"]
    assert client.delete("/api/v1/subscribers/1").status_code == 403
    assert "digests:write" in client.post("/api/v1/digests", json={}).get_json()["error"]
    hook = client.post("/api/v1/webhooks", json={"url": "https://example.com/", "events": []})
    assert (hook.status_code, hook.get_json()["error"]) == (
        403,
        "This API key lacks the scope webhooks:write.",
    )
    assert client.get("/api/v1/newsletters").status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count(Subscriber.id))) == 2


def test_unknown_scopes_and_bad_expiries_are_refused_with_a_reason(app, runner):
    unknown = runner.invoke(args=["create-api-key", "x", "--scope", "everything"])
    assert unknown.exit_code != 0
    assert "'everything' is not one of" in unknown.output
    assert "subscribers:read" in unknown.output
    for days in ("0", "-3", "soon", "99999"):
        assert runner.invoke(args=["create-api-key", "x", "--expires-in", days]).exit_code != 0
    with app.app_context():
        assert db.session.scalar(select(func.count(ApiKey.id))) == 0


def test_an_expired_key_is_refused_like_a_revoked_one(app, runner, client):
    made = runner.invoke(args=["create-api-key", "one-off", "--expires-in", "7"])
    assert "every scope, until " in made.output
    key = made.output.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/posts", headers=headers).status_code == 200
    with app.app_context():
        db.session.get(ApiKey, 1).expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    answer = client.get("/api/v1/posts", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert "expired" in answer.get_json()["error"]


def test_the_keys_page_shows_each_keys_scopes_and_expiry(admin_client, runner):
    create_key(runner, "all of it")
    create_key(runner, "newsletters", "--scope", "newsletters:write", "--expires-in", "30")
    page = admin_client.get("/admin/api-keys").get_data(as_text=True)
    all_row, scoped_row = page.split("all of it")[1], page.split("<td>newsletters</td>")[1]
    assert "<td>all</td>" in all_row.split("</tr>")[0]
    assert "never" in all_row.split("</tr>")[0]
    scoped_row = scoped_row.split("</tr>")[0]
    assert "<code>newsletters:write</code>" in scoped_row
    assert f"{utcnow() + timedelta(days=30):%Y-%m-%d}" in scoped_row


def test_what_a_key_changes_or_exports_is_in_the_audit_log_under_its_name(app, api, key):
    add_subscribers(app, 2)
    api.get("/api/v1/subscribers?status=confirmed")
    added = api.post(
        "/api/v1/subscribers", json={"email": "ann@example.org", "consent": {"source": "crm"}}
    ).get_json()
    api.patch(f"/api/v1/subscribers/{added['id']}", json={"name": "Ann"})
    api.delete(f"/api/v1/subscribers/{added['id']}")
    api.post("/api/v1/newsletters", json={"slug": "extra", "name": "Extra"})
    api.get("/api/v1/posts")
    with app.app_context():
        entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    logged = [(entry.actor_kind, entry.action, entry.target) for entry in entries]
    subscriber = f"subscriber {added['id']}"
    assert logged[1:] == [
        ("api_key", "subscribers.read", None),
        ("api_key", "subscribers.add", subscriber),
        ("api_key", "subscribers.change", subscriber),
        ("api_key", "subscribers.erase", subscriber),
        ("api_key", "newsletters.create", "extra"),
    ]
    assert logged[0][:2] == ("command", "api_keys.create")
    assert {entry.actor for entry in entries[1:]} == {f"crm sync ({key[:8]}…)"}
    assert entries[1].detail.startswith("2 on page 1; status=confirmed")
    # The address left with the subscriber: the log names them by id only.
    assert not any("ann@" in (entry.detail or "") for entry in entries)


def test_a_revoke_without_the_csrf_token_does_nothing(admin_client, key):
    admin_client.post("/admin/api-keys/1/revoke")
    answer = admin_client.get("/api/v1/posts", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200


def test_subscribers_are_added_listed_searched_changed_and_erased(app, api):
    pending = api.post(
        "/api/v1/subscribers",
        json={"email": "Ann@Example.org", "name": "Ann", "consent": {"source": "crm"}},
    )
    assert pending.status_code == 201
    ann = pending.get_json()
    assert ann["email"] == "ann@example.org"
    assert ann["status"] == "pending"
    assert ann["signup_source"] == "crm"
    confirmed = api.post(
        "/api/v1/subscribers",
        json={"email": "bob@example.org", "consent": {"source": "event"}, "confirmed": True},
    )
    assert confirmed.status_code == 201
    bob = confirmed.get_json()
    assert bob["status"] == "confirmed"
    assert bob["confirmed_at"].endswith("Z")
    with app.app_context():
        # Ann is owed a confirmation; Bob's consent is logged as the import's would be.
        assert db.session.scalar(select(EmailJob.subscriber_id)) == ann["id"]
        kinds = db.session.scalars(
            select(ConsentEvent.kind).where(ConsentEvent.subscriber_id == bob["id"])
        ).all()
        assert sorted(kinds) == ["confirm", "signup"]

    listed = api.get("/api/v1/subscribers?status=confirmed").get_json()
    assert [item["email"] for item in listed["items"]] == ["bob@example.org"]
    assert (listed["page"], listed["pages"], listed["total"]) == (1, 1, 1)
    found = api.get("/api/v1/subscribers?q=ANN&per_page=1").get_json()
    assert found["items"][0]["id"] == ann["id"]
    assert api.get(f"/api/v1/subscribers/{ann['id']}").get_json() == ann

    renamed = api.patch(f"/api/v1/subscribers/{ann['id']}", json={"name": "Ann B."})
    assert renamed.get_json()["name"] == "Ann B."
    left = api.patch(f"/api/v1/subscribers/{bob['id']}", json={"status": "unsubscribed"})
    assert left.get_json()["status"] == "unsubscribed"
    assert left.get_json()["unsubscribed_at"]

    assert api.delete(f"/api/v1/subscribers/{ann['id']}").status_code == 204
    assert api.get(f"/api/v1/subscribers/{ann['id']}").status_code == 404
    again = api.post(
        "/api/v1/subscribers", json={"email": "ann@example.org", "consent": {"source": "crm"}}
    )
    assert again.status_code == 422
    assert "erased" in again.get_json()["error"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"email": "new@example.org"}, 400),
        ({"email": "new@example.org", "consent": {}}, 400),
        ({"email": "new@example.org", "consent": {"source": ""}}, 400),
        ({"email": 5, "consent": {"source": "crm"}}, 400),
        ({"email": "new@example.org", "consent": {"source": "crm"}, "confirmed": "yes"}, 400),
        ({"email": "not an address", "consent": {"source": "crm"}}, 422),
        ({"email": "new@example.org", "name": "x\ny", "consent": {"source": "crm"}}, 422),
        ({"email": "reader0@example.org", "consent": {"source": "crm"}}, 409),
    ],
)
def test_a_bad_new_subscriber_is_refused_with_a_reason(app, api, body, status):
    add_subscribers(app, 1)
    answer = api.post("/api/v1/subscribers", json=body)
    assert answer.status_code == status
    assert answer.get_json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/api/v1/subscribers?per_page=201", None, 400),
        ("get", "/api/v1/subscribers?page=0", None, 400),
        ("get", "/api/v1/subscribers?status=gone", None, 400),
        ("get", "/api/v1/subscribers/999", None, 404),
        ("patch", "/api/v1/subscribers/1", {"status": "confirmed"}, 400),
        ("patch", "/api/v1/subscribers/1", {"name": "see https://spam.example"}, 422),
        ("patch", "/api/v1/subscribers/999", {"name": "x"}, 404),
        ("delete", "/api/v1/subscribers/999", None, 404),
        ("post", "/api/v1/subscribers", "[[[", 400),
    ],
)
def test_subscriber_errors_are_json_with_a_reason(app, api, method, path, body, status):
    add_subscribers(app, 1)
    if isinstance(body, str):
        answer = api.open(path, method=method, data=body, content_type="application/json")
    else:
        answer = api.open(path, method=method, json=body)
    assert answer.status_code == status
    assert answer.get_json()["error"]


def test_a_digest_is_drafted_sent_paused_resumed_and_its_progress_read(app, api):
    assert api.post("/api/v1/digests", json={"subject": "Nothing"}).status_code == 422
    with app.app_context():
        posts.import_feed(FEED)
    listed = api.get("/api/v1/posts?per_page=1").get_json()
    assert (len(listed["items"]), listed["pages"], listed["total"]) == (1, 2, 2)
    chosen = [item["id"] for item in listed["items"]]
    add_subscribers(app, 3)

    draft = api.post("/api/v1/digests", json={"subject": "Weekly", "post_ids": chosen})
    assert draft.status_code == 201
    digest = draft.get_json()
    assert digest["status"] == "draft"
    assert sorted(digest["post_ids"]) == sorted(chosen)
    assert api.get("/api/v1/digests").get_json()["items"][0]["id"] == digest["id"]

    assert api.post(f"/api/v1/digests/{digest['id']}/pause").status_code == 409
    sent = api.post(f"/api/v1/digests/{digest['id']}/send")
    assert sent.status_code == 202
    assert sent.get_json()["status"] == "scheduled"
    with app.app_context():
        digests.start_sending(digest["id"])
    assert api.post(f"/api/v1/digests/{digest['id']}/send").status_code == 409
    shown = api.get(f"/api/v1/digests/{digest['id']}").get_json()
    assert shown["status"] == "sending"
    assert shown["progress"]["pending"] == 3
    assert api.post(f"/api/v1/digests/{digest['id']}/pause").get_json()["status"] == "paused"
    assert api.post(f"/api/v1/digests/{digest['id']}/resume").get_json()["status"] == "sending"


def test_a_digest_is_scheduled_for_a_time_in_utc(app, api):
    with app.app_context():
        posts.import_feed(FEED)
    digest = api.post("/api/v1/digests", json={"subject": "Later"}).get_json()
    path = f"/api/v1/digests/{digest['id']}/schedule"
    assert api.post(path, json={"at": "2030-01-01T09:00:00"}).status_code == 400
    assert api.post(path, json={"at": "tomorrow"}).status_code == 400
    assert api.post(path, json={"at": "0001-01-01T00:00:00+01:00"}).status_code == 400
    scheduled = api.post(path, json={"at": "2030-01-01T10:00:00+01:00"})
    assert scheduled.status_code == 200
    assert scheduled.get_json()["scheduled_at"] == "2030-01-01T09:00:00Z"
    assert (
        api.post("/api/v1/digests/999/schedule", json={"at": "2030-01-01T09:00:00Z"}).status_code
        == 404
    )


def test_the_openapi_document_describes_every_route_and_the_bearer_key(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert "`webhooks:write`" in scheme["description"]
    operations = document["paths"]
    assert operations["/api/v1/subscribers"]["post"]["security"] == [
        {"bearer": ["subscribers:write"]}
    ]
    assert operations["/api/v1/digests/{digest_id}/send"]["post"]["security"] == [
        {"bearer": ["digests:write"]}
    ]
    assert all(
        operation["security"][0]["bearer"]
        for methods in operations.values()
        for operation in methods.values()
    )
    documented = {
        (path, method) for path, operations in document["paths"].items() for method in operations
    }
    assert documented == {
        ("/api/v1/subscribers", "get"),
        ("/api/v1/subscribers", "post"),
        ("/api/v1/subscribers/{subscriber_id}", "get"),
        ("/api/v1/subscribers/{subscriber_id}", "patch"),
        ("/api/v1/subscribers/{subscriber_id}", "delete"),
        ("/api/v1/posts", "get"),
        ("/api/v1/digests", "get"),
        ("/api/v1/digests", "post"),
        ("/api/v1/digests/{digest_id}", "get"),
        ("/api/v1/digests/{digest_id}/send", "post"),
        ("/api/v1/digests/{digest_id}/schedule", "post"),
        ("/api/v1/digests/{digest_id}/{action}", "post"),
        ("/api/v1/webhooks", "post"),
        ("/api/v1/newsletters", "get"),
        ("/api/v1/newsletters", "post"),
        ("/api/v1/newsletters/{slug_or_id}", "get"),
        ("/api/v1/newsletters/{slug_or_id}", "patch"),
    }


FIRST = {
    "id": 1,
    "slug": "newsletter",
    "name": "The Newsletter",
    "description": "",
    "default_on": True,
    "public": True,
    "schedule": {"every": "off", "weekday": 0, "hour": 8, "category": None},
    "tracking": "off",
}


def test_newsletters_are_created_listed_read_and_changed(app, api):
    add_subscribers(app, 2)
    add_subscribers(app, 1, SubscriberStatus.PENDING, prefix="waiting")
    assert api.get("/api/v1/newsletters").get_json() == {"items": [{**FIRST, "readers": 2}]}

    made = api.post(
        "/api/v1/newsletters",
        json={
            "slug": "breaking",
            "name": "Breaking  news",
            "description": "As it happens",
            "default_on": False,
            "schedule": {"every": "daily", "hour": 6},
            "tracking": "counts",
        },
    )
    assert made.status_code == 201
    breaking = {
        "id": made.get_json()["id"],
        "slug": "breaking",
        "name": "Breaking news",
        "description": "As it happens",
        "default_on": False,
        "public": True,
        "readers": 0,
        "schedule": {"every": "daily", "weekday": 0, "hour": 6, "category": None},
        "tracking": "counts",
    }
    assert made.get_json() == breaking
    listed = api.get("/api/v1/newsletters").get_json()["items"]
    assert [item["slug"] for item in listed] == ["newsletter", "breaking"]
    assert api.get("/api/v1/newsletters/breaking").get_json() == breaking
    assert api.get(f"/api/v1/newsletters/{breaking['id']}").get_json() == breaking
    assert api.get("/api/v1/newsletters/BREAKING").get_json() == breaking

    changed = api.patch(
        "/api/v1/newsletters/breaking",
        json={
            "name": "Alerts",
            "public": False,
            "default_on": True,
            "schedule": {"every": "weekly", "weekday": 4, "hour": 17, "category": " Politics "},
            "tracking": "per-reader",
        },
    )
    assert changed.status_code == 200
    assert changed.get_json() == {
        **breaking,
        "name": "Alerts",
        "public": False,
        "default_on": True,
        "schedule": {"every": "weekly", "weekday": 4, "hour": 17, "category": "Politics"},
        "tracking": "per-reader",
    }
    unchanged = api.patch("/api/v1/newsletters/1", json={}).get_json()
    assert unchanged == {**FIRST, "readers": 2}


def test_an_all_digit_slug_wins_over_the_id_it_looks_like(api):
    plain = api.post("/api/v1/newsletters", json={"slug": "plain", "name": "Plain"}).get_json()
    assert api.get(f"/api/v1/newsletters/{plain['id']}").get_json()["slug"] == "plain"
    api.post("/api/v1/newsletters", json={"slug": str(plain["id"]), "name": "Digits"})
    assert api.get(f"/api/v1/newsletters/{plain['id']}").get_json()["name"] == "Digits"
    assert api.get("/api/v1/newsletters/plain").get_json()["name"] == "Plain"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        (
            "post",
            "/api/v1/newsletters",
            {"slug": "newsletter", "name": "Again"},
            409,
            "There is a newsletter 'newsletter' already.",
        ),
        (
            "post",
            "/api/v1/newsletters",
            {"slug": "Not A Slug!", "name": "Bad"},
            422,
            "A slug is 1 to 64 lower-case letters, digits and hyphens.",
        ),
        (
            "post",
            "/api/v1/newsletters",
            {"slug": "x" * 65, "name": "Long"},
            422,
            "A slug is 1 to 64 lower-case letters, digits and hyphens.",
        ),
        (
            "post",
            "/api/v1/newsletters",
            {"slug": "nouvelles-été", "name": "Été"},
            422,
            "A slug is 1 to 64 lower-case letters, digits and hyphens.",
        ),
        (
            "post",
            "/api/v1/newsletters",
            {"slug": "blank", "name": "   "},
            422,
            "A newsletter needs a name.",
        ),
        ("post", "/api/v1/newsletters", {"slug": "x", "name": "Two\nlines"}, 400, None),
        ("post", "/api/v1/newsletters", {"slug": "x"}, 400, None),
        ("post", "/api/v1/newsletters", {"slug": "x", "name": "X", "public": "yes"}, 400, None),
        (
            "patch",
            "/api/v1/newsletters/newsletter",
            {"name": " "},
            422,
            "A newsletter needs a name.",
        ),
        ("patch", "/api/v1/newsletters/newsletter", {"slug": "renamed"}, 400, None),
        ("patch", "/api/v1/newsletters/newsletter", {"tracking": "everything"}, 400, None),
        ("post", "/api/v1/newsletters", {"slug": "x", "name": "X", "tracking": None}, 400, None),
        (
            "patch",
            "/api/v1/newsletters/newsletter",
            {"schedule": {"every": "hourly"}},
            400,
            None,
        ),
        (
            "post",
            "/api/v1/newsletters",
            {"slug": "late", "name": "Late", "schedule": {"every": "daily", "hour": 24}},
            400,
            None,
        ),
        ("patch", "/api/v1/newsletters/nope", {"name": "X"}, 404, "There is no newsletter 'nope'."),
        ("get", "/api/v1/newsletters/nope", None, 404, "There is no newsletter 'nope'."),
        (
            "get",
            "/api/v1/newsletters/99999999999",
            None,
            404,
            "There is no newsletter '99999999999'.",
        ),
        ("get", "/api/v1/newsletters/%00", None, 404, "There is no newsletter '\\x00'."),
    ],
)
def test_a_bad_newsletter_is_refused_with_a_reason(api, method, path, body, status, error):
    answer = api.open(path, method=method, json=body)
    assert answer.status_code == status
    if error:
        assert answer.get_json() == {"error": error}
    else:
        assert answer.get_json()["error"].startswith("The request does not fit")
    assert [item["slug"] for item in api.get("/api/v1/newsletters").get_json()["items"]] == [
        "newsletter"
    ]


def test_subscribers_show_choose_and_are_filtered_by_their_newsletters(app, api):
    api.post("/api/v1/newsletters", json={"slug": "breaking", "name": "Breaking news"})
    ann = api.post(
        "/api/v1/subscribers",
        json={
            "email": "ann@example.org",
            "consent": {"source": "crm"},
            "newsletters": ["breaking"],
        },
    ).get_json()
    assert (ann["status"], ann["newsletters"]) == ("pending", ["breaking"])
    bob = api.post(
        "/api/v1/subscribers",
        json={
            "email": "bob@example.org",
            "consent": {"source": "crm"},
            "confirmed": True,
            "newsletters": ["Newsletter", "breaking"],
        },
    ).get_json()
    assert (bob["status"], bob["newsletters"]) == ("confirmed", ["newsletter", "breaking"])
    cat = api.post(
        "/api/v1/subscribers",
        json={"email": "cat@example.org", "consent": {"source": "crm"}, "confirmed": True},
    ).get_json()
    assert cat["newsletters"] == ["newsletter", "breaking"]

    def emails(query):
        return [item["email"] for item in api.get(f"/api/v1/subscribers?{query}").json["items"]]

    assert emails("newsletter=breaking") == [
        "cat@example.org",
        "bob@example.org",
        "ann@example.org",
    ]
    assert emails("newsletter=breaking&status=pending") == ["ann@example.org"]
    assert emails("newsletter=newsletter") == ["cat@example.org", "bob@example.org"]

    only_first = api.patch(f"/api/v1/subscribers/{cat['id']}", json={"newsletters": ["newsletter"]})
    assert only_first.get_json()["newsletters"] == ["newsletter"]
    assert api.get(f"/api/v1/subscribers/{cat['id']}").get_json()["newsletters"] == ["newsletter"]
    filtered = api.get("/api/v1/subscribers?newsletter=breaking&per_page=1").get_json()
    assert (filtered["items"][0]["email"], filtered["total"], filtered["pages"]) == (
        "bob@example.org",
        2,
        2,
    )
    none = api.patch(f"/api/v1/subscribers/{ann['id']}", json={"newsletters": []})
    assert none.get_json()["newsletters"] == []
    assert emails("newsletter=breaking") == ["bob@example.org"]
    counted = api.get("/api/v1/newsletters").get_json()["items"]
    assert [(item["slug"], item["readers"]) for item in counted] == [
        ("newsletter", 2),
        ("breaking", 1),
    ]

    dan = api.post(
        "/api/v1/subscribers",
        json={
            "email": "dan@example.org",
            "consent": {"source": "crm"},
            "confirmed": True,
            "newsletters": ["breaking"],
        },
    ).get_json()
    assert dan["newsletters"] == ["breaking"]
    with app.app_context():
        # The defaults an import would give never were his: his data shows only his choice.
        record = privacy.data_of(db.session.get(Subscriber, dan["id"]))
        assert [(item["slug"], item["active"]) for item in record["newsletters"]] == [
            ("breaking", True)
        ]


@pytest.mark.parametrize(
    "asked",
    [
        ("get", "/api/v1/subscribers?newsletter=nope", None, 422, "There is no newsletter 'nope'."),
        ("get", "/api/v1/subscribers?newsletter=", None, 422, "There is no newsletter ''."),
        (
            "post",
            "/api/v1/subscribers",
            {"email": "new@example.org", "consent": {"source": "crm"}, "newsletters": ["nope"]},
            422,
            "There is no newsletter nope.",
        ),
        (
            "post",
            "/api/v1/subscribers",
            {
                "email": "new@example.org",
                "consent": {"source": "crm"},
                "confirmed": True,
                "newsletters": ["newsletter", "nope", "ünï"],
            },
            422,
            "There is no newsletter nope, ünï.",
        ),
        (
            "post",
            "/api/v1/subscribers",
            {"email": "new@example.org", "consent": {"source": "crm"}, "newsletters": []},
            422,
            "Please choose at least one newsletter.",
        ),
        (
            "post",
            "/api/v1/subscribers",
            {"email": "new@example.org", "consent": {"source": "crm"}, "newsletters": "newsletter"},
            400,
            None,
        ),
        (
            "patch",
            "/api/v1/subscribers/1",
            {"name": "Renamed", "newsletters": ["nope"]},
            422,
            "There is no newsletter nope.",
        ),
        ("patch", "/api/v1/subscribers/1", {"newsletters": [5]}, 400, None),
    ],
)
def test_an_unknown_newsletter_of_a_subscriber_is_a_422_and_changes_nothing(app, api, asked):
    method, path, body, status, error = asked
    add_subscribers(app, 1)
    answer = api.open(path, method=method, json=body)
    assert answer.status_code == status
    if error:
        assert answer.get_json() == {"error": error}
    else:
        assert answer.get_json()["error"].startswith("The request does not fit")
    [subscriber] = api.get("/api/v1/subscribers").get_json()["items"]
    assert (subscriber["email"], subscriber["name"], subscriber["newsletters"]) == (
        "reader0@example.org",
        "",
        ["newsletter"],
    )


def test_a_digest_goes_to_the_newsletter_it_names(app, api):
    with app.app_context():
        posts.import_feed(FEED)
    api.post("/api/v1/newsletters", json={"slug": "breaking", "name": "Breaking news"})
    unknown = api.post("/api/v1/digests", json={"subject": "Lost", "newsletter": "nope"})
    assert (unknown.status_code, unknown.get_json()) == (
        422,
        {"error": "There is no newsletter 'nope'."},
    )
    weekly = api.post("/api/v1/digests", json={"subject": "Weekly"}).get_json()
    assert weekly["newsletter"] == "newsletter"
    alert = api.post("/api/v1/digests", json={"subject": "Alert", "newsletter": "breaking"})
    assert alert.status_code == 201
    assert alert.get_json()["newsletter"] == "breaking"
    assert api.get(f"/api/v1/digests/{alert.get_json()['id']}").get_json()["newsletter"] == (
        "breaking"
    )
    listed = api.get("/api/v1/digests").get_json()["items"]
    assert [(item["subject"], item["newsletter"]) for item in listed] == [
        ("Alert", "breaking"),
        ("Weekly", "newsletter"),
    ]
