"""API keys: what scripts send to use /api/v1 instead of an admin's session.

A key is ``nl_`` and 43 characters of URL-safe base64 (32 random bytes), so that it is
recognisable in a config file or a leaked log. Only its SHA-256 is stored: looking
the hash up is the comparison, so no key is compared character by character, and a
copy of the database holds no usable key.
"""

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from newsletter.extensions import db
from newsletter.models import ApiKey, utcnow

KEY_PREFIX = "nl_"
SHOWN_PREFIX_LENGTH = 8
NAME_MAX_LENGTH = 100
# last_used_at is written at most this often per key, so that a busy script does not
# turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidKeyName(ValueError):
    """The name cannot be given to a key; the message says why."""


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(name: str) -> tuple[ApiKey, str]:
    """A new key named ``name``, and the key itself, which is never available again."""
    name = " ".join((name or "").split())
    if not name or len(name) > NAME_MAX_LENGTH:
        raise InvalidKeyName(f"Give the key a name of 1 to {NAME_MAX_LENGTH} characters.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(name=name, key_hash=key_hash(key), prefix=key[:SHOWN_PREFIX_LENGTH])
    db.session.add(api_key)
    db.session.commit()
    return api_key, key


def authenticate(key: str) -> ApiKey | None:
    """The unrevoked key that ``key`` is, noting that it was used; None if there is none."""
    api_key = db.session.scalar(
        select(ApiKey).where(ApiKey.key_hash == key_hash(key), ApiKey.revoked_at.is_(None))
    )
    if api_key is None:
        return None
    now = utcnow()
    if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
        api_key.last_used_at = now
        db.session.commit()
    return api_key


def all_keys() -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke(key_id: int) -> None:
    """Stop a key working at once; it stays listed, revoked. Revoking twice changes nothing."""
    db.session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    db.session.commit()
