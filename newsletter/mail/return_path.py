"""Each email's return path. With BOUNCE_ADDRESS set, a VERP form of it,
``bounces+<token>@example.org``, whose token names the reader and the message: a
bounce comes back to it whatever it quotes of the message, and a complaint report
usually quotes it (Original-Mail-From). Without it, the sender's own address.

The token is the subscription's random nonce, what the message was (a digest and its
id, or an email job and its id) and a MAC under the secret key, in lower-case base32:
47 characters, within SMTP's 64 for a local part however mail systems fold its case.
Nobody can make one for another reader, and none tells a row id to anyone who
cannot read it already.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass

from flask import current_app

from newsletter.tokens import signing_keys

DIGEST = b"d"
EMAIL_JOB = b"j"
MAC_BYTES = 8
NONCE_BYTES = 16


@dataclass(frozen=True)
class Reference:
    """What a return path names."""

    nonce: str
    # DIGEST or EMAIL_JOB, and that row's id.
    kind: bytes
    row_id: int


def for_message(nonce: str, kind: bytes, row_id: int) -> str | None:
    """The return path for a message, or None when BOUNCE_ADDRESS is not set."""
    bounce_address = current_app.config["BOUNCE_ADDRESS"]
    if not bounce_address:
        return None
    local, _, domain = bounce_address.rpartition("@")
    body = bytes.fromhex(nonce) + kind + row_id.to_bytes(4, "big")
    token = base64.b32encode(body + _mac(current_app.config["SECRET_KEY"], body))
    return f"{local}+{token.decode().rstrip('=').lower()}@{domain}"


def read(address: str) -> Reference | None:
    """What a VERP form of BOUNCE_ADDRESS names, if it is a genuine one."""
    bounce_address = current_app.config["BOUNCE_ADDRESS"]
    if not bounce_address or not address:
        return None
    local, _, domain = bounce_address.rpartition("@")
    their_local, _, their_domain = address.strip().strip("<>").rpartition("@")
    prefix = f"{local}+".lower()
    if their_domain.lower() != domain.lower() or not their_local.lower().startswith(prefix):
        return None
    token = their_local[len(prefix) :].upper()
    try:
        data = base64.b32decode(token + "=" * (-len(token) % 8))
    except ValueError:
        return None
    body, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
    if len(body) != NONCE_BYTES + 5 or not any(
        hmac.compare_digest(mac, _mac(key, body)) for key in signing_keys(current_app.config)
    ):
        return None
    return Reference(
        body[:NONCE_BYTES].hex(),
        body[NONCE_BYTES : NONCE_BYTES + 1],
        int.from_bytes(body[NONCE_BYTES + 1 :], "big"),
    )


def _mac(key: str, body: bytes) -> bytes:
    return hmac.digest(key.encode(), b"return-path" + body, hashlib.sha256)[:MAC_BYTES]
