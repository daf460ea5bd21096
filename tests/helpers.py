"""Small helpers the stories share."""

import time
from concurrent.futures import ThreadPoolExecutor


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
