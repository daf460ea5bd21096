"""Two-factor login as an admin goes through it, on a clock the test moves."""

import re
import time

import pyotp

from harness import csrf_token

STEP = 30  # seconds each TOTP code lasts


class Clock:
    """The two-factor module's clock, moved on by the test instead of by waiting."""

    def __init__(self):
        self.now = time.time() // STEP * STEP + 1

    def time(self):
        return self.now


def code_at(secret, clock, later=0):
    return pyotp.TOTP(secret).at(clock.now + later)


def turn_on(client, clock):
    """Turn two-factor login on from its page, as an admin would; the secret and the codes."""
    page = client.get("/admin/two-factor")
    secret = re.search(r'<code id="totp-secret">([^<]+)</code>', page.text)[1].replace(" ", "")
    answer = client.post(
        "/admin/two-factor", data={"csrf_token": csrf_token(page), "code": code_at(secret, clock)}
    )
    assert answer.status_code == 200
    return secret, re.findall(r"<li><code>([0-9a-f-]+)</code></li>", answer.text)


def enter_code(client, code, path="/admin/login/two-factor"):
    token = csrf_token(client.get(path))
    return client.post(path, data={"csrf_token": token, "code": code})
