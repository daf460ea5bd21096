"""A check that a sign-up comes from a person's browser, before anything is stored.

CAPTCHA_PROVIDER chooses it: ``altcha`` is a proof of work that this service
makes and verifies itself (altcha-lib-py), with nothing sent elsewhere;
``turnstile`` (Cloudflare) and ``hcaptcha`` hand the subscriber's token to the
provider's siteverify endpoint. Unset, there is no check.
"""

import hashlib
import hmac
import json
import logging
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import altcha
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.subscribers.models import SpentChallenge

log = logging.getLogger(__name__)

ALTCHA_ALGORITHM = "PBKDF2/SHA-256"
# Long enough to fill in the form after the widget solved its challenge.
ALTCHA_CHALLENGE_SECONDS = 600
# The provider must answer within this, or the sign-up is refused for now.
VERIFY_TIMEOUT_SECONDS = 5
# The field of the JSON API that carries the widget's token, whatever the provider.
API_FIELD = "captcha"

HCAPTCHA_ORIGINS = ("https://hcaptcha.com", "https://*.hcaptcha.com")
TURNSTILE_ORIGIN = "https://challenges.cloudflare.com"


@dataclass(frozen=True)
class Provider:
    name: str
    # The form field the widget fills in.
    form_field: str
    # What its widget needs from the Content-Security-Policy, on top of ours.
    csp: dict[str, tuple[str, ...]] = field(default_factory=dict)
    script_url: str | None = None
    widget_class: str | None = None
    # Where the provider checks a token; none for ALTCHA, whose tokens are checked here.
    verify_url: str = ""


PROVIDERS = {
    # The widget's CSP-friendly build runs its proof of work in a worker served from here.
    "altcha": Provider("altcha", "altcha", csp={"worker-src": ("'self'",)}),
    "turnstile": Provider(
        "turnstile",
        "cf-turnstile-response",
        csp={"script-src": (TURNSTILE_ORIGIN,), "frame-src": (TURNSTILE_ORIGIN,)},
        script_url=f"{TURNSTILE_ORIGIN}/turnstile/v0/api.js",
        widget_class="cf-turnstile",
        verify_url=f"{TURNSTILE_ORIGIN}/turnstile/v0/siteverify",
    ),
    # hCaptcha's script calls its API and loads its styles from its subdomains too.
    "hcaptcha": Provider(
        "hcaptcha",
        "h-captcha-response",
        csp={
            directive: HCAPTCHA_ORIGINS
            for directive in ("script-src", "frame-src", "style-src", "connect-src")
        },
        script_url="https://js.hcaptcha.com/1/api.js",
        widget_class="h-captcha",
        verify_url="https://api.hcaptcha.com/siteverify",
    ),
}


class CaptchaFailed(Exception):
    """The check was missing, wrong, expired or used before."""

    status = 400
    message = _l("Please complete the check that you are not a robot, then try again.")

    def __str__(self):
        return str(self.message)


class CaptchaUnavailable(CaptchaFailed):
    """The provider did not answer: the sign-up is refused (fail closed), for now."""

    status = 503
    message = _l(
        "The check that you are not a robot cannot be completed right now. "
        "Please try again in a few minutes."
    )


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse to start with a provider we do not know or one without its keys, rather
    than run without the check that the operator asked for."""
    name = config["CAPTCHA_PROVIDER"]
    if name and name not in PROVIDERS:
        raise ValueError(
            f"CAPTCHA_PROVIDER={name!r}: use one of {', '.join(PROVIDERS)}, or leave it unset."
        )
    needs_keys = name in PROVIDERS and PROVIDERS[name].verify_url
    if needs_keys and not (config["CAPTCHA_SITE_KEY"] and config["CAPTCHA_SECRET_KEY"]):
        raise ValueError(f"CAPTCHA_PROVIDER={name} needs CAPTCHA_SITE_KEY and CAPTCHA_SECRET_KEY.")


def provider() -> Provider | None:
    return PROVIDERS.get(current_app.config["CAPTCHA_PROVIDER"])


def check(token: object, ip: str | None) -> None:
    """Raise CaptchaFailed unless ``token`` (from the form or the API) passes the
    provider's check; nothing to do when no provider is set."""
    chosen = provider()
    if chosen is None:
        return
    if not isinstance(token, str) or not token:
        raise CaptchaFailed()
    if chosen.name == "altcha":
        _check_altcha(token)
    else:
        _check_with_provider(chosen, token, ip)


def altcha_key() -> str:
    """ALTCHA_HMAC_KEY, or a key of its own derived from the secret key."""
    config = current_app.config
    derived = hmac.new(config["SECRET_KEY"].encode(), b"altcha challenges", hashlib.sha256)
    return config["ALTCHA_HMAC_KEY"] or derived.hexdigest()


def new_altcha_challenge() -> dict:
    """A fresh challenge for the widget, signed and short-lived."""
    challenge = altcha.create_challenge(
        ALTCHA_ALGORITHM,
        current_app.config["ALTCHA_COST"],
        expires_at=int(time.time()) + ALTCHA_CHALLENGE_SECONDS,
        hmac_secret=altcha_key(),
    )
    return challenge.to_dict()


def _check_altcha(payload: str) -> None:
    result = altcha.verify_solution(payload, altcha_key())
    if not result.verified:
        raise CaptchaFailed()
    challenge = altcha.Payload.from_base64(payload).challenge
    # Ours always carry both, under the key that verify_solution checked.
    if challenge.signature is None or challenge.parameters.expires_at is None:
        raise CaptchaFailed()
    _spend(challenge.signature, challenge.parameters.expires_at)


def _spend(signature: str, expires_at: int) -> None:
    """Record a solved challenge; CaptchaFailed if it was solved before. Challenges
    past their expiry are dropped, since verifying refuses them anyway."""
    now = utcnow()
    db.session.execute(delete(SpentChallenge).where(SpentChallenge.expires_at < now))
    try:
        db.session.execute(
            insert(SpentChallenge).values(
                signature=signature,
                expires_at=datetime.fromtimestamp(expires_at, UTC).replace(tzinfo=None),
            )
        )
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise CaptchaFailed() from None


def _check_with_provider(chosen: Provider, token: str, ip: str | None) -> None:
    config = current_app.config
    fields = {"secret": config["CAPTCHA_SECRET_KEY"], "response": token}
    if chosen.name == "hcaptcha":
        fields["sitekey"] = config["CAPTCHA_SITE_KEY"]
    if ip:
        fields["remoteip"] = ip
    request = urllib.request.Request(
        config["CAPTCHA_VERIFY_URL"] or chosen.verify_url,
        data=urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=VERIFY_TIMEOUT_SECONDS) as response:
            answer = json.load(response)
    except (OSError, ValueError) as error:
        # OSError covers refused connections, timeouts and HTTP errors; ValueError, an
        # answer that is no JSON.
        log.warning("%s siteverify failed: %s", chosen.name, error)
        raise CaptchaUnavailable() from None
    if not (isinstance(answer, dict) and answer.get("success") is True):
        raise CaptchaFailed()
