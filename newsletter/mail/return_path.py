"""Each email's return path and Message-ID, both signed so that what comes back about
an email names its subscriber verifiably, and nothing else does.

With BOUNCE_ADDRESS set, the return path is a VERP form of it,
``bounces+<token>@example.org``: a bounce comes back to it whatever it quotes of the
message, and a complaint report usually quotes it (Original-Mail-From). Without it,
the sender's own address. The Message-ID is ``<token@sender's domain>`` with the same
token, so that a report which keeps only the quoted original's Message-ID (Yahoo's
and Microsoft's complaint reports, redacted delivery reports) names the subscriber too.

The token is the subscription's random nonce, what the message was (a digest and its
id, or an email job and its id, masked under the secret key so that no row id shows)
and a MAC under the secret key, in lower-case base32:
47 characters, within SMTP's 64 for a local part however mail systems fold its case.
Nobody can make one for another subscriber; the first of ``signing_keys`` signs and all of
them verify, so the secret key rotates without orphaning mail already sent.
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app

from newsletter.secret_box import signing_keys

DIGEST = b"d"
EMAIL_JOB = b"j"
MAC_BYTES = 8
NONCE_BYTES = 16
# The MAC's purpose: a token made for one use never verifies for another.
PURPOSE = b"return-path"
MAX_LOCAL_PART = 64


@dataclass(frozen=True)
class Reference:
    """What a return path or Message-ID names."""

    nonce: str
    # DIGEST or EMAIL_JOB, and that row's id.
    kind: bytes
    row_id: int


def token_length(body_bytes: int) -> int:
    """Characters of a token over a body of ``body_bytes`` bytes (base32 of it and its MAC)."""
    return -(-(body_bytes + MAC_BYTES) * 8 // 5)


def check_local_part(setting: str, address: str | None, body_bytes: int) -> None:
    """Refuse to start when ``address``'s ``local+token`` would pass SMTP's 64 characters:
    mail systems would refuse or cut it, and its token would verify nothing."""
    if not address:
        return
    local = address.rpartition("@")[0]
    longest = MAX_LOCAL_PART - token_length(body_bytes) - 1
    if len(local) > longest:
        raise ValueError(
            f"{setting}: the part before the @ may have {longest} characters at most, "
            f"since a token of {token_length(body_bytes)} follows it (SMTP allows 64)"
        )


def check_config(config: Mapping[str, Any]) -> None:
    check_local_part("BOUNCE_ADDRESS", config.get("BOUNCE_ADDRESS"), NONCE_BYTES + 5)


def token(nonce: str, kind: bytes, row_id: int) -> str:
    """The signed token naming a subscriber's message (a digest's copy, an email job's)."""
    return sign(PURPOSE, bytes.fromhex(nonce) + kind + row_id.to_bytes(4, "big"))


def read_token(text: str) -> Reference | None:
    """What a token names, if it is a genuine one of ours."""
    body = verify(PURPOSE, text, NONCE_BYTES + 5)
    if body is None:
        return None
    return Reference(
        body[:NONCE_BYTES].hex(),
        body[NONCE_BYTES : NONCE_BYTES + 1],
        int.from_bytes(body[NONCE_BYTES + 1 :], "big"),
    )


def for_message(nonce: str, kind: bytes, row_id: int) -> str | None:
    """The return path for a message, or None when BOUNCE_ADDRESS is not set."""
    bounce_address = current_app.config["BOUNCE_ADDRESS"]
    if not bounce_address:
        return None
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{token(nonce, kind, row_id)}@{domain}"


def read(address: str) -> Reference | None:
    """What a VERP form of BOUNCE_ADDRESS names, if it is a genuine one."""
    suffix = plus_suffix(address or "", current_app.config["BOUNCE_ADDRESS"])
    return read_token(suffix) if suffix else None


def message_id(nonce: str, kind: bytes, row_id: int, domain: str) -> str:
    """The Message-ID of a subscriber's message: the same every time it is made, so a copy
    sent twice after a crash is one message to mail clients."""
    return f"<{token(nonce, kind, row_id)}@{domain}>"


def read_message_id(value: str | None) -> Reference | None:
    """What a Message-ID of ours names; None for any other, and for the sequential
    ``digest.<id>.<time>.<subscriber id>@`` ones of old mail, which anybody can make."""
    local, at, _domain = (value or "").strip().strip("<>").rpartition("@")
    return read_token(local) if at else None


def plus_suffix(address: str, ours: str | None) -> str | None:
    """The ``+suffix`` of a form of our address ``ours`` (any case), else None."""
    if not ours:
        return None
    local, _, domain = ours.rpartition("@")
    their_local, _, their_domain = address.strip().strip("<>").rpartition("@")
    prefix = f"{local}+".lower()
    if their_domain.lower() != domain.lower() or not their_local.lower().startswith(prefix):
        return None
    return their_local[len(prefix) :]


def sign(purpose: bytes, body: bytes) -> str:
    """``body`` (a subscriber's nonce, then the ids of what it names) and its MAC under the
    signing key, as a lower-case base32 local part. The ids are masked under the key, so
    a token shows no row id, nor how many digests or emails came before."""
    key = current_app.config["SECRET_KEY"]
    masked = _masked(key, purpose, body)
    return base64.b32encode(masked + _mac(key, purpose, body)).decode().rstrip("=").lower()


def verify(purpose: bytes, text: str, length: int) -> bytes | None:
    """The body of a token ``sign`` made for ``purpose`` of ``length`` bytes, under any
    key that still verifies; None for anything else."""
    encoded = text.upper()
    if not encoded.isascii():
        return None
    try:
        data = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    except ValueError:
        return None
    masked, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
    if len(masked) != length:
        return None
    for key in signing_keys(current_app.config):
        body = _masked(key, purpose, masked)
        if hmac.compare_digest(mac, _mac(key, purpose, body)):
            return body
    return None


def _masked(key: str, purpose: bytes, body: bytes) -> bytes:
    """``body`` with what follows its nonce XORed with a pad drawn from the key and the
    nonce: the same call masks and unmasks."""
    nonce, ids = body[:NONCE_BYTES], body[NONCE_BYTES:]
    pad = hmac.digest(key.encode(), b"mask:" + purpose + nonce, hashlib.sha256)[: len(ids)]
    return nonce + bytes(a ^ b for a, b in zip(ids, pad, strict=True))


def _mac(key: str, purpose: bytes, body: bytes) -> bytes:
    return hmac.digest(key.encode(), purpose + body, hashlib.sha256)[:MAC_BYTES]
