"""Roles: owners do everything, editors write posts and send digests, viewers only look;
owners invite admins by email and change or remove them, never the last owner."""

import io
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from harness import csrf_token, free_port
from newsletter.admins import accounts, api_keys
from newsletter.admins.models import Admin, AdminInvitation, AuditEntry
from newsletter.content import digests
from newsletter.content.models import Post
from newsletter.core import task_names
from newsletter.core.models import SuppressedAddress, utcnow
from newsletter.core.suppression import address_hash
from newsletter.extensions import db
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from newsletter.webhooks.models import WebhookEndpoint
from tests.helpers import ADMIN, add_subscribers, log_in
from tests.smtp import link_in, text_of

VIEWER = ("viewer@example.org", "viewer's long password")
EDITOR = ("editor@example.org", "editor's long password")


def add_admin(runner, email, password, role):
    result = runner.invoke(args=["create-admin", email, "--password", password, "--role", role])
    assert result.exit_code == 0, result.output
    assert f"{email} ({role}) can log in" in result.output


def everything_stored(app):
    """Every row of every table but the audit log: what a refused request must not change."""
    with app.app_context():
        return {
            table.name: sorted(map(tuple, db.session.execute(select(table)).all()), key=repr)
            for table in db.metadata.sorted_tables
            if table.name != AuditEntry.__tablename__
        }


@pytest.fixture
def things(app, runner, admin):
    """A subscriber of each kind, a post, a digest, a webhook endpoint and an API key:
    something for every forbidden action to act on."""
    runner.invoke(args=["import-feed", "tests/data/feed.rss"])
    add_subscribers(app, 1)
    add_subscribers(app, 1, SubscriberStatus.BOUNCED, prefix="bounced")
    with app.app_context():
        bounced = db.session.scalar(select(Subscriber).where(Subscriber.email.like("bounced%")))
        db.session.add(SuppressedAddress(address_hash=address_hash(bounced.email)))
        db.session.add(
            WebhookEndpoint(
                url="https://hooks.example.org/in", events="subscriber.confirmed", secret="s"
            )
        )
        key, _secret = api_keys.create("script")
        digest = digests.create_digest("Week one", "", [db.session.scalar(select(Post.id))], 1)
        db.session.commit()
        return {
            "reader": db.session.scalar(
                select(Subscriber.id).where(Subscriber.email == "reader0@example.org")
            ),
            "bounced": bounced.id,
            "post": db.session.scalar(select(Post.id)),
            "digest": digest.id,
            "endpoint": db.session.scalar(select(WebhookEndpoint.id)),
            "key": key.id,
            "owner": db.session.scalar(select(Admin.id).where(Admin.email == ADMIN[0])),
        }


# What a viewer may not do: (method, path, form), ``{name}`` filled from ``things``.
FORBIDDEN_TO_VIEWERS = [
    ("GET", "/admin/subscribers.csv", {}),
    ("GET", "/admin/subscribers/import", {}),
    ("POST", "/admin/subscribers/import", {"file": "upload"}),
    ("POST", "/admin/subscribers/{reader}/erase", {}),
    ("POST", "/admin/subscribers/{reader}/unsubscribe", {}),
    ("POST", "/admin/subscribers/{reader}/resend", {}),
    ("POST", "/admin/subscribers/bulk", {"action": "erase", "ids": "{reader}"}),
    ("POST", "/admin/subscribers/{bounced}/lift-suppression", {}),
    ("POST", "/admin/subscribers/lift-erased", {"email": "gone@example.org"}),
    ("POST", "/admin/posts/new", {"title": "T", "link": "https://example.org/t"}),
    ("POST", "/admin/posts/{post}", {"title": "Changed", "link": "https://example.org/c"}),
    ("POST", "/admin/preview?composing=post", {"title": "T"}),
    ("GET", "/admin/digests/new", {}),
    ("POST", "/admin/digests/new", {"subject": "S", "posts": "{post}", "newsletter": "1"}),
    ("POST", "/admin/digests/{digest}/test", {"email": "me@example.org"}),
    ("POST", "/admin/digests/{digest}/send", {}),
    ("POST", "/admin/digests/{digest}/schedule", {"send_at": "2030-01-01T08:00"}),
    ("POST", "/admin/settings", {"welcome_subject": "Hi", "send_rate_limit": "1"}),
    ("GET", "/admin/newsletters/new", {}),
    ("POST", "/admin/newsletters/new", {"slug": "more", "name": "More"}),
    ("POST", "/admin/newsletters/1", {"name": "Renamed"}),
    ("POST", "/admin/email-templates/confirmation", {"html": "x", "text": "x"}),
    ("POST", "/admin/email-templates/confirmation/reset", {}),
    ("POST", "/admin/blocked-domains", {"domains": "example.org"}),
    ("POST", "/admin/webhooks", {"url": "https://example.org/h", "events": "subscriber.confirmed"}),
    ("POST", "/admin/webhooks/{endpoint}/deactivate", {}),
    ("POST", "/admin/api-keys/{key}/revoke", {}),
    ("GET", "/admin/admins", {}),
    ("POST", "/admin/admins", {"email": "new@example.org", "role": "owner"}),
    ("POST", "/admin/admins/{owner}/role", {"role": "viewer"}),
    ("POST", "/admin/admins/{owner}/remove", {}),
    ("GET", "/admin/audit", {}),
    ("GET", "/admin/audit.csv", {}),
]


@pytest.mark.parametrize("forbidden", FORBIDDEN_TO_VIEWERS, ids=lambda case: " ".join(case[:2]))
def test_a_viewer_is_refused_each_change_and_nothing_changes(
    app, client, runner, things, forbidden
):
    method, path, form = forbidden
    add_admin(runner, *VIEWER, "viewer")
    assert log_in(client, *VIEWER).status_code == 302
    token = csrf_token(client.get("/admin/"))
    before = everything_stored(app)

    data = {name: value.format(**things) for name, value in form.items()}
    if data.get("file"):
        data["file"] = (io.BytesIO(b"email\nnew@example.org\n"), "new.csv")
    url = path.format(**things)
    if method == "GET":
        refused = client.get(url)
    else:
        refused = client.post(url, data={**data, "csrf_token": token})

    assert refused.status_code == 403
    assert "Your role (viewer) may not do this" in refused.text
    assert everything_stored(app) == before


def test_a_viewer_sees_the_pages_without_the_buttons_they_may_not_use(client, runner, things):
    add_admin(runner, *VIEWER, "viewer")
    log_in(client, *VIEWER)

    for path in (
        "/admin/",
        "/admin/subscribers",
        f"/admin/subscribers/{things['reader']}",
        f"/admin/digests/{things['digest']}",
        "/admin/settings",
        "/admin/webhooks",
        "/admin/api-keys",
        f"/admin/posts/{things['post']}",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "Import" not in page.text.split("</nav>")[0]
        assert "Audit log" not in page.text
    assert "Export all as CSV" not in client.get("/admin/subscribers").text
    assert "Erase" not in client.get(f"/admin/subscribers/{things['reader']}").text
    digest = client.get(f"/admin/digests/{things['digest']}").text
    assert "Send now" not in digest
    assert "Send test" not in digest
    assert "can look at this, not change it" in client.get("/admin/settings").text
    assert ">Revoke</button>" not in client.get("/admin/api-keys").text


def test_an_editor_sends_a_digest_but_cannot_export_or_erase(
    app, client, runner, things, smtp, worker
):
    add_admin(runner, *EDITOR, "editor")
    log_in(client, *EDITOR)
    token = csrf_token(client.get("/admin/"))

    assert client.get("/admin/subscribers.csv").status_code == 403
    erase = f"/admin/subscribers/{things['reader']}/erase"
    assert client.post(erase, data={"csrf_token": token}).status_code == 403
    assert client.post("/admin/settings", data={"csrf_token": token}).status_code == 403

    written = client.post(
        "/admin/posts/new",
        data={"csrf_token": token, "title": "By the editor", "link": "https://example.org/ed"},
    )
    assert written.status_code == 302
    digest_path = f"/admin/digests/{things['digest']}"
    page = client.get(digest_path)
    assert "Send now" in page.text
    sent = client.post(f"{digest_path}/send", data={"csrf_token": token})
    assert sent.status_code == 302
    [copy] = smtp.wait_for(1)
    assert copy["To"] == "reader0@example.org"
    assert copy["Subject"] == "Week one"


def test_an_owner_invites_an_editor_who_joins_by_the_emailed_link(
    make_app, app, admin_client, smtp, worker
):
    page = admin_client.get("/admin/admins")
    assert "Admins" in page.text.split("</nav>")[0]
    invited = admin_client.post(
        "/admin/admins",
        data={"csrf_token": csrf_token(page), "email": "New.Editor@Example.org", "role": "editor"},
        follow_redirects=True,
    )
    assert "An invitation is on its way to new.editor@example.org" in invited.text

    [invitation] = smtp.wait_for(1)
    assert invitation["To"] == "new.editor@example.org"
    assert "as a editor" not in text_of(invitation)
    assert f"{ADMIN[0]} invites you" in text_of(invitation)
    link = link_in(invitation)
    assert link.startswith("/admin/invitation/")
    # Made for another purpose (or another key), a token is no invitation.
    assert app.test_client().get(link + "x").status_code == 404
    # Past ADMIN_INVITATION_MAX_AGE (here: at once) the link no longer works.
    expired = make_app(ADMIN_INVITATION_MAX_AGE=-1).test_client()
    assert expired.get(link).status_code == 404

    invitee = app.test_client()
    form = invitee.get(link)
    assert "invited <strong>new.editor@example.org</strong> as editor" in form.text
    short = invitee.post(link, data={"csrf_token": csrf_token(form), "password": "short"})
    assert short.status_code == 400
    joined = invitee.post(
        link, data={"csrf_token": csrf_token(form), "password": "a new long password"}
    )
    assert joined.status_code == 302
    assert invitee.get("/admin/digests/new").status_code == 200
    assert invitee.get("/admin/subscribers.csv").status_code == 403

    # The link works once.
    again = app.test_client()
    assert again.get(link).status_code == 404
    assert "used already" in again.get(link).text
    assert log_in(again, "new.editor@example.org", "a new long password").status_code == 302
    with app.app_context():
        assert (
            db.session.scalar(select(Admin.role).where(Admin.email == "new.editor@example.org"))
            == "editor"
        )


def test_an_invitation_to_an_admin_or_with_no_role_is_refused(admin_client):
    token = csrf_token(admin_client.get("/admin/admins"))
    existing = admin_client.post(
        "/admin/admins", data={"csrf_token": token, "email": ADMIN[0], "role": "viewer"}
    )
    assert existing.status_code == 400
    assert "is an admin already" in existing.text
    no_role = admin_client.post(
        "/admin/admins", data={"csrf_token": token, "email": "x@example.org", "role": "god"}
    )
    assert no_role.status_code == 400


def test_owners_change_roles_and_remove_admins_but_never_the_last_owner(app, admin_client, runner):
    add_admin(runner, *VIEWER, "viewer")
    with app.app_context():
        ids = dict(db.session.execute(select(Admin.email, Admin.id)).all())
    owner, viewer = ids[ADMIN[0]], ids[VIEWER[0]]
    token = csrf_token(admin_client.get("/admin/admins"))

    def post(path, **data):
        return admin_client.post(path, data={"csrf_token": token, **data}, follow_redirects=True)

    alone = post(f"/admin/admins/{owner}/role", role="editor")
    assert f"{ADMIN[0]} is the last owner" in alone.text
    assert "is the last owner" in post(f"/admin/admins/{owner}/remove").text

    viewer_client = app.test_client()
    log_in(viewer_client, *VIEWER)
    assert viewer_client.get("/admin/admins").status_code == 403
    assert f"{VIEWER[0]} is now owner" in post(f"/admin/admins/{viewer}/role", role="owner").text
    # The new role counts from their next page, in the session they have.
    assert viewer_client.get("/admin/admins").status_code == 200

    # Now the other owner may step down, and lands on a page an editor may see.
    demoted = post(f"/admin/admins/{owner}/role", role="editor")
    assert f"{ADMIN[0]} is now editor" in demoted.text
    assert admin_client.get("/admin/admins").status_code == 403
    removed = viewer_client.post(
        f"/admin/admins/{owner}/remove",
        data={"csrf_token": csrf_token(viewer_client.get("/admin/admins"))},
        follow_redirects=True,
    )
    assert f"{ADMIN[0]} is no longer an admin" in removed.text
    assert admin_client.get("/admin/").status_code == 302
    with app.app_context():
        assert db.session.execute(select(Admin.email, Admin.role)).all() == [(VIEWER[0], "owner")]


def test_create_admin_takes_a_role_and_makes_owners_by_default(app, runner):
    add_admin(runner, "first@example.org", "a long password", "owner")
    made = runner.invoke(
        args=["create-admin", "second@example.org", "--password", "a long password"]
    )
    assert "second@example.org (owner) can log in" in made.output
    wrong = runner.invoke(
        args=["create-admin", "x@example.org", "--password", "a long password", "--role", "boss"]
    )
    assert wrong.exit_code == 2
    assert "'boss' is not one of 'owner', 'editor', 'viewer'" in wrong.output
    add_admin(runner, "second@example.org", "a long password", "viewer")
    last = runner.invoke(
        args=[
            "create-admin",
            "first@example.org",
            "--password",
            "a long password",
            "--role",
            "editor",
        ]
    )
    assert last.exit_code == 1
    assert "first@example.org is the last owner" in last.output
    # A new password alone keeps the role.
    runner.invoke(args=["create-admin", "second@example.org", "--password", "another long one"])
    with app.app_context():
        roles = dict(db.session.execute(select(Admin.email, Admin.role)).all())
    assert roles == {"first@example.org": "owner", "second@example.org": "viewer"}


def test_an_invitation_the_broker_or_the_relay_lost_is_sent_by_the_sweep(
    make_app, smtp, start_worker_for, caplog
):
    # Broker and relay both down; the apps share the database and the SMTP server.
    offline = make_app(CELERY_BROKER_URL="redis://127.0.0.1:1/0", MAIL_PORT=free_port())
    add_admin(offline.test_cli_runner(), *ADMIN, "owner")
    client = offline.test_client()
    log_in(client)
    invited = client.post(
        "/admin/admins",
        data={
            "csrf_token": csrf_token(client.get("/admin/admins")),
            "email": "later@example.org",
            "role": "viewer",
        },
        follow_redirects=True,
    )
    assert "An invitation is on its way to later@example.org" in invited.text
    with offline.app_context(), caplog.at_level(logging.WARNING):
        invitation_id = db.session.scalar(select(AdminInvitation.id))
        assert accounts.send_invitation(invitation_id) is False
        # Just made, it is its own task's to send; a while later, the sweep's.
        assert accounts.unsent_invitation_ids() == []
        db.session.execute(
            update(AdminInvitation).values(created_at=utcnow() - timedelta(minutes=5))
        )
        db.session.commit()
    assert "invitation 1 to later@example.org not sent" in caplog.records[-1].getMessage()

    online = make_app()
    start_worker_for(online)
    online.extensions["celery"].send_task(task_names.SWEEP)
    [invitation] = smtp.wait_for(1)
    assert invitation["To"] == "later@example.org"
    assert link_in(invitation).startswith("/admin/invitation/")
