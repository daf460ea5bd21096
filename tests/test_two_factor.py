"""Admins turn on two-factor login: a code from an authenticator app after the password,
and recovery codes for a lost phone."""

import re

from sqlalchemy import select

from harness import csrf_token
from newsletter.admins.models import AuditEntry
from newsletter.extensions import db
from tests.helpers import ADMIN, copy_of_session, log_in
from tests.helpers.two_factor import STEP, code_at, enter_code, turn_on


def log_out(client):
    token = csrf_token(client.get("/admin/"))
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302


def test_turning_it_on_takes_a_code_from_the_app_and_shows_recovery_codes_once(
    app, admin_client, clock
):
    assert "Two-factor login</a>" in admin_client.get("/admin/").text
    page = admin_client.get("/admin/two-factor")
    assert page.headers["Cache-Control"] == "no-store"
    assert "Off." in page.text
    # The QR code is an image in a data: URI, which the page's CSP lets it show.
    assert '<img src="data:image/svg+xml;' in page.text
    assert "data:" in re.search(r"img-src ([^;]*)", page.headers["Content-Security-Policy"])[1]
    secret = re.search(r'<code id="totp-secret">([^<]+)</code>', page.text)[1].replace(" ", "")
    # The same secret until it is confirmed, so the app scanned before a reload still fits.
    assert secret in admin_client.get("/admin/two-factor").text.replace(" ", "")
    other_browser = copy_of_session(app, admin_client)

    wrong = admin_client.post(
        "/admin/two-factor", data={"csrf_token": csrf_token(page), "code": "000000"}
    )
    assert wrong.status_code == 400
    assert "That is not the code the app shows now" in wrong.text
    assert "Off." in admin_client.get("/admin/two-factor").text

    right = admin_client.post(
        "/admin/two-factor",
        data={"csrf_token": csrf_token(page), "code": code_at(secret, clock)},
    )
    assert right.status_code == 200
    assert right.headers["Cache-Control"] == "no-store"
    assert "This is the only time they are shown" in right.text
    codes = re.findall(r"<li><code>([0-9a-f-]+)</code></li>", right.text)
    assert len(set(codes)) == 10

    settings = admin_client.get("/admin/two-factor").text
    assert "On." in settings
    assert "Unused recovery codes: 10." in settings
    assert not any(code in settings for code in codes)
    # This browser stays logged in; every other session has ended.
    assert admin_client.get("/admin/").status_code == 200
    assert other_browser.get("/admin/").status_code == 302


def test_the_password_alone_no_longer_logs_in(admin_client, clock):
    secret, _ = turn_on(admin_client, clock)
    log_out(admin_client)

    password = log_in(admin_client)
    assert password.headers["Location"] == "/admin/login/two-factor"
    assert admin_client.get("/admin/").status_code == 302
    assert admin_client.get("/admin/subscribers").status_code == 302
    wrong = enter_code(admin_client, "123456")
    assert wrong.status_code == 401
    assert "Wrong code." in wrong.text
    # Not ASCII (a phone's keyboard may give full-width digits): wrong, not an error.
    assert enter_code(admin_client, "\uff11\uff12\uff13 \uff14\uff15\uff16").status_code == 401
    assert admin_client.get("/admin/").status_code == 302

    clock.now += STEP
    right = enter_code(admin_client, code_at(secret, clock))
    assert right.headers["Location"] == "/admin/"
    assert admin_client.get("/admin/").status_code == 200


def test_next_leads_through_the_code_within_the_admin_area(admin_client, clock):
    secret, _ = turn_on(admin_client, clock)
    log_out(admin_client)
    to_login = admin_client.get("/admin/subscribers")
    token = csrf_token(admin_client.get(to_login.headers["Location"]))
    password = admin_client.post(
        to_login.headers["Location"],
        data={"email": ADMIN[0], "password": ADMIN[1], "csrf_token": token},
    )
    assert password.headers["Location"] == "/admin/login/two-factor?next=/admin/subscribers"
    clock.now += STEP
    answer = enter_code(admin_client, code_at(secret, clock), path=password.headers["Location"])
    assert answer.headers["Location"] == "/admin/subscribers"

    log_out(admin_client)
    log_in(admin_client)
    clock.now += STEP
    evil = enter_code(
        admin_client, code_at(secret, clock), "/admin/login/two-factor?next=//evil.example/"
    )
    assert evil.headers["Location"] == "/admin/"


def test_a_code_is_taken_once(admin_client, clock):
    secret, _ = turn_on(admin_client, clock)
    # The code that turned it on does not log in.
    log_out(admin_client)
    log_in(admin_client)
    assert enter_code(admin_client, code_at(secret, clock)).status_code == 401

    clock.now += STEP
    code = code_at(secret, clock)
    assert enter_code(admin_client, code).status_code == 302
    log_out(admin_client)
    log_in(admin_client)
    assert enter_code(admin_client, code).status_code == 401
    # Nor does the code before it, though it is still within the window.
    assert enter_code(admin_client, code_at(secret, clock, later=-STEP)).status_code == 401
    assert admin_client.get("/admin/").status_code == 302

    clock.now += STEP
    assert enter_code(admin_client, code_at(secret, clock)).status_code == 302
    assert admin_client.get("/admin/").status_code == 200


def test_a_slow_clock_on_the_phone_is_forgiven_by_one_step(admin_client, clock):
    secret, _ = turn_on(admin_client, clock)
    log_out(admin_client)
    log_in(admin_client)
    clock.now += 3 * STEP
    assert enter_code(admin_client, code_at(secret, clock, later=-2 * STEP)).status_code == 401
    assert enter_code(admin_client, code_at(secret, clock, later=-STEP)).status_code == 302


def test_a_recovery_code_logs_in_once(admin_client, clock):
    _, codes = turn_on(admin_client, clock)
    log_out(admin_client)
    log_in(admin_client)
    # Typed as people type: upper case, spaces.
    answer = enter_code(admin_client, codes[3].upper().replace("-", " "))
    assert answer.headers["Location"] == "/admin/"
    dashboard = admin_client.get("/admin/")
    assert dashboard.status_code == 200
    assert "You used a recovery code; it will not work again. Codes left: 9." in dashboard.text
    assert "Unused recovery codes: 9." in admin_client.get("/admin/two-factor").text

    log_out(admin_client)
    log_in(admin_client)
    assert enter_code(admin_client, codes[3]).status_code == 401
    assert admin_client.get("/admin/").status_code == 302
    assert enter_code(admin_client, codes[4]).status_code == 302


def test_the_code_must_follow_the_password_within_five_minutes(admin_client, clock):
    secret, _ = turn_on(admin_client, clock)
    log_out(admin_client)
    assert admin_client.get("/admin/login/two-factor").headers["Location"] == "/admin/login"

    log_in(admin_client)
    page = admin_client.get("/admin/login/two-factor")
    clock.now += 5 * 60 + 1
    late = admin_client.post(
        "/admin/login/two-factor",
        data={"csrf_token": csrf_token(page), "code": code_at(secret, clock)},
    )
    assert late.headers["Location"] == "/admin/login"
    assert (
        "the code must follow the password within 5 minutes"
        in admin_client.get("/admin/login").text
    )
    assert admin_client.get("/admin/").status_code == 302
    # The password again, and the code in time.
    log_in(admin_client)
    clock.now += STEP
    assert enter_code(admin_client, code_at(secret, clock)).status_code == 302


def test_a_new_password_ends_a_login_waiting_for_its_code(admin_client, runner, clock):
    secret, _ = turn_on(admin_client, clock)
    log_out(admin_client)
    log_in(admin_client)
    page = admin_client.get("/admin/login/two-factor")
    runner.invoke(args=["create-admin", ADMIN[0], "--password", "a new long password"])
    clock.now += STEP
    answer = admin_client.post(
        "/admin/login/two-factor",
        data={"csrf_token": csrf_token(page), "code": code_at(secret, clock)},
    )
    assert answer.headers["Location"] == "/admin/login"
    assert admin_client.get("/admin/").status_code == 302


def test_reset_two_factor_lets_an_admin_who_lost_the_phone_in(admin_client, runner, clock):
    turn_on(admin_client, clock)
    result = runner.invoke(args=["reset-two-factor", "Admin@Example.org"])
    assert result.exit_code == 0, result.output
    assert "Two-factor login is off for admin@example.org" in result.output
    assert "every session of theirs has ended" in result.output
    assert admin_client.get("/admin/").status_code == 302

    assert log_in(admin_client).headers["Location"] == "/admin/"
    assert "Off." in admin_client.get("/admin/two-factor").text

    again = runner.invoke(args=["reset-two-factor", ADMIN[0]])
    assert again.exit_code == 0
    assert "admin@example.org has no two-factor login; nothing changed." in again.output
    unknown = runner.invoke(args=["reset-two-factor", "nobody@example.org"])
    assert unknown.exit_code != 0
    assert "No admin has the address nobody@example.org." in unknown.output


def test_turning_it_off_takes_a_code_or_the_password(app, admin_client, clock):
    turn_on(admin_client, clock)
    other_browser = copy_of_session(app, admin_client)
    token = csrf_token(admin_client.get("/admin/two-factor"))
    wrong = admin_client.post(
        "/admin/two-factor/disable", data={"csrf_token": token, "proof": "guess"}
    )
    assert wrong.status_code == 401
    assert "neither the code your app shows now nor your password" in wrong.text
    assert "On." in admin_client.get("/admin/two-factor").text

    answer = admin_client.post(
        "/admin/two-factor/disable", data={"csrf_token": token, "proof": ADMIN[1]}
    )
    assert answer.headers["Location"] == "/admin/two-factor"
    page = admin_client.get("/admin/two-factor").text
    assert "Two-factor login is off; every other session has ended." in page
    assert "Off." in page
    assert other_browser.get("/admin/").status_code == 302
    # A page left open from before makes no recovery codes for a login that has none.
    stale = admin_client.post(
        "/admin/two-factor/recovery-codes", data={"csrf_token": token, "proof": ADMIN[1]}
    )
    assert stale.headers["Location"] == "/admin/two-factor"
    log_out(admin_client)
    assert log_in(admin_client).headers["Location"] == "/admin/"


def test_new_recovery_codes_replace_the_old_ones(admin_client, clock):
    secret, old_codes = turn_on(admin_client, clock)
    page = admin_client.get("/admin/two-factor")
    clock.now += STEP
    answer = admin_client.post(
        "/admin/two-factor/recovery-codes",
        data={"csrf_token": csrf_token(page), "proof": code_at(secret, clock)},
    )
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    new_codes = re.findall(r"<li><code>([0-9a-f-]+)</code></li>", answer.text)
    assert len(new_codes) == 10
    assert not set(new_codes) & set(old_codes)

    log_out(admin_client)
    log_in(admin_client)
    assert enter_code(admin_client, old_codes[0]).status_code == 401
    assert enter_code(admin_client, new_codes[0]).status_code == 302


def test_wrong_codes_count_against_the_account_login_limit(make_app, clock):
    app = make_app(
        RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="100/minute", LOGIN_ACCOUNT_RATE_LIMIT="3/hour"
    )
    app.test_cli_runner().invoke(args=["create-admin", ADMIN[0], "--password", ADMIN[1]])
    client = app.test_client()
    log_in(client)
    secret, _ = turn_on(client, clock)
    log_out(client)

    assert log_in(client, password="guess").status_code == 401
    assert log_in(client).status_code == 302
    assert [enter_code(client, "000000").status_code for _ in range(2)] == [401, 401]
    # Three failures, password and codes together: the account takes no more from this
    # address, right or not; the right password and code from another still work.
    clock.now += STEP
    assert enter_code(client, code_at(secret, clock)).status_code == 429
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.9"
    assert log_in(elsewhere).status_code == 302
    clock.now += STEP
    assert enter_code(elsewhere, code_at(secret, clock)).status_code == 302
    with app.app_context():
        steps = db.session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "admins.login_failed")
        ).all()
    assert steps == ["password", "second factor", "second factor"]


def test_each_change_to_two_factor_login_is_in_the_audit_log(admin_client, runner, clock):
    secret, _codes = turn_on(admin_client, clock)
    page = admin_client.get("/admin/two-factor")
    clock.now += STEP
    admin_client.post(
        "/admin/two-factor/recovery-codes",
        data={"csrf_token": csrf_token(page), "proof": code_at(secret, clock)},
    )
    admin_client.post(
        "/admin/two-factor/disable", data={"csrf_token": csrf_token(page), "proof": ADMIN[1]}
    )
    turn_on(admin_client, clock)
    runner.invoke(args=["reset-two-factor", ADMIN[0]])

    log_in(admin_client)
    audit_page = admin_client.get("/admin/audit").text
    assert re.findall(r"<code>(two_factor\.[a-z_]+)</code>", audit_page) == [
        "two_factor.disable",
        "two_factor.enable",
        "two_factor.disable",
        "two_factor.recovery_codes",
        "two_factor.enable",
    ]
    assert "reset-two-factor" in audit_page
