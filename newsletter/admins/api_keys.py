"""API keys: what scripts send to use /api/v1 instead of an admin's session.

A key is ``nl_`` and 43 characters of URL-safe base64 (32 random bytes), so that it is
recognisable in a config file or a leaked log. Only its SHA-256 is stored: looking
the hash up is the comparison, so no key is compared character by character, and a
copy of the database holds no usable key.

A key may use only its scopes (none named: all of them) and only until it expires:
a script that syncs a CRM needs no power to send digests or add webhooks, and a leaked
key for a one-off job should stop working by itself.
"""

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from newsletter.admins import audit
from newsletter.admins.models import ApiKey
from newsletter.core.models import utcnow
from newsletter.core.writes import rows_changed
from newsletter.extensions import db

KEY_PREFIX = "nl_"
SHOWN_PREFIX_LENGTH = 8
NAME_MAX_LENGTH = 100
# last_used_at is written at most this often per key, so that a busy script does not
# turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# What each scope lets a key do; each /api/v1 route names the one it needs.
SCOPES = {
    "subscribers:read": "list and read subscribers (personal data)",
    "subscribers:write": "add, change, unsubscribe and erase subscribers",
    "digests:read": "read posts and digests",
    "digests:write": "make, send, schedule, pause and resume digests",
    "newsletters:read": "read newsletters",
    "newsletters:write": "make and change newsletters",
    "webhooks:write": "add outgoing webhooks (which receive subscribers' addresses)",
}
# A key lasts at most this long: a date past it would not fit the database.
MAX_DAYS = 3650


class InvalidKeyName(ValueError):
    """The key cannot be made as asked (its name, scopes or expiry); the message says why."""


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(
    name: str, scopes: list[str] | None = None, expires_in_days: int | None = None
) -> tuple[ApiKey, str]:
    """A new key named ``name`` that may use ``scopes`` (none: every scope) for
    ``expires_in_days`` (None: for good), and the key itself, never available again."""
    name = " ".join((name or "").split())
    if not name or len(name) > NAME_MAX_LENGTH:
        raise InvalidKeyName(f"Give the key a name of 1 to {NAME_MAX_LENGTH} characters.")
    unknown = sorted(set(scopes or ()) - SCOPES.keys())
    if unknown:
        raise InvalidKeyName(
            f"Unknown scope {', '.join(unknown)}; the scopes are {', '.join(SCOPES)}."
        )
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_DAYS:
        raise InvalidKeyName(f"A key expires in 1 to {MAX_DAYS} days.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        name=name,
        key_hash=key_hash(key),
        prefix=key[:SHOWN_PREFIX_LENGTH],
        # Kept in the order of SCOPES, each once, so that the list reads the same everywhere.
        scopes=" ".join(scope for scope in SCOPES if scope in scopes) if scopes else None,
        expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    db.session.add(api_key)
    db.session.flush()
    audit.record("api_keys.create", _label(api_key), f"scopes: {' '.join(scopes_of(api_key))}")
    return api_key, key


def _label(api_key: ApiKey) -> str:
    return f"{api_key.name} ({api_key.prefix}…)"


def scopes_of(api_key: ApiKey) -> list[str]:
    """The scopes a key may use: those it was made with, or all of them."""
    return api_key.scopes.split() if api_key.scopes else list(SCOPES)


def allows(api_key: ApiKey, scope: str) -> bool:
    return scope in scopes_of(api_key)


def authenticate(key: str) -> ApiKey | None:
    """The unrevoked, unexpired key that ``key`` is, noting that it was used; None if
    there is none."""
    now = utcnow()
    api_key = db.session.scalar(
        select(ApiKey).where(
            ApiKey.key_hash == key_hash(key),
            ApiKey.revoked_at.is_(None),
            ApiKey.expires_at.is_(None) | (ApiKey.expires_at > now),
        )
    )
    if api_key is None:
        return None
    if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
        api_key.last_used_at = now
        db.session.commit()
    return api_key


def all_keys() -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke(key_id: int) -> None:
    """Stop a key working at once; it stays listed, revoked. Revoking twice changes nothing."""
    revoked = rows_changed(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if revoked:
        audit.record("api_keys.revoke", _label(db.session.get_one(ApiKey, key_id)))
    db.session.commit()
