"""Signed links. Each purpose has its own salt, so a token made for one purpose
never works for another; each token names the subscription and its nonce."""

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CONFIRM = "confirm"
UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"


class TokenInvalid(Exception):
    """The token was tampered with or was made for another purpose."""


class TokenExpired(Exception):
    """The token is genuine but too old; ``subscriber_id`` and ``nonce`` are still known."""

    def __init__(self, subscriber_id, nonce):
        super().__init__("expired")
        self.subscriber_id = subscriber_id
        self.nonce = nonce


def signing_keys(config):
    """All keys that verify, oldest first: itsdangerous signs with the last one.

    ``SECRET_KEY`` signs; ``SECRET_KEY_FALLBACKS`` (from the comma-separated
    environment value) still verify, so keys rotate without breaking links.
    """
    return [*reversed(config.get("SECRET_KEY_FALLBACKS") or []), config["SECRET_KEY"]]


def _serializer(purpose):
    serializers = current_app.extensions.setdefault("newsletter.serializers", {})
    if purpose not in serializers:
        serializers[purpose] = URLSafeTimedSerializer(
            signing_keys(current_app.config), salt=f"newsletter.{purpose}"
        )
    return serializers[purpose]


def make_token(purpose, subscriber):
    return make_token_for(purpose, subscriber.id, subscriber.token_nonce)


def make_token_for(purpose, subscriber_id, nonce):
    return _serializer(purpose).dumps([subscriber_id, nonce])


def read_token(purpose, token, max_age=None):
    """Return ``(subscriber_id, nonce)``; raise TokenExpired or TokenInvalid."""
    serializer = _serializer(purpose)
    try:
        payload = serializer.loads(token, max_age=max_age)
    except SignatureExpired as expired:
        subscriber_id, nonce = _unpack(serializer.load_payload(expired.payload))
        raise TokenExpired(subscriber_id, nonce) from None
    except BadSignature:
        raise TokenInvalid() from None
    return _unpack(payload)


def _unpack(payload):
    try:
        subscriber_id, nonce = payload
    except (TypeError, ValueError):
        raise TokenInvalid() from None
    if not isinstance(subscriber_id, int) or not isinstance(nonce, str):
        raise TokenInvalid()
    return subscriber_id, nonce
