"""A subscriber's rights over their data: a copy of it, and its erasure, which no sign-up
or import undoes."""

import io
import re
from datetime import timedelta

from sqlalchemy import func, select

from harness import csrf_token
from newsletter.core.models import SuppressedAddress, utcnow
from newsletter.core.tokens import PREFERENCES, UNSUBSCRIBE, make_token
from newsletter.extensions import db
from newsletter.sending.models import Delivery, EmailJob
from newsletter.subscribers import privacy
from newsletter.subscribers.models import ConsentEvent, Subscriber
from tests.helpers import (
    add_subscribers,
    after_one_more_email,
    sign_up_and_get_a_digest,
)
from tests.smtp import code_in, link_in, text_of


def preferences_path(app, email):
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber).where(Subscriber.email == email))
        return f"/preferences/{make_token(PREFERENCES, subscriber)}"


def rows(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_a_reader_downloads_everything_kept_about_them(app, client, runner, smtp, worker):
    sign_up_and_get_a_digest(app, client, runner, smtp)
    answer = client.get(preferences_path(app, "ann@example.org") + "/data")
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    data = answer.json
    assert (data["email"], data["name"], data["status"]) == ("ann@example.org", "Ann", "confirmed")
    assert data["consent"]["signup_source"] == "form"
    assert data["consent"]["signup_ip"] == data["consent"]["confirm_ip"] == "127.0.0.1"
    assert data["consent"]["confirmed_at"].endswith("Z")
    assert [(e["kind"], e["status"]) for e in data["emails"]] == [("confirmation", "sent")]
    assert [(d["subject"], d["status"]) for d in data["digests"]] == [("Week 48", "sent")]
    [newsletter] = data["newsletters"]
    assert (newsletter["slug"], newsletter["name"], newsletter["active"]) == (
        "newsletter",
        "The Newsletter",
        True,
    )
    assert newsletter["changed_at"].endswith("Z")


def test_a_preferences_link_from_an_unsubscribe_link_cannot_download_or_erase(
    app, client, runner, smtp, worker
):
    """Ann forwards a digest; whoever gets it follows its unsubscribe link (which never
    expires) to the preferences page. Ann's own choices work there; her data does not."""
    sign_up_and_get_a_digest(app, client, runner, smtp)
    digest = smtp.received[-1]
    paths = re.findall(r"http://127\.0\.0\.1:5000(/\S+)", text_of(digest))
    [unsubscribe] = [path for path in paths if path.startswith("/unsubscribe/")]
    [emailed] = [path for path in paths if path.startswith("/preferences/")]
    stranger = app.test_client()
    left = stranger.post(unsubscribe)
    minted = re.search(r'href="(/preferences/[^"]+)"', left.text)[1]

    page = stranger.get(minted)
    assert page.status_code == 200
    assert "Subscribe again" in page.text
    assert "Delete my data" not in page.text
    assert "needs the preferences link from one of our emails" in page.text
    for refused in (stranger.get(f"{minted}/data"), stranger.post(f"{minted}/erase", data=YES)):
        assert refused.status_code == 403
        assert "This link cannot open your data" in refused.text
        assert "ann@example.org" not in refused.text
    assert rows(app, Subscriber) == 1

    # The link that came by email opens both.
    assert "Delete my data" in client.get(emailed).text
    assert client.get(f"{emailed}/data").json["email"] == "ann@example.org"


YES = {"confirm": "yes"}


def test_the_download_lists_each_newsletter_the_reader_chose_on_or_off(app, client, runner):
    runner.invoke(args=["create-newsletter", "breaking", "--name", "Breaking news"])
    runner.invoke(args=["create-newsletter", "sport", "--name", "Sport", "--not-default"])
    add_subscribers(app, 1)
    path = preferences_path(app, "reader0@example.org")
    client.post(
        path,
        data={"name": "", "action": "save", "newsletters_shown": "1", "newsletters": ["breaking"]},
    )
    chosen = client.get(f"{path}/data").json["newsletters"]
    assert [(item["slug"], item["name"], item["active"]) for item in chosen] == [
        ("newsletter", "The Newsletter", False),
        ("breaking", "Breaking news", True),
    ]
    assert all(item["changed_at"].endswith("Z") for item in chosen)


def test_delete_my_data_erases_the_reader_and_nothing_adds_the_address_again(
    app, client, runner, smtp, worker, tmp_path
):
    sign_up_and_get_a_digest(app, client, runner, smtp)
    path = preferences_path(app, "ann@example.org")
    assert b"Delete my data" in client.get(path).data

    unticked = client.post(path + "/erase")
    assert unticked.status_code == 400
    assert b"cannot be undone" in unticked.data
    assert rows(app, Subscriber) == 1

    erased = client.post(path + "/erase", data={"confirm": "yes"})
    assert erased.status_code == 200
    assert b"Your data is deleted" in erased.data
    assert (rows(app, Subscriber), rows(app, EmailJob), rows(app, Delivery)) == (0, 0, 0)
    with app.app_context():
        [kept] = db.session.scalars(select(SuppressedAddress.address_hash)).all()
    assert "ann" not in kept
    assert client.get(path).status_code == 404

    again = client.post("/subscribe", data={"email": "Ann@Example.org"})
    assert b"Now check your email" in again.data
    assert client.post("/api/subscribe", json={"email": "ann@example.org"}).status_code == 202
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("email\nann@example.org\nbob@example.org\n")
    imported = runner.invoke(args=["import-subscribers", str(csv_file)])
    assert "added 1, skipped 1" in imported.output
    with app.app_context():
        assert db.session.scalars(select(Subscriber.email)).all() == ["bob@example.org"]
    received = after_one_more_email(app, smtp)
    assert len([m for m in received if "ann@example.org" in m["To"]]) == 2


def test_an_admin_erases_a_subscriber_at_their_request(app, admin_client):
    with app.app_context():
        db.session.add(Subscriber(email="caller@example.org", signup_source="test"))
        db.session.commit()
        subscriber_id = db.session.scalar(select(Subscriber.id))
    listing = admin_client.get("/admin/subscribers")
    assert b"Erase caller@example.org" in listing.data
    forged = admin_client.post(f"/admin/subscribers/{subscriber_id}/erase")
    assert forged.status_code == 400
    assert rows(app, Subscriber) == 1

    token = csrf_token(listing)
    erased = admin_client.post(
        f"/admin/subscribers/{subscriber_id}/erase", data={"csrf_token": token}
    )
    assert erased.status_code == 302
    assert rows(app, Subscriber) == 0
    assert b"Erased caller@example.org" in admin_client.get("/admin/subscribers").data
    upload = (io.BytesIO(b"email\ncaller@example.org\n"), "l.csv")
    page = admin_client.post(
        "/admin/subscribers/import",
        data={"csrf_token": token, "file": upload},
        content_type="multipart/form-data",
    )
    assert "Added 0, skipped 1" in page.get_data(as_text=True)
    assert (
        admin_client.post("/admin/subscribers/9999/erase", data={"csrf_token": token}).status_code
        == 404
    )


def test_the_consent_log_keeps_every_step_and_an_erasure_leaves_no_one_in_it(
    app, client, smtp, worker, without_welcome_email
):
    client.post("/subscribe", data={"email": "log@example.org"})
    code = code_in(smtp.wait_for(1)[0])
    client.post("/confirm-code", data={"email": "log@example.org", "code": code})
    path = preferences_path(app, "log@example.org")
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber))
        client.post(f"/unsubscribe/{make_token(UNSUBSCRIBE, subscriber)}")
    client.post(path, data={"name": "", "action": "resubscribe"})
    client.post(link_in(smtp.wait_for(2)[1]))

    log = client.get(path + "/data").json["consent_log"]
    assert [(event["kind"], event["source"]) for event in log] == [
        ("signup", "form"),
        ("confirm", "code"),
        ("unsubscribe", "link"),
        ("signup", "preferences"),
        ("confirm", "link"),
    ]
    assert {event["ip"] for event in log} == {"127.0.0.1"}

    client.post(path + "/erase", data={"confirm": "yes"})
    with app.app_context():
        left = db.session.execute(
            select(ConsentEvent.subscriber_id, ConsentEvent.kind, ConsentEvent.source)
        ).all()
    assert left == [(None, "erasure", "reader")]


def test_ips_older_than_the_retention_are_dropped(make_app):
    app = make_app(IP_RETENTION_DAYS=90)
    long_ago = utcnow() - timedelta(days=91)
    with app.app_context():
        old = Subscriber(email="old@example.org", signup_source="form", signup_ip="192.0.2.1")
        old.signup_at = old.confirmed_at = long_ago
        old.confirm_ip = "192.0.2.2"
        new = Subscriber(email="new@example.org", signup_source="form", signup_ip="192.0.2.3")
        db.session.add_all([old, new])
        db.session.flush()
        db.session.add_all(
            [
                ConsentEvent(
                    subscriber_id=old.id, kind="signup", source="form", ip="192.0.2.1", at=long_ago
                ),
                ConsentEvent(subscriber_id=new.id, kind="signup", source="form", ip="192.0.2.3"),
            ]
        )
        db.session.commit()
        assert privacy.drop_old_ips() == 3
        ips = db.session.execute(
            select(Subscriber.email, Subscriber.signup_ip, Subscriber.confirm_ip)
        ).all()
        assert sorted(ips) == [
            ("new@example.org", "192.0.2.3", None),
            ("old@example.org", None, None),
        ]
        events = db.session.scalars(select(ConsentEvent.ip).order_by(ConsentEvent.id)).all()
        assert events == [None, "192.0.2.3"]


def test_an_import_logs_where_the_consent_came_from(app, runner, tmp_path):
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("email\nimported@example.org\n")
    runner.invoke(args=["import-subscribers", str(csv_file), "--confirmed"])
    with app.app_context():
        logged = db.session.execute(select(ConsentEvent.kind, ConsentEvent.source)).all()
    assert sorted(logged) == [("confirm", "import"), ("signup", "import")]
