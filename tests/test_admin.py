"""Admins log in and manage subscribers: list, search, import, export."""

import io
import logging
import re

import pytest
from sqlalchemy import func, select

from harness import csrf_token
from newsletter.admins.models import AuditEntry
from newsletter.content import digests
from newsletter.content.models import Newsletter, Post, Subscription
from newsletter.extensions import db
from newsletter.subscribers.models import ConsentEvent, Subscriber, SubscriberStatus
from tests.helpers import ADMIN, add_subscribers, copy_of_session, log_in, wait_until
from workers.tasks import sweep


def add(app, *subscribers):
    with app.app_context():
        for email, status, name in subscribers:
            db.session.add(
                Subscriber(
                    email=email,
                    status=status,
                    name=name,
                    signup_source="test",
                    subscriptions=[Subscription(newsletter_id=1)],
                )
            )
        db.session.commit()


def test_create_admin_explains_what_is_wrong(runner):
    short = runner.invoke(args=["create-admin", "a@example.org", "--password", "short"])
    assert short.exit_code != 0
    assert "at least 10 characters" in short.output
    bad = runner.invoke(args=["create-admin", "nope", "--password", "long enough pw"])
    assert bad.exit_code != 0
    assert "not valid" in bad.output


def test_create_admin_prompts_for_the_password(runner):
    result = runner.invoke(args=["create-admin", "b@example.org"], input="a long password\n" * 2)
    assert result.exit_code == 0, result.output


def test_the_admin_area_needs_a_login(client, admin):
    for path in ("/admin/", "/admin/subscribers", "/admin/subscribers.csv"):
        answer = client.get(path)
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/admin/login")


def test_every_admin_page_but_the_login_and_an_invitation_needs_a_login(app, client):
    """Walks every route of the admin area, as a visitor, by each of its methods."""
    token = csrf_token(client.get("/admin/login"))
    open_to_visitors = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin/"):
            continue
        # Each part of the path filled in with a value it takes: an item of any(…), or 1.
        path = re.sub(r"<any\(([^,)]+)[^>]*>", r"\1", rule.rule)
        path = re.sub(r"<[^>]+>", "1", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            answer = client.open(path, method=method, data={"csrf_token": token})
            # Sent to log in, and back here after.
            if answer.headers.get("Location", "").startswith("/admin/login?next="):
                assert answer.status_code == 302
            else:
                open_to_visitors.add(rule.endpoint)
    assert open_to_visitors == {"admin.login", "admin.login_two_factor", "admin.accept_invitation"}


def test_an_admin_logs_in_sees_the_counts_and_logs_out(app, client, admin):
    add(app, ("a@example.org", "confirmed", ""), ("b@example.org", "pending", ""))
    wrong = log_in(client, password="wrong password")
    assert wrong.status_code == 401
    assert b"Wrong email or password" in wrong.data
    assert log_in(client, email="nobody@example.org").status_code == 401

    answer = log_in(client)
    assert answer.headers["Location"] == "/admin/"
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert re.search(r"confirmed</a></th><td>1<", dashboard)
    assert re.search(r"pending</a></th><td>1<", dashboard)

    token = csrf_token(client.get("/admin/"))
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/admin/").status_code == 302


def test_admin_forms_refuse_a_post_without_csrf_token(client, admin):
    answer = client.post("/admin/login", data={"email": ADMIN[0], "password": ADMIN[1]})
    assert answer.status_code == 400
    assert b"CSRF" in answer.data


def test_login_only_follows_next_within_the_admin_area(client, admin):
    token = csrf_token(client.get("/admin/login"))
    data = {"email": ADMIN[0], "password": ADMIN[1], "csrf_token": token}
    evil = client.post("/admin/login?next=https://evil.example/", data=data)
    assert evil.headers["Location"] == "/admin/"


def test_repeated_failed_logins_are_slowed_down(make_app, runner):
    app = make_app(RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="3/minute")
    client = app.test_client()
    answers = [log_in(client, password=f"guess {n}").status_code for n in range(4)]
    assert answers == [401, 401, 401, 429]
    assert b"Too Many Requests" in log_in(client).data


def test_signups_from_one_address_are_rate_limited(make_app):
    client = make_app(RATELIMIT_ENABLED=True, SIGNUP_RATE_LIMIT="2/minute").test_client()
    for n in range(2):
        assert client.post("/api/subscribe", json={"email": f"r{n}@example.org"}).status_code == 202
    limited = client.post("/api/subscribe", json={"email": "r3@example.org"})
    assert limited.status_code == 429
    assert "error" in limited.json
    assert client.post("/subscribe", data={"email": "r4@example.org"}).status_code == 429


def test_subscribers_are_searched_filtered_and_paged(app, admin_client):
    add(app, *[(f"reader{n:03}@example.org", "confirmed", f"Reader {n}") for n in range(60)])
    add(app, ("ann@example.org", "pending", "Ann Smith"), ("bob@other.org", "unsubscribed", ""))

    first = admin_client.get("/admin/subscribers").get_data(as_text=True)
    assert "62 found" in first
    assert "bob@other.org" in first
    assert "reader000@" not in first
    older = re.search(r'href="([^"]+)" rel="next">Older', first)[1].replace("&amp;", "&")
    assert "reader000@" in admin_client.get(older).get_data(as_text=True)

    by_name = admin_client.get("/admin/subscribers?q=smith").get_data(as_text=True)
    assert "1 found" in by_name
    assert "ann@example.org" in by_name
    by_status = admin_client.get("/admin/subscribers?status=unsubscribed").get_data(as_text=True)
    assert "1 found" in by_status
    assert "bob@other.org" in by_status
    assert "confirmed (60)" in by_status
    assert admin_client.get("/admin/subscribers?status=bogus&after=x").status_code == 200


def test_admins_see_each_readers_newsletters_and_list_one_newsletters_readers(
    app, admin_client, runner
):
    assert 'name="newsletter"' not in admin_client.get("/admin/subscribers").text
    runner.invoke(args=["create-newsletter", "breaking", "--name", "Breaking news"])
    with app.app_context():
        breaking = db.session.scalar(select(Newsletter.id).where(Newsletter.slug == "breaking"))
    add_subscribers(app, 2, prefix="weekly")
    add_subscribers(app, 1, prefix="urgent", newsletter_id=breaking)
    with app.app_context():
        urgent = db.session.scalar(
            select(Subscriber).where(Subscriber.email == "urgent0@example.org")
        )
        urgent.subscriptions.append(Subscription(newsletter_id=1, active=False))
        db.session.commit()
        urgent_id = urgent.id

    page = admin_client.get(f"/admin/subscribers/{urgent_id}").text
    rows = re.findall(r"<tr><td>([^<]+) <span[^>]*>\((\w+)\)</span></td><td>(on|off)</td>", page)
    assert rows == [("The Newsletter", "newsletter", "off"), ("Breaking news", "breaking", "on")]

    listed = admin_client.get("/admin/subscribers?newsletter=breaking").text
    assert '<option value="breaking" selected>Breaking news</option>' in listed
    assert "1 found" in listed
    assert "urgent0@example.org" in listed
    assert "weekly0@example.org" not in listed
    weekly = admin_client.get("/admin/subscribers?newsletter=newsletter&status=confirmed").text
    assert "2 found" in weekly
    assert "urgent0@example.org" not in weekly
    assert "3 found" in admin_client.get("/admin/subscribers?newsletter=nope").text


def test_subscribers_export_as_csv(app, admin_client):
    add(app, ("a@example.org", "confirmed", '=HYPERLINK("x")'), ("b@example.org", "pending", ""))
    answer = admin_client.get("/admin/subscribers.csv")
    assert answer.mimetype == "text/csv"
    lines = answer.get_data(as_text=True).splitlines()
    assert lines[0].startswith("email,name,status,signup_at")
    assert lines[1].startswith('a@example.org,"\'=HYPERLINK(""x"")",confirmed,')
    assert lines[2].startswith("b@example.org,,pending,")


def write_csv(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_import_command_adds_skips_and_reports_bad_lines(app, runner, tmp_path):
    add(app, ("known@example.org", "unsubscribed", "Kept"))
    csv_file = write_csv(
        tmp_path / "readers.csv",
        "Name,Email\n"
        "Ann,ann@example.org\n"
        "Known,KNOWN@example.org\n"
        "Nobody,not-an-address\n"
        "Ann again,Ann@Example.org\n"
        "Bob,bob@example.org\n",
    )
    result = runner.invoke(args=["import-subscribers", csv_file, "--confirmed"])
    assert result.exit_code == 0, result.output
    assert "added 2, skipped 2, rejected 1" in result.output
    assert "line 4: That email address is not valid" in result.output
    with app.app_context():
        people = {s.email: s for s in db.session.scalars(select(Subscriber))}
    assert people["ann@example.org"].status == SubscriberStatus.CONFIRMED
    assert people["ann@example.org"].signup_source == "import"
    assert people["ann@example.org"].confirmed_at is not None
    assert (people["known@example.org"].status, people["known@example.org"].name) == (
        "unsubscribed",
        "Kept",
    )


def test_import_command_refuses_a_file_without_an_email_column(runner, tmp_path):
    result = runner.invoke(args=["import-subscribers", write_csv(tmp_path / "x.csv", "a,b\n1,2\n")])
    assert result.exit_code != 0
    assert "'email' column" in result.output


def test_import_in_batches_larger_than_one(app, runner, tmp_path):
    rows = "".join(f"r{n}@example.org\n" for n in range(2500))
    result = runner.invoke(
        args=["import-subscribers", write_csv(tmp_path / "m.csv", "email\n" + rows)]
    )
    assert "added 2500, skipped 0, rejected 0" in result.output
    again = runner.invoke(
        args=["import-subscribers", write_csv(tmp_path / "m.csv", "email\n" + rows)]
    )
    assert "added 0, skipped 2500, rejected 0" in again.output


def test_import_by_upload_shows_the_report(app, admin_client):
    token = csrf_token(admin_client.get("/admin/subscribers/import"))
    upload = (io.BytesIO(b"email\nup@example.org\nbad\n"), "list.csv")
    page = admin_client.post(
        "/admin/subscribers/import",
        data={"csrf_token": token, "file": upload},
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert "Added 1, skipped 0 already known, rejected 1" in page
    assert "<td>3</td>" in page

    broken = admin_client.post(
        "/admin/subscribers/import",
        data={"csrf_token": token, "file": (io.BytesIO(b"\xff\xfe\x00junk"), "bad.csv")},
        content_type="multipart/form-data",
    )
    assert broken.status_code == 400
    assert b"not UTF-8" in broken.data or b"&#39;email&#39; column" in broken.data
    nothing = admin_client.post("/admin/subscribers/import", data={"csrf_token": token})
    assert nothing.status_code == 400


def test_a_file_that_breaks_after_its_first_batches_imports_nothing(app, admin_client):
    token = csrf_token(admin_client.get("/admin/subscribers/import"))
    rows = "".join(f"reader{n}@example.org\n" for n in range(2500)).encode()
    upload = (io.BytesIO(b"email\n" + rows + b"broken\xff@example.org\n"), "list.csv")
    refused = admin_client.post(
        "/admin/subscribers/import",
        data={"csrf_token": token, "file": upload},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 400
    assert b"Line 2502 is not UTF-8 text" in refused.data
    assert b"nothing was imported" in refused.data
    with app.app_context():
        assert db.session.scalar(select(func.count(Subscriber.id))) == 0


def test_an_admin_writes_and_edits_a_post_and_its_html_is_made_safe(app, admin_client):
    token = csrf_token(admin_client.get("/admin/posts/new"))
    post = {
        "csrf_token": token,
        "title": "Market day",
        "link": "https://news.example.org/market",
        "summary_markdown": "Fresh **bread** <script>alert(1)</script> [x](data:x)",
    }
    assert admin_client.post("/admin/posts/new", data=post).status_code == 302
    listing = admin_client.get("/admin/posts").get_data(as_text=True)
    assert "Market day" in listing
    assert "(edited)" in listing
    with app.app_context():
        saved = db.session.scalar(select(Post))
        assert saved.summary_markdown == post["summary_markdown"]
        assert saved.summary_html == (
            "<p>Fresh <strong>bread</strong> &lt;script&gt;alert(1)&lt;/script&gt; "
            '<a rel="noopener noreferrer">x</a></p>'
        )
        post_id = saved.id

    bad = admin_client.post(f"/admin/posts/{post_id}", data={**post, "link": "not a url"})
    assert bad.status_code == 400
    assert b"Invalid URL" in bad.data
    hostile = admin_client.post(
        f"/admin/posts/{post_id}", data={**post, "link": "javascript://x/%0aalert(1)"}
    )
    assert hostile.status_code == 400
    assert b"must start with http:// or https://" in hostile.data
    with app.app_context():
        assert db.session.get(Post, post_id).link == "https://news.example.org/market"
    assert admin_client.get("/admin/posts/9999").status_code == 404


def test_an_admin_composes_previews_tests_and_sends_a_digest(
    app, admin_client, runner, smtp, worker
):
    runner.invoke(args=["import-feed", "tests/data/feed.rss"])
    add(app, ("one@example.org", "confirmed", ""), ("two@example.org", "confirmed", ""))
    form = admin_client.get("/admin/digests/new").get_data(as_text=True)
    assert form.count('type="checkbox"') == 2
    assert form.count("checked") == 2
    with app.app_context():
        bridge = db.session.scalar(select(Post).where(Post.title.like("Council%")))
    token = csrf_token(admin_client.get("/admin/digests/new"))
    created = admin_client.post(
        "/admin/digests/new",
        data={
            "csrf_token": token,
            "subject": "Bridge news",
            "intro": "Hello",
            "posts": [bridge.id],
        },
    )
    assert created.status_code == 302
    page = admin_client.get(created.headers["Location"]).get_data(as_text=True)
    assert "Bridge news" in page
    assert "Council approves new bridge" in page
    assert "Weather" not in page

    digest_path = created.headers["Location"]
    token = csrf_token(admin_client.get(digest_path))
    admin_client.post(f"{digest_path}/test", data={"csrf_token": token, "email": "me@example.org"})
    [test_copy] = smtp.wait_for(1)
    assert test_copy["To"] == "me@example.org"

    admin_client.post(f"{digest_path}/send", data={"csrf_token": token})
    smtp.wait_for(3)

    def finished():
        return admin_client.get(f"{digest_path}/progress").json["status"] == "sent"

    wait_until(finished)
    assert admin_client.get(f"{digest_path}/progress").json == {
        "status": "sent",
        "sent": 2,
        "failed": 0,
        "skipped": 0,
        "pending": 0,
    }
    history = admin_client.get("/admin/digests").get_data(as_text=True)
    assert "Bridge news" in history
    assert "<td>sent</td><td>2</td>" in history
    again = admin_client.post(f"{digest_path}/pause", data={"csrf_token": token})
    assert (
        b"Only a digest that is sending can pause"
        in admin_client.get(again.headers["Location"]).data
    )
    assert admin_client.post(f"{digest_path}/send", data={}).status_code == 400


def test_an_admin_schedules_a_digest_and_the_sweep_sends_it_when_due(
    app, admin_client, runner, smtp, worker
):
    runner.invoke(args=["import-feed", "tests/data/feed.rss"])
    add(app, ("one@example.org", "confirmed", ""))
    token = csrf_token(admin_client.get("/admin/digests/new"))
    created = admin_client.post(
        "/admin/digests/new", data={"csrf_token": token, "subject": "Later", "posts": []}
    )
    assert created.status_code == 400
    assert b"no posts to send" in created.data
    with app.app_context():
        post_ids = [str(post_id) for post_id in db.session.scalars(select(Post.id))]
    created = admin_client.post(
        "/admin/digests/new", data={"csrf_token": token, "subject": "Later", "posts": post_ids}
    )
    digest_path = created.headers["Location"]
    bad = admin_client.post(f"{digest_path}/schedule", data={"csrf_token": token, "send_at": "x"})
    assert bad.status_code == 400
    admin_client.post(
        f"{digest_path}/schedule", data={"csrf_token": token, "send_at": "2026-01-01T08:00"}
    )
    assert admin_client.get(f"{digest_path}/progress").json["status"] == "scheduled"
    assert b"2026-01-01 08:00 UTC" in admin_client.get(digest_path).data

    sweep.delay()
    [message] = smtp.wait_for(1)
    assert message["Subject"] == "Later"


def test_a_test_copy_while_the_broker_is_down_says_so(make_app, runner, admin):
    runner.invoke(args=["import-feed", "tests/data/feed.rss"])
    offline = make_app(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    with offline.app_context():
        digest_id = digests.create_digest("Offline").id
    client = offline.test_client()
    assert log_in(client).status_code == 302
    path = f"/admin/digests/{digest_id}"
    token = csrf_token(client.get(path))
    answer = client.post(f"{path}/test", data={"csrf_token": token, "email": "me@example.org"})
    assert answer.status_code == 302
    page = client.get(path).get_data(as_text=True)
    assert "The workers cannot be reached right now" in page


def test_logging_out_ends_a_copied_session_too(app, admin_client):
    thief = copy_of_session(app, admin_client)
    assert thief.get("/admin/").status_code == 200

    token = csrf_token(admin_client.get("/admin/"))
    assert admin_client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert admin_client.get("/admin/").status_code == 302
    assert thief.get("/admin/").status_code == 302
    assert log_in(admin_client).status_code == 302
    assert admin_client.get("/admin/").status_code == 200


def test_a_new_password_ends_every_session(app, admin_client, runner):
    thief = copy_of_session(app, admin_client)
    result = runner.invoke(args=["create-admin", ADMIN[0], "--password", "a new long password"])
    assert result.exit_code == 0, result.output
    assert admin_client.get("/admin/").status_code == 302
    assert thief.get("/admin/").status_code == 302
    assert log_in(admin_client, password="a new long password").status_code == 302
    assert admin_client.get("/admin/").status_code == 200


def test_signups_for_one_address_are_limited_whatever_the_clients(make_app):
    app = make_app(
        RATELIMIT_ENABLED=True, SIGNUP_RATE_LIMIT="100/minute", SIGNUP_ADDRESS_RATE_LIMIT="3/minute"
    )
    client = app.test_client()

    def sign_up(email, number, api=False):
        environ = {"REMOTE_ADDR": f"192.0.2.{number}"}
        if api:
            return client.post("/api/subscribe", json={"email": email}, environ_base=environ)
        return client.post("/subscribe", data={"email": email}, environ_base=environ)

    assert [sign_up("Victim@example.org ", n).status_code for n in range(3)] == [200] * 3
    assert sign_up("victim@example.org", 3).status_code == 429
    assert sign_up("victim@example.org", 4, api=True).status_code == 429
    assert sign_up("someone@example.org", 5).status_code == 200
    assert sign_up("else@example.org", 6, api=True).status_code == 202


def client_at(app, address):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


@pytest.mark.slow
def test_failures_from_many_addresses_never_keep_the_owner_out(make_app, caplog):
    """Someone guesses the owner's password from 15 addresses: each guess is logged, the
    pile of them is a warning, and the owner's right password from their own address
    still logs them in."""
    app = make_app(
        RATELIMIT_ENABLED=True,
        LOGIN_RATE_LIMIT="100/minute",
        LOGIN_ACCOUNT_RATE_LIMIT="3/hour",
        LOGIN_ACCOUNT_ALERT=15,
    )
    app.test_cli_runner().invoke(args=["create-admin", ADMIN[0], "--password", ADMIN[1]])
    with caplog.at_level(logging.WARNING, logger="newsletter.admins.logins"):
        guesses = [
            log_in(client_at(app, f"192.0.2.{n}"), password=f"guess {n}").status_code
            for n in range(15)
        ]
    assert guesses == [401] * 15
    assert log_in(client_at(app, "198.51.100.7")).status_code == 302

    [warning] = caplog.records
    assert warning.getMessage() == (
        f"15 failed logins to the admin account '{ADMIN[0]}' in the last hour, from 15 addresses"
    )
    with app.app_context():
        entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    logged = [(entry.action, entry.actor_kind, entry.actor, entry.target) for entry in entries]
    failed = ("admins.login_failed", "visitor", ADMIN[0], ADMIN[0])
    made_by_the_fixture = ("admins.create", "command")
    assert logged[0][:2] == made_by_the_fixture
    entries = entries[1:]
    assert logged[1:] == [
        *[failed] * 15,
        ("admins.login_failures", "visitor", ADMIN[0], ADMIN[0]),
        ("admins.login", "admin", ADMIN[0], ADMIN[0]),
    ]
    assert [entry.ip for entry in entries[:2]] == ["192.0.2.0", "192.0.2.1"]
    assert entries[-1].ip == "198.51.100.7"
    # What was typed as the password is kept nowhere.
    assert not any("guess" in (entry.detail or "") for entry in entries)


def test_failed_logins_slow_down_the_address_they_come_from_only(make_app):
    app = make_app(
        RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="100/minute", LOGIN_ACCOUNT_RATE_LIMIT="3/hour"
    )
    app.test_cli_runner().invoke(args=["create-admin", ADMIN[0], "--password", ADMIN[1]])
    guesser = client_at(app, "192.0.2.1")
    answers = [log_in(guesser, password=f"guess {n}").status_code for n in range(4)]
    # Logging in does not count; the fourth failure from one address is refused, and so
    # is the right password from there, for the rest of the hour.
    assert answers == [401, 401, 401, 429]
    assert log_in(guesser).status_code == 429
    assert log_in(client_at(app, "192.0.2.2")).status_code == 302
    owner = client_at(app, "192.0.2.3")
    assert [log_in(owner).status_code for _ in range(4)] == [302] * 4


def test_admins_act_on_one_subscriber_or_on_those_ticked_in_the_list(
    app, admin_client, smtp, worker
):
    add_subscribers(app, 3)
    add_subscribers(app, 2, SubscriberStatus.PENDING, prefix="waiting")
    with app.app_context():
        ids = dict(db.session.execute(select(Subscriber.email, Subscriber.id)).all())
    page = admin_client.get(f"/admin/subscribers/{ids['waiting0@example.org']}")
    token = csrf_token(page)
    assert "Resend the confirmation email" in page.text

    resent = admin_client.post(
        f"/admin/subscribers/{ids['waiting0@example.org']}/resend",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert "A new confirmation email is on its way to 1 of 1" in resent.text
    [message] = smtp.wait_for(1)
    assert message["To"] == "waiting0@example.org"

    listed = admin_client.get("/admin/subscribers")
    assert f'name="ids" value="{ids["reader0@example.org"]}" form="bulk"' in listed.text
    ticked = [ids["reader0@example.org"], ids["reader1@example.org"], ids["waiting1@example.org"]]
    done = admin_client.post(
        "/admin/subscribers/bulk",
        data={"csrf_token": csrf_token(listed), "action": "unsubscribe", "ids": ticked},
        follow_redirects=True,
    )
    assert "Unsubscribed 3 of 3" in done.text
    erased = admin_client.post(
        "/admin/subscribers/bulk",
        data={
            "csrf_token": csrf_token(listed),
            "action": "erase",
            "ids": [ids["reader2@example.org"]],
        },
        follow_redirects=True,
    )
    assert "Erased 1" in erased.text
    nothing = admin_client.post(
        "/admin/subscribers/bulk",
        data={"csrf_token": csrf_token(listed), "action": "erase", "ids": ["x", "99999999999"]},
        follow_redirects=True,
    )
    assert "Tick some subscribers" in nothing.text
    forged = admin_client.post(
        "/admin/subscribers/bulk", data={"action": "erase", "ids": [ids["waiting0@example.org"]]}
    )
    assert forged.status_code in (302, 400)
    with app.app_context():
        statuses = dict(db.session.execute(select(Subscriber.email, Subscriber.status)).all())
        sources = list(
            db.session.scalars(
                select(ConsentEvent.source).where(ConsentEvent.kind == "unsubscribe")
            )
        )
    assert statuses == {
        "reader0@example.org": "unsubscribed",
        "reader1@example.org": "unsubscribed",
        "waiting0@example.org": "pending",
        "waiting1@example.org": "unsubscribed",
    }
    assert sources == ["admin", "admin", "admin"]
