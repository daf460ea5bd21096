"""A new reader is welcomed with the latest posts; admins may send a weekly digest."""

import re
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from newsletter import digests, settings
from newsletter.extensions import db
from newsletter.models import Digest, DigestStatus
from tests.helpers import csrf_token
from tests.smtp import html_of, link_in, text_of

FEED = str(Path(__file__).parent / "data" / "feed.rss")


def test_a_reader_who_confirms_gets_a_welcome_with_the_latest_posts(
    app, client, runner, smtp, worker
):
    runner.invoke(args=["import-feed", FEED])
    client.post("/subscribe", data={"email": "new@example.org"})
    confirmation = smtp.wait_for(1)[0]
    client.post(link_in(confirmation))
    welcome = smtp.wait_for(2)[1]
    assert welcome["Subject"] == "Welcome aboard"
    assert welcome["To"] == "new@example.org"
    assert "Council approves new bridge" in text_of(welcome)
    assert "Thank you for subscribing" in html_of(welcome)
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.match(r"<http://127\.0\.0\.1:5000/unsubscribe/\S+>$", welcome["List-Unsubscribe"])
    # The welcome is no newsletter's: its link leaves everything.
    unsubscribe = client.get(welcome["List-Unsubscribe"][len("<http://127.0.0.1:5000") : -1])
    assert '<button type="submit">Unsubscribe</button>' in unsubscribe.text
    assert "everything" not in unsubscribe.text

    client.post(link_in(confirmation))
    assert len(smtp.received) == 2


def test_admins_edit_or_turn_off_the_welcome_email(app, admin_client, smtp, worker):
    admin = admin_client
    token = csrf_token(admin.get("/admin/settings"))
    form = {
        "csrf_token": token,
        "welcome_subject": "Hello!",
        "welcome_intro": "Hi there.",
        "periodic_weekday": "2",
        "periodic_hour": "9",
    }
    assert admin.post("/admin/settings", data={**form, "periodic_hour": "25"}).status_code == 400
    refused = admin.post("/admin/settings", data={**form, "send_rate_limit": "-5"})
    assert refused.status_code == 400
    assert b"Number must be between 0 and 100000" in refused.data
    admin.post("/admin/settings", data={**form, "welcome_enabled": "y"})
    reader = app.test_client()
    reader.post("/subscribe", data={"email": "a@example.org"})
    reader.post(link_in(smtp.wait_for(1)[0]))
    assert smtp.wait_for(2)[1]["Subject"] == "Hello!"

    admin.post("/admin/settings", data={**form, "send_rate_limit": "500"})
    reader.post("/subscribe", data={"email": "b@example.org"})
    reader.post(link_in(smtp.wait_for(3)[2]))
    with app.app_context():
        assert settings.current().welcome_enabled is False
        assert (settings.current().periodic_weekday, settings.current().periodic_hour) == (2, 9)
        assert settings.current().send_rate_limit == 500


def test_the_weekly_digest_goes_out_once_on_its_day_and_hour(app, runner):
    runner.invoke(args=["import-feed", FEED])
    wednesday_early, wednesday_nine = datetime(2026, 12, 2, 7), datetime(2026, 12, 2, 9, 5)
    with app.app_context():
        assert digests.run_periodic(wednesday_nine) is None
        settings.update(periodic_enabled=True, periodic_weekday=2, periodic_hour=9)
        assert digests.run_periodic(wednesday_early) is None
        assert digests.run_periodic(datetime(2026, 12, 3, 10)) is None
        digest_id = digests.run_periodic(wednesday_nine)
        assert digest_id is not None
        assert digests.run_periodic(datetime(2026, 12, 2, 11)) is None
        digest = db.session.get(Digest, digest_id)
        assert digest.status == DigestStatus.SCHEDULED
        assert len(digest.posts) == 2
        db.session.execute(select(Digest)).all()
        digests.start_sending(digest_id)
        assert digests.run_periodic(datetime(2026, 12, 9, 9)) is None
