"""Signed links. Each purpose has its own salt, so a token made for one purpose
never works for another; each token names the subscription by its nonce and, when
it comes from one newsletter's email, that newsletter."""

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from flask import current_app
from itsdangerous import (
    BadSignature,
    SignatureExpired,
    Signer,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
    base64_encode,
)

from newsletter.secret_box import signing_keys

if TYPE_CHECKING:
    from newsletter.subscribers.models import Subscriber

CONFIRM = "confirm"
UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"
# A preferences link made on the page an unsubscribe link leads to. It changes the
# newsletters, name and language, but never downloads or erases the subscriber's data:
# unsubscribe links never expire and travel in forwarded mail. Its own salt keeps it
# from ever passing for a PREFERENCES link, which only email carries.
PREFERENCES_FROM_UNSUBSCRIBE = "preferences-from-unsubscribe"
# A tracked digest's links and pixel (engagement): untimed, so shorter, and they never
# act on anything but a count.
CLICK = "click"
OPEN = "open"
# The link position a click token names for the trap link, which no person follows
# (engagement/rules.py); the digest's own links start at 1.
TRAP_POSITION = 0


class TokenInvalid(Exception):
    """The token was tampered with or was made for another purpose."""


@dataclass(frozen=True)
class Link:
    """What a genuine token names."""

    nonce: str
    # The newsletter whose email carried the link; None: the whole subscription.
    newsletter_id: int | None
    issued_at: datetime


class TokenExpired(Exception):
    """The token is genuine but too old; ``nonce`` still names its subscription."""

    def __init__(self, nonce):
        super().__init__("expired")
        self.nonce = nonce


class KeyCaching:
    """Derives each key once; itsdangerous derives it again for every signature."""

    def derive_key(self, secret_key=None):
        derived = self.__dict__.setdefault("_derived_keys", {})
        if secret_key not in derived:
            derived[secret_key] = super().derive_key(secret_key)
        return derived[secret_key]


class KeyCachingSigner(KeyCaching, TimestampSigner):
    pass


class KeyCachingUntimedSigner(KeyCaching, Signer):
    pass


class SignerPerSalt:
    """One signer per salt, made once: a digest makes several links per subscriber, and
    remaking the signer for each was a tenth of the cost of a message. The links are
    the ones itsdangerous makes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._signers = {}

    def make_signer(self, salt=None):
        if salt not in self._signers:
            self._signers[salt] = super().make_signer(salt)
        return self._signers[salt]


class LinkSerializer(SignerPerSalt, URLSafeTimedSerializer):
    """itsdangerous' URL-safe timed serializer, its signers made once."""

    default_signer = KeyCachingSigner


class UntimedSerializer(SignerPerSalt, URLSafeSerializer):
    """itsdangerous' URL-safe serializer without a timestamp, its signers made once."""

    default_signer = KeyCachingUntimedSigner


UNTIMED = {CLICK, OPEN}


def _serializer(purpose):
    serializers = current_app.extensions.setdefault("newsletter.serializers", {})
    if purpose not in serializers:
        kind = UntimedSerializer if purpose in UNTIMED else LinkSerializer
        serializers[purpose] = kind(signing_keys(current_app.config), salt=f"newsletter.{purpose}")
    return serializers[purpose]


def serializer(purpose: str) -> LinkSerializer:
    """The signer of one purpose's links, for links that name something other than a
    subscriber (an admin's invitation): its own salt, the same keys and rotation."""
    return _serializer(purpose)


def make_token(purpose: str, subscriber: "Subscriber") -> str:
    return make_token_for(purpose, subscriber.token_nonce)


def make_token_for(purpose: str, nonce: str, newsletter_id: int | None = None) -> str:
    """A link's token: it names the subscription by its random nonce, never by its
    row id, so that links tell nobody how many subscribers the list has; and the
    newsletter, when the link is for one newsletter's email."""
    return _serializer(purpose).dumps(_payload(nonce, newsletter_id))


def make_tokens_for(
    purposes: list[str], nonce: str, newsletter_id: int | None = None
) -> dict[str, str]:
    """Tokens for several purposes at once, the same as ``make_token_for`` makes each:
    the payload is encoded once and only signed once per purpose."""
    serializers = {purpose: _serializer(purpose) for purpose in purposes}
    payload = serializers[purposes[0]].dump_payload(_payload(nonce, newsletter_id))
    return {
        purpose: serializer.make_signer().sign(payload).decode("ascii")
        for purpose, serializer in serializers.items()
    }


def _payload(nonce: str, newsletter_id: int | None):
    # The newsletter goes second, so that the payload is never taken for the legacy
    # [subscriber id, nonce] form, whose string comes second.
    return nonce if newsletter_id is None else [nonce, newsletter_id]


def read_token(purpose: str, token: str, max_age: int | None = None) -> str:
    """The nonce of the subscription the token names; raise TokenExpired or TokenInvalid."""
    return read_link(purpose, token, max_age).nonce


def read_link(purpose: str, token: str, max_age: int | None = None) -> Link:
    """What the token names; raise TokenExpired or TokenInvalid."""
    serializer = _serializer(purpose)
    try:
        payload, issued_at = serializer.loads(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired as expired:
        raise TokenExpired(_named(serializer.load_payload(expired.payload))[0]) from None
    except BadSignature:
        raise TokenInvalid() from None
    return Link(*_named(payload), issued_at)


def _named(payload: object) -> tuple[str, int | None]:
    """The nonce and the newsletter (None: none) a token's payload names."""
    match payload:
        case str() if payload:
            return payload, None
        # Links sent before tokens were made opaque carry [subscriber id, nonce].
        case [int(), str() as nonce] if nonce:
            return nonce, None
        case [str() as nonce, int() as newsletter_id] if nonce and type(newsletter_id) is int:
            return nonce, newsletter_id
    raise TokenInvalid()


@dataclass(frozen=True)
class Tracked:
    """What a genuine click or open token names: one copy of one digest, and for a
    click the position of its link (0: the trap)."""

    digest_id: int
    nonce: str
    newsletter_id: int
    position: int | None = None


def make_tracking_tokens(
    digest_id: int, positions: list[int], nonce: str, newsletter_id: int
) -> tuple[dict[int, str], str]:
    """One copy's click tokens, by link position, and its open token.

    Each is what the CLICK serializer makes of [digest, newsletter, nonce, position], and
    reads back, but made faster than it would, as a digest makes several per copy: the
    JSON before the position is padded with spaces to whole base64 groups, so it is
    encoded and fed to the HMAC once per copy, and each link adds only its own end."""
    signer = _serializer(CLICK).make_signer()
    head = f'[{digest_id},{newsletter_id},"{nonce}",'.encode()
    encoded_head = base64_encode(head + b" " * (-len(head) % 3))
    mac = hmac.new(signer.derive_key(), encoded_head, signer.digest_method)
    made = {}
    for position in positions:
        tail = base64_encode(f"{position}]".encode())
        signature = mac.copy()
        signature.update(tail)
        made[position] = b"".join(
            (encoded_head, tail, signer.sep, base64_encode(signature.digest()))
        ).decode("ascii")
    return made, _serializer(OPEN).dumps([digest_id, nonce, newsletter_id])


def read_tracked(purpose: str, token: str) -> Tracked:
    """What a CLICK or OPEN token names; TokenInvalid for any other."""
    try:
        payload = _serializer(purpose).loads(token)
    except BadSignature:
        raise TokenInvalid() from None
    match purpose, payload:
        case "click", [int() as digest, int() as newsletter, str() as nonce, int() as position]:
            return Tracked(digest, nonce, newsletter, position)
        case "open", [int() as digest, str() as nonce, int() as newsletter]:
            return Tracked(digest, nonce, newsletter)
    raise TokenInvalid()


CODE_DIGITS = 6


def confirmation_code(subscriber_id: int, nonce: str, key: str | None = None) -> str:
    """The 6-digit code a confirmation email carries beside its link, for subscribers
    whose links a mail filter mangles. Derived, not stored: it belongs to the
    subscription (its nonce) and to the secret key, like the link."""
    key = key or current_app.config["SECRET_KEY"]
    digest = hmac.digest(
        key.encode(), f"newsletter.confirm-code:{subscriber_id}:{nonce}".encode(), "sha256"
    )
    return f"{int.from_bytes(digest[:8], 'big') % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


def code_matches(code: str, subscriber_id: int, nonce: str) -> bool:
    """Whether ``code`` is this subscription's code under any key that still verifies."""
    if not code.isascii():
        # compare_digest refuses non-ASCII text (a TypeError), and no such code is ours.
        return False
    return any(
        hmac.compare_digest(code, confirmation_code(subscriber_id, nonce, key))
        for key in signing_keys(current_app.config)
    )
