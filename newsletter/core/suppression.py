"""The suppression list: a keyed hash (HMAC-SHA256 under the secret key) of each
address never to mail again (erased, or stopped by a bounce or complaint), so nobody can
read the address back. Here, below ``sending``, because the send path, sign-up, import
and the bounce policy all ask it."""

import hashlib
import hmac

from flask import current_app
from sqlalchemy import bindparam, exists, select

from newsletter.core.models import SuppressedAddress
from newsletter.extensions import db
from newsletter.secret_box import signing_keys


def address_hash(address: str, key: str | None = None) -> str:
    key = key or current_app.config["SECRET_KEY"]
    return hmac.digest(key.encode(), address.encode(), hashlib.sha256).hex()


# Built once and run on the session's connection: a sign-up asks it every time, and
# the ORM's path would cost more than the lookup.
_SUPPRESSED = select(SuppressedAddress.__table__.c.address_hash).where(
    SuppressedAddress.__table__.c.address_hash.in_(bindparam("hashes", expanding=True))
)


# A condition for statements that take an address's ``hashes`` (address_hashes): the
# address was never erased.
NOT_SUPPRESSED = ~exists().where(
    SuppressedAddress.__table__.c.address_hash.in_(bindparam("hashes", expanding=True))
)


def address_hashes(address: str) -> list[str]:
    """The address's hash under each key that still verifies: it was erased under one."""
    return [address_hash(address, key) for key in signing_keys(current_app.config)]


def suppressed(addresses: list[str]) -> set[str]:
    """Those of ``addresses`` (normalized) that were erased, under any key that still
    verifies."""
    if not addresses:
        return set()
    by_hash = {digest: address for address in addresses for digest in address_hashes(address)}
    found = db.session.connection().execute(_SUPPRESSED, {"hashes": list(by_hash)}).scalars()
    return {by_hash[digest] for digest in found}
