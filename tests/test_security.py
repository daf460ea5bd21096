"""What a browser is told to enforce, how large a request may be, and whose address a
request comes from behind a proxy."""

import io
import json
import re
import secrets
import subprocess
import sys
import time
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from sqlalchemy import select

from harness import csrf_token, free_port
from newsletter.content import digests
from newsletter.core.tokens import UNSUBSCRIBE, make_token
from newsletter.extensions import db
from newsletter.subscribers.models import Subscriber
from tests.helpers import FEED, PROJECT_ROOT, add_subscribers, log_in, process_env


def test_every_page_forbids_inline_scripts_framing_and_sniffing(client, admin_client):
    for path in ["/", "/admin/", "/api/subscribe", "/no-such-page"]:
        headers = client.get(path).headers
        policy = headers["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]*)", policy)[1]
        assert script_src.startswith("'nonce-")
        assert "unsafe-inline" not in script_src
        assert "frame-ancestors 'none'" in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in headers


def test_a_page_with_a_token_in_its_url_sends_no_referrer(app, client):
    add_subscribers(app, 1)
    with app.app_context():
        subscriber = db.session.scalar(select(Subscriber))
        token = make_token(UNSUBSCRIBE, subscriber)
    assert client.get(f"/unsubscribe/{token}").headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/").headers["Referrer-Policy"] == "same-origin"


def test_the_progress_script_runs_by_its_nonce(app, admin_client, runner):
    runner.invoke(args=["import-feed", FEED])
    with app.app_context():
        digest_id = digests.create_digest("Nonce").id
    page = admin_client.get(f"/admin/digests/{digest_id}")
    nonce = re.search(r"script-src 'nonce-([^']+)'", page.headers["Content-Security-Policy"])[1]
    scripts = re.findall(r"<script[^>]*>", page.get_data(as_text=True))
    assert scripts == [f'<script nonce="{nonce}">']
    assert (
        admin_client.get(f"/admin/digests/{digest_id}").headers["Content-Security-Policy"]
        != page.headers["Content-Security-Policy"]
    )


def test_an_oversized_body_is_refused_with_its_limit_and_nothing_is_stored(make_app):
    app = make_app(MAX_CONTENT_LENGTH=64 * 1024)
    client = app.test_client()
    big = "x" * (128 * 1024)
    api = client.post("/api/subscribe", json={"email": "big@example.org", "name": big})
    assert api.status_code == 413
    assert api.json == {"error": "The request is larger than this service takes (65,536 bytes)."}
    form = client.post("/subscribe", data={"email": "big@example.org", "name": big})
    assert form.status_code == 413
    assert b"larger than this service takes" in form.data
    with app.app_context():
        assert db.session.scalar(select(Subscriber)) is None


def test_a_csv_upload_may_be_larger_than_other_requests(make_app, admin):
    limit = 8 * 1024
    app = make_app(MAX_CONTENT_LENGTH=limit)
    client = app.test_client()
    assert log_in(client).status_code == 302
    token = csrf_token(client.get("/admin/subscribers/import"))
    rows = "".join(f"reader{n}@example.org\n" for n in range(1000))
    assert len(rows) > 2 * limit
    page = client.post(
        "/admin/subscribers/import",
        data={"csrf_token": token, "file": (io.BytesIO(("email\n" + rows).encode()), "l.csv")},
        content_type="multipart/form-data",
    )
    assert page.status_code == 200
    assert "Added 1000" in page.get_data(as_text=True)


def test_behind_a_trusted_proxy_the_client_address_is_the_forwarded_one(make_app):
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    direct = make_app()
    direct.test_client().post("/subscribe", data={"email": "a@example.org"}, headers=forwarded)
    proxied = make_app(TRUSTED_PROXIES=1)
    proxied.test_client().post("/subscribe", data={"email": "b@example.org"}, headers=forwarded)
    with proxied.app_context():
        ips = dict(db.session.execute(select(Subscriber.email, Subscriber.signup_ip)).all())
    assert ips == {"a@example.org": "127.0.0.1", "b@example.org": "203.0.113.7"}


def test_under_https_cookies_are_secure_and_browsers_are_told_to_stay_on_https(make_app, admin):
    app = make_app(BASE_URL="https://news.example.org")
    client = app.test_client()
    page = client.get("/admin/login")
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    cookie = page.headers["Set-Cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


@pytest.mark.slow
def test_the_served_app_counts_one_clients_sign_ups_in_one_place(app, tmp_path):
    """As scripts/run.sh serves it, from two processes: they count in one SQLite file on
    the embedded default, in the Redis broker on the other stack. Either way the limit
    is the limit, not the limit times the processes."""
    port = free_port()
    env = process_env(
        app, OUTBOX_DIR=str(tmp_path / "outbox"), SIGNUP_RATE_LIMIT="5/hour", TRUSTED_PROXIES="1"
    )
    env.pop("RATELIMIT_STORAGE_URI", None)
    command = [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}"]
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [*command, "newsletter:create_app()"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=output,
        )
    try:
        base = wait_for_http(f"http://127.0.0.1:{port}", log)
        # A client of its own, so counters left in Redis by another run do not count.
        client_ip = f"2001:db8::{secrets.token_hex(2)}"
        answers = [
            post_json(f"{base}/api/subscribe", {"email": f"r{n}@example.org"}, client_ip)
            for n in range(12)
        ]
    finally:
        server.terminate()
        server.wait(30)
    assert answers.count(202) == 5, log.read_text()
    assert answers.count(429) == 7
    assert log.read_text().count("Booting worker") == 2


def wait_for_http(url, log, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urlopen(url, timeout=5):
                return url
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"gunicorn did not start:\n{log.read_text()}") from None
            time.sleep(0.2)


def post_json(url, data, client_ip):
    request = Request(
        url,
        data=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": client_ip},
    )
    try:
        with urlopen(request, timeout=10) as answer:
            return answer.status
    except HTTPError as error:
        return error.code
