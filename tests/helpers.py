"""Small helpers the stories share."""

import re
import time
from concurrent.futures import ThreadPoolExecutor

ADMIN = ("admin@example.org", "correct horse battery")


def wait_until(predicate, timeout=20):
    """Poll until ``predicate()`` is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def sign_up_concurrently(app, addresses, clients):
    """POST /api/subscribe for every address from ``clients`` threads; the status codes."""

    def sign_up(chunk):
        client = app.test_client()
        return [client.post("/api/subscribe", json={"email": a}).status_code for a in chunk]

    chunks = [addresses[i::clients] for i in range(clients)]
    with ThreadPoolExecutor(clients) as pool:
        return [status for statuses in pool.map(sign_up, chunks) for status in statuses]


def csrf_token(page):
    """The CSRF token of the (first) form on a page."""
    return re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
    )[1]


def log_in(client, email=ADMIN[0], password=ADMIN[1]):
    token = csrf_token(client.get("/admin/login"))
    return client.post(
        "/admin/login", data={"email": email, "password": password, "csrf_token": token}
    )
