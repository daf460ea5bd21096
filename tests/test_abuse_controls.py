"""Blocked domains, throwaway-mail domains and the check that a person signs up
(ALTCHA, Turnstile, hCaptcha), as subscribers, admins and bots meet them."""

import base64
import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import altcha
import pytest
from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS
from sqlalchemy import func, select

from harness import csrf_token, free_port
from newsletter.core.tokens import PREFERENCES, UNSUBSCRIBE, make_token
from newsletter.extensions import db
from newsletter.sending.models import EmailJob
from newsletter.subscribers import captcha
from newsletter.subscribers.models import Subscriber, SubscriberStatus

COMPLETE_THE_CHECK = "Please complete the check that you are not a robot"


def signed_up(app):
    """The addresses stored, and whether any email is owed."""
    with app.app_context():
        emails = set(db.session.scalars(select(Subscriber.email)))
        jobs = db.session.scalar(select(func.count(EmailJob.id)))
        db.session.rollback()
    return emails, jobs


def save_blocklist(admin_client, text):
    token = csrf_token(admin_client.get("/admin/blocked-domains"))
    return admin_client.post("/admin/blocked-domains", data={"csrf_token": token, "domains": text})


# Blocked domains


def test_a_domain_the_admin_blocks_is_refused_with_every_domain_under_it(app, admin_client):
    saved = save_blocklist(admin_client, "Spam.example\n\n  bücher.example.  \n")
    assert saved.status_code == 302
    page = admin_client.get("/admin/blocked-domains").get_data(as_text=True)
    assert "Saved: 2 blocked domains." in page
    assert "spam.example\nxn--bcher-kva.example</textarea>" in page

    for address in ["ann@spam.example", "ann@mail.SPAM.example", "ann@Bücher.example"]:
        form = admin_client.post("/subscribe", data={"email": address, "name": "Ann"})
        assert form.status_code == 400
        text = form.get_data(as_text=True)
        assert "cannot subscribe. Please use another one." in text
        assert f'value="{address}"' in text
        api = admin_client.post("/api/subscribe", json={"email": address})
        assert api.status_code == 422
        assert "cannot subscribe" in api.json["error"]
    refused = admin_client.post("/api/subscribe", json={"email": "bo@deep.sub.spam.example"})
    assert refused.json == {
        "error": "Addresses at deep.sub.spam.example cannot subscribe. Please use another one."
    }
    assert signed_up(app) == (set(), 0)

    # A domain that merely ends in the same letters is another domain.
    assert admin_client.post("/subscribe", data={"email": "ann@notspam.example"}).status_code == 200
    assert admin_client.post("/api/subscribe", json={"email": "bo@example.net"}).status_code == 202
    assert signed_up(app)[0] == {"ann@notspam.example", "bo@example.net"}

    # Taken off the list, the domain may subscribe again.
    assert save_blocklist(admin_client, "bücher.example").status_code == 302
    assert (
        admin_client.post("/api/subscribe", json={"email": "ann@spam.example"}).status_code == 202
    )


def test_lines_that_are_no_domain_are_refused_and_the_list_is_kept(admin_client):
    save_blocklist(admin_client, "kept.example")
    answer = save_blocklist(
        admin_client, "ok.example\nnot a domain\n*.wild.example\nhttp://x.example"
    )
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert (
        "These lines are not domain names: line 2 (not a domain), line 3 (*.wild.example), "
        "line 4 (http://x.example). Write one domain a line, such as example.com."
    ) in page
    # What the admin typed stays in the box to be corrected.
    assert "ok.example\nnot a domain" in page
    assert "kept.example</textarea>" in admin_client.get("/admin/blocked-domains").get_data(
        as_text=True
    )


def test_an_import_rejects_rows_at_blocked_domains_with_their_lines(app, admin_client):
    save_blocklist(admin_client, "blocked.example")
    token = csrf_token(admin_client.get("/admin/subscribers/import"))
    upload = io.BytesIO(
        b"email,name\n"
        b"ok@example.org,Ok\n"
        b"one@blocked.example,One\n"
        b"bad address,Bad\n"
        b"two@lists.blocked.example,Two\n"
        b"fine@unblocked.example,Fine\n"
    )
    page = admin_client.post(
        "/admin/subscribers/import",
        data={"csrf_token": token, "file": (upload, "list.csv")},
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert "Added 2, skipped 0 already known, rejected 3." in page
    rows = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td></tr>", page)
    assert [line for line, _reason in rows] == ["3", "4", "5"]
    assert rows[0][1] == "Addresses at blocked.example cannot subscribe. Please use another one."
    assert rows[2][1].startswith("Addresses at lists.blocked.example cannot subscribe.")
    assert signed_up(app)[0] == {"ok@example.org", "fine@unblocked.example"}


def test_disposable_domains_are_refused_only_when_the_option_is_on(make_app):
    assert "0815.ru" in DISPOSABLE_DOMAINS
    off = make_app()
    assert off.test_client().post("/api/subscribe", json={"email": "a@0815.ru"}).status_code == 202

    app = make_app(BLOCK_DISPOSABLE_DOMAINS=True)
    client = app.test_client()
    form = client.post("/subscribe", data={"email": "b@0815.ru"})
    assert form.status_code == 400
    assert "Addresses at 0815.ru cannot subscribe." in form.get_data(as_text=True)
    api = client.post("/api/subscribe", json={"email": "c@mx.0815.ru"})
    assert api.status_code == 422
    assert api.json["error"].startswith("Addresses at mx.0815.ru cannot subscribe.")
    assert client.post("/api/subscribe", json={"email": "d@example.org"}).status_code == 202
    assert signed_up(app)[0] == {"a@0815.ru", "d@example.org"}


# ALTCHA


@pytest.fixture
def altcha_app(make_app):
    # One PBKDF2 iteration a try keeps solving in the test fast; the work is the same kind.
    return make_app(CAPTCHA_PROVIDER="altcha", ALTCHA_COST=1)


def solve(client):
    """What the widget does in the browser: fetch a challenge, solve it, encode the payload."""
    answer = client.get("/altcha/challenge")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    challenge = altcha.Challenge.from_dict(answer.json)
    solution = altcha.solve_challenge(challenge, timeout=30)
    return altcha.Payload(challenge, solution).to_base64()


def test_the_form_carries_the_altcha_widget_from_this_site_under_the_csp(altcha_app):
    client = altcha_app.test_client()
    page = client.get("/")
    html = page.get_data(as_text=True)
    nonce = re.search(r"script-src 'nonce-([^']+)'", page.headers["Content-Security-Policy"])[1]
    assert '<altcha-widget challenge="/altcha/challenge" name="altcha">' in html
    scripts = re.findall(r'<script type="module" nonce="([^"]+)" src="([^"]+)">', html)
    assert scripts == [
        (nonce, "/static/vendor/altcha/altcha.min.js"),
        (nonce, "/static/js/altcha-setup.js"),
    ]
    assert "worker-src 'self'" in page.headers["Content-Security-Policy"]
    for path in [*(src for _nonce, src in scripts), "/static/vendor/altcha/workers/pbkdf2.js"]:
        served = client.get(path)
        assert served.status_code == 200
        assert served.mimetype == "text/javascript"
        served.close()


def test_a_solved_altcha_signs_up_once_and_its_replay_or_forgery_is_refused(altcha_app):
    client = altcha_app.test_client()
    missing = client.post("/subscribe", data={"email": "ann@example.org"})
    assert missing.status_code == 400
    assert COMPLETE_THE_CHECK in missing.get_data(as_text=True)
    assert client.post("/api/subscribe", json={"email": "ann@example.org"}).status_code == 400

    payload = solve(client)
    answer = client.post("/subscribe", data={"email": "ann@example.org", "altcha": payload})
    assert answer.status_code == 200
    assert "Now check your email" in answer.get_data(as_text=True)

    replay = client.post("/api/subscribe", json={"email": "bo@example.org", "captcha": payload})
    assert replay.status_code == 400
    assert replay.json["error"].startswith(COMPLETE_THE_CHECK)
    again = client.post("/subscribe", data={"email": "cy@example.org", "altcha": payload})
    assert again.status_code == 400

    # A challenge made easier, or a solution of someone else's making, fails its signature.
    forged = json.loads(base64.b64decode(solve(client)))
    forged["challenge"]["parameters"]["keyPrefix"] = "0"
    tampered = base64.b64encode(json.dumps(forged).encode()).decode()
    for token in [tampered, "bm90IGpzb24=", "!!", {"not": "a string"}]:
        refused = client.post("/api/subscribe", json={"email": "di@example.org", "captcha": token})
        assert refused.status_code == 400
        assert refused.json["error"].startswith(COMPLETE_THE_CHECK)

    api = client.post("/api/subscribe", json={"email": "ed@example.org", "captcha": solve(client)})
    assert api.status_code == 202
    assert signed_up(altcha_app) == ({"ann@example.org", "ed@example.org"}, 2)


def test_the_challenge_route_exists_only_under_altcha(client):
    assert client.get("/altcha/challenge").status_code == 404


def test_an_unknown_provider_or_missing_keys_stop_the_app_from_starting(make_app):
    with pytest.raises(ValueError, match="use one of altcha, turnstile, hcaptcha"):
        make_app(CAPTCHA_PROVIDER="recaptcha")
    with pytest.raises(ValueError, match="needs CAPTCHA_SITE_KEY and CAPTCHA_SECRET_KEY"):
        make_app(CAPTCHA_PROVIDER="turnstile", CAPTCHA_SITE_KEY="site")


# Turnstile and hCaptcha, against a siteverify endpoint of our own


class Siteverify(BaseHTTPRequestHandler):
    """Answers as the providers do: success for the token "good-token" only."""

    def do_POST(self):
        fields = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.server.received.append({name: values[0] for name, values in fields.items()})
        if self.server.broken:
            self.send_error(500)
            return
        success = fields.get("response") == ["good-token"]
        body = json.dumps({"success": success, "error-codes": [] if success else ["bad"]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def siteverify():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Siteverify)
    server.received, server.broken = [], False
    server.url = f"http://127.0.0.1:{server.server_port}/siteverify"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


PROVIDERS = {
    "turnstile": ("cf-turnstile-response", "cf-turnstile", "https://challenges.cloudflare.com"),
    "hcaptcha": ("h-captcha-response", "h-captcha", "https://hcaptcha.com https://*.hcaptcha.com"),
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_form_loads_the_providers_widget_and_the_csp_allows_its_origin_only(make_app, provider):
    _field, widget_class, origins = PROVIDERS[provider]
    app = make_app(CAPTCHA_PROVIDER=provider, CAPTCHA_SITE_KEY="site-key", CAPTCHA_SECRET_KEY="s")
    page = app.test_client().get("/")
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in page.headers["Content-Security-Policy"].split(";")
    )
    nonce = re.search(r"'nonce-([^']+)'", policy["script-src"])[1]
    assert policy["script-src"] == f"'nonce-{nonce}' {origins}"
    assert policy["frame-src"] == f"'self' {origins}"
    html = page.get_data(as_text=True)
    assert f'<div class="{widget_class}" data-sitekey="site-key"></div>' in html
    script = re.search(r'<script nonce="([^"]+)" src="(https://[^"]+)" async defer>', html)
    assert script[1] == nonce
    assert script[2].startswith(
        "https://challenges.cloudflare.com/"
        if provider == "turnstile"
        else "https://js.hcaptcha.com/"
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_provider_decides_and_an_outage_fails_closed(make_app, siteverify, provider):
    field = PROVIDERS[provider][0]
    app = make_app(
        CAPTCHA_PROVIDER=provider,
        CAPTCHA_SITE_KEY="site-key",
        CAPTCHA_SECRET_KEY="secret-key",
        CAPTCHA_VERIFY_URL=siteverify.url,
    )
    client = app.test_client()

    good = client.post("/subscribe", data={"email": "ann@example.org", field: "good-token"})
    assert good.status_code == 200
    assert "Now check your email" in good.get_data(as_text=True)
    asked = siteverify.received[0]
    assert (asked["secret"], asked["response"], asked["remoteip"]) == (
        "secret-key",
        "good-token",
        "127.0.0.1",
    )
    api = client.post("/api/subscribe", json={"email": "bo@example.org", "captcha": "good-token"})
    assert api.status_code == 202

    wrong = client.post("/subscribe", data={"email": "cy@example.org", field: "bad-token"})
    assert wrong.status_code == 400
    assert COMPLETE_THE_CHECK in wrong.get_data(as_text=True)
    missing = client.post("/subscribe", data={"email": "cy@example.org"})
    assert missing.status_code == 400
    assert COMPLETE_THE_CHECK in missing.get_data(as_text=True)
    wrong_api = client.post("/api/subscribe", json={"email": "cy@example.org", "captcha": "x"})
    assert wrong_api.status_code == 400
    assert wrong_api.json["error"].startswith(COMPLETE_THE_CHECK)
    assert len(siteverify.received) == 4  # A missing token is refused without asking.

    siteverify.broken = True
    broken = client.post(
        "/api/subscribe", json={"email": "di@example.org", "captcha": "good-token"}
    )
    assert broken.status_code == 503
    assert "cannot be completed right now" in broken.json["error"]

    down = make_app(
        CAPTCHA_PROVIDER=provider,
        CAPTCHA_SITE_KEY="site-key",
        CAPTCHA_SECRET_KEY="secret-key",
        CAPTCHA_VERIFY_URL=f"http://127.0.0.1:{free_port()}/siteverify",
    )
    page = down.test_client().post("/subscribe", data={"email": "ed@example.org", field: "t"})
    assert page.status_code == 503
    assert "cannot be completed right now. Please try again in a few minutes." in page.get_data(
        as_text=True
    )
    assert signed_up(app) == ({"ann@example.org", "bo@example.org"}, 2)


def test_a_known_reader_at_a_domain_blocked_since_cannot_sign_up_or_come_back(app, admin_client):
    joined = admin_client.post("/api/subscribe", json={"email": "ann@spam.example"})
    assert joined.status_code == 202
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber))
        leave = make_token(UNSUBSCRIBE, subscriber)
        preferences = make_token(PREFERENCES, subscriber)
    assert admin_client.post(f"/unsubscribe/{leave}").status_code == 200
    save_blocklist(admin_client, "spam.example")

    again = admin_client.post("/subscribe", data={"email": "ann@spam.example"})
    assert again.status_code == 400
    assert "Addresses at spam.example cannot subscribe" in again.get_data(as_text=True)
    back = admin_client.post(
        f"/preferences/{preferences}", data={"name": "Ann", "action": "resubscribe"}
    )
    assert back.status_code == 400
    assert "Addresses at spam.example cannot subscribe" in back.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Subscriber.status)) == SubscriberStatus.UNSUBSCRIBED
        assert db.session.scalar(select(func.count(EmailJob.id))) == 1


def test_a_solution_to_an_expired_altcha_challenge_is_refused(altcha_app, monkeypatch):
    client = altcha_app.test_client()
    monkeypatch.setattr(captcha, "ALTCHA_CHALLENGE_SECONDS", -1)
    late = client.post(
        "/api/subscribe", json={"email": "ann@example.org", "captcha": solve(client)}
    )
    assert late.status_code == 400
    assert late.json["error"].startswith(COMPLETE_THE_CHECK)
    assert signed_up(altcha_app) == (set(), 0)
