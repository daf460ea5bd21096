"""The ``List-Unsubscribe`` mailto address of a subscriber's email:
``unsubscribe+<token>@example.org``, made from LIST_UNSUBSCRIBE_MAILTO.

RFC 2369's mailto says nothing about who writes to it, and ``From:`` is anybody's to
write, so the address itself names what it unsubscribes: the token is the
subscription's random nonce, the newsletter whose email carried it (0: everything, for
the confirmation and welcome emails) and a MAC under the secret key, in lower-case
base32 (45 characters, within a local part's 64 whatever case mail systems give it).
Mail to the bare address, or to a token that does not verify, names nobody.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app

from newsletter.mail import return_path

NONCE_BYTES = return_path.NONCE_BYTES
PURPOSE = b"mailto-unsubscribe"


@dataclass(frozen=True)
class Unsubscribe:
    """What a genuine mailto address unsubscribes."""

    nonce: str
    # None: every newsletter, the whole subscription.
    newsletter_id: int | None


def check_config(config: Mapping[str, Any]) -> None:
    return_path.check_local_part(
        "LIST_UNSUBSCRIBE_MAILTO", config.get("LIST_UNSUBSCRIBE_MAILTO"), NONCE_BYTES + 4
    )


def address_for(nonce: str, newsletter_id: int | None) -> str | None:
    """The subscriber's mailto address for one newsletter's email (None: everything), or
    None when LIST_UNSUBSCRIBE_MAILTO is not set."""
    ours = current_app.config.get("LIST_UNSUBSCRIBE_MAILTO")
    if not ours:
        return None
    local, _, domain = ours.rpartition("@")
    body = bytes.fromhex(nonce) + (newsletter_id or 0).to_bytes(4, "big")
    return f"{local}+{return_path.sign(PURPOSE, body)}@{domain}"


def read(address: str) -> Unsubscribe | None:
    """What a mailto address of ours unsubscribes, if it is a genuine one."""
    ours = current_app.config.get("LIST_UNSUBSCRIBE_MAILTO")
    suffix = return_path.plus_suffix(address or "", ours)
    body = suffix and return_path.verify(PURPOSE, suffix, NONCE_BYTES + 4)
    if not body:
        return None
    newsletter_id = int.from_bytes(body[NONCE_BYTES:], "big")
    return Unsubscribe(body[:NONCE_BYTES].hex(), newsletter_id or None)
