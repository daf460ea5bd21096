"""A new subscriber is welcomed with the latest posts; a newsletter may send a weekly digest."""

import re
from datetime import datetime
from pathlib import Path

from harness import csrf_token
from newsletter.content import digests, newsletters
from newsletter.content.models import Digest, DigestStatus
from newsletter.core import settings
from newsletter.extensions import db
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
    }
    assert "Newsletters</a>" in admin.get("/admin/settings").text
    refused = admin.post("/admin/settings", data={**form, "send_rate_limit": "-5"})
    assert refused.status_code == 400
    assert b"Number must be between 0 and 100000" in refused.data
    admin.post("/admin/settings", data={**form, "welcome_enabled": "y"})
    subscriber = app.test_client()
    subscriber.post("/subscribe", data={"email": "a@example.org"})
    subscriber.post(link_in(smtp.wait_for(1)[0]))
    assert smtp.wait_for(2)[1]["Subject"] == "Hello!"

    admin.post("/admin/settings", data={**form, "send_rate_limit": "500"})
    subscriber.post("/subscribe", data={"email": "b@example.org"})
    subscriber.post(link_in(smtp.wait_for(3)[2]))
    with app.app_context():
        assert settings.current().welcome_enabled is False
        assert settings.current().send_rate_limit == 500


def test_the_weekly_digest_goes_out_once_on_its_day_and_hour(app, runner):
    runner.invoke(args=["import-feed", FEED])
    wednesday_early, wednesday_nine = datetime(2026, 12, 2, 7), datetime(2026, 12, 2, 9, 5)
    with app.app_context():
        assert digests.run_periodic(wednesday_nine) == []
        newsletters.set_schedule(newsletters.first(), "weekly", weekday=2, hour=9)
        assert digests.run_periodic(wednesday_early) == []
        assert digests.run_periodic(datetime(2026, 12, 3, 10)) == []
        [digest_id] = digests.run_periodic(wednesday_nine)
        assert digests.run_periodic(datetime(2026, 12, 2, 11)) == []
        digest = db.session.get(Digest, digest_id)
        assert digest.status == DigestStatus.SCHEDULED
        assert digest.subject == "The Newsletter: 02 December 2026"
        assert len(digest.posts) == 2
        digests.start_sending(digest_id)
        assert digests.run_periodic(datetime(2026, 12, 9, 9)) == []
