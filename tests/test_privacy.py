"""A reader's rights over their data: a copy of it, and its erasure, which no sign-up
or import undoes."""

import io
import time

from sqlalchemy import func, select

from newsletter import settings
from newsletter.extensions import db
from newsletter.models import Delivery, EmailJob, Subscriber, SuppressedAddress
from newsletter.tokens import PREFERENCES, make_token
from tests.helpers import csrf_token, wait_until_sent
from tests.smtp import link_in


def preferences_path(app, email):
    with app.app_context():
        reader = db.session.scalar(select(Subscriber).where(Subscriber.email == email))
        return f"/preferences/{make_token(PREFERENCES, reader)}"


def rows(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def sign_up_and_get_a_digest(app, client, runner, smtp):
    with app.app_context():
        settings.update(welcome_enabled=False)
    client.post("/subscribe", data={"email": "ann@example.org", "name": "Ann"})
    client.post(link_in(smtp.wait_for(1)[0]))
    runner.invoke(args=["import-feed", "tests/data/feed.rss"])
    digest_id = int(runner.invoke(args=["send-digest", "--subject", "Week 48"]).output)
    wait_until_sent(app, digest_id)


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
    time.sleep(0.5)
    with app.app_context():
        assert db.session.scalars(select(Subscriber.email)).all() == ["bob@example.org"]
    assert len(smtp.messages_to("ann@example.org")) == 2


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
