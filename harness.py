"""What the tests, the benchmark and scripts/screenshots.py share to drive the app in
one process: a free port, the app on a real HTTP server in a thread, a page of another
origin, an admin logged in through a test client, and Debian's Chromium for Playwright.

Not part of the service: nothing in newsletter/ or workers/ imports it.
"""

import re
import shutil
import socket
import threading
from contextlib import contextmanager

from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Playwright cannot download its own browser here, so it drives Debian's Chromium, as root
# (hence no sandbox), with nothing that would reach out beyond loopback.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(app, port, host="127.0.0.1"):
    """A WSGI app on a real HTTP server at ``host``:``port``, in a thread; yields its URL."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{host}:{port}"
    server.shutdown()
    server.server_close()
    thread.join()


@contextmanager
def another_site(port, html):
    """One page of another origin (localhost, not the service's 127.0.0.1), as a site
    that shows the sign-up box would be; yields the page's URL."""

    def page(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [html.encode()]

    with served(page, port, host="localhost") as origin:
        yield f"{origin}/"


def csrf_token(page):
    """The CSRF token of the (first) form on a page."""
    return re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    )[1]


def log_in(client, email, password):
    """Log a Flask test client in to the admin area, as the login form does."""
    token = csrf_token(client.get("/admin/login"))
    return client.post(
        "/admin/login", data={"email": email, "password": password, "csrf_token": token}
    )
