"""The audit log: what it records of an actor, how long it keeps it, and how an owner reads it."""

import csv
import io
import re
from datetime import timedelta

from sqlalchemy import select

from harness import csrf_token
from newsletter.admins import audit
from newsletter.admins.models import AuditEntry
from newsletter.core.models import utcnow
from newsletter.extensions import db
from tests.helpers import ADMIN


def test_a_command_is_recorded_as_its_operator_and_old_entries_go(app):
    with app.app_context():
        audit.record("subscribers.export", detail="all")
        old = audit.record("subscribers.erase", target="old@example.org")
        old.at = utcnow() - timedelta(days=400)
        recent_with_ip = audit.record("digests.send", target="digest 1")
        recent_with_ip.at = utcnow() - timedelta(days=100)
        recent_with_ip.ip = "192.0.2.7"
        db.session.commit()

        assert audit.drop_old() == (1, 1)

        entries = db.session.execute(
            select(AuditEntry.actor_kind, AuditEntry.action, AuditEntry.ip).order_by(AuditEntry.id)
        ).all()
        assert entries == [
            ("command", "subscribers.export", None),
            ("command", "digests.send", None),
        ]
        assert audit.as_csv().splitlines()[0] == "at,actor_kind,actor,action,target,detail,ip"


def test_an_owner_reads_who_did_what_on_the_audit_page_and_in_its_csv(
    app, admin_client, runner, tmp_path
):
    subscribers = tmp_path / "readers.csv"
    subscribers.write_text("email\nnew@example.org\n")
    runner.invoke(args=["import-subscribers", str(subscribers)])
    runner.invoke(args=["create-newsletter", "weekly", "--name", "Weekly"])
    assert admin_client.get("/admin/subscribers.csv").status_code == 200
    token = csrf_token(admin_client.get("/admin/settings"))
    saved = admin_client.post(
        "/admin/settings",
        data={"csrf_token": token, "welcome_subject": "Hi", "send_rate_limit": "0"},
    )
    assert saved.status_code == 302
    admin_client.post("/admin/email-templates/digest/reset", data={"csrf_token": token})
    admin_client.post(
        "/admin/blocked-domains", data={"csrf_token": token, "domains": "spam.example"}
    )

    page = admin_client.get("/admin/audit")
    assert 'href="/admin/audit"' in page.text.split("</nav>")[0]
    rows = page.text.split("<tr>")[2:]
    assert [re.search(r"<code>([a-z_.]+)</code>", row)[1] for row in rows] == [
        "blocked_domains.update",
        "templates.reset",
        "settings.update",
        "subscribers.export",
        "newsletters.create",
        "subscribers.import",
        "admins.login",
        "admins.create",
    ]
    assert f'{ADMIN[0]} <span class="note">(admin)</span>' in rows[0]
    assert "127.0.0.1" in rows[0]
    assert "spam.example" in rows[0]
    assert "(command)" in rows[-1]

    exports = admin_client.get("/admin/audit?action=subscribers.export").text
    assert exports.count("<code>") == 1
    assert "<code>subscribers.export</code>" in exports

    download = admin_client.get("/admin/audit.csv")
    assert download.headers["Content-Disposition"] == "attachment; filename=audit.csv"
    lines = list(csv.DictReader(io.StringIO(download.text)))
    assert [(line["actor_kind"], line["action"]) for line in lines][:4] == [
        ("command", "admins.create"),
        ("admin", "admins.login"),
        ("command", "subscribers.import"),
        ("command", "newsletters.create"),
    ]
    assert lines[2]["detail"] == "added 1, skipped 0, rejected 0, confirmed: no"
    assert lines[-1]["actor"] == ADMIN[0]
    assert lines[-1]["ip"] == "127.0.0.1"


def test_the_audit_page_goes_back_a_page_at_a_time(app, admin_client):
    with app.app_context():
        for n in range(audit.PAGE_SIZE + 5):
            audit.record("digests.send", target=f"digest {n}")

    first = admin_client.get("/admin/audit?action=digests.send").text
    assert first.count("<code>digests.send</code>") == audit.PAGE_SIZE
    assert "digest 54<" in first
    older = re.search(r'href="(/admin/audit\?[^"]+)" rel="next"', first)[1].replace("&amp;", "&")
    rest = admin_client.get(older).text
    assert rest.count("<code>digests.send</code>") == 5
    assert "digest 4<" in rest
    assert "digest 5<" not in rest
    assert 'rel="next"' not in rest
