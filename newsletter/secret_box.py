"""Secrets we must read back (TOTP seeds, webhook signing secrets), kept encrypted at
rest: a copy of the database, a backup or a template that reads a row gets ciphertext.

The key comes from SECRET_KEY through HKDF, salted by purpose, so one secret's key
opens nothing else and no key is SECRET_KEY itself. Fernet (AES-128-CBC and
HMAC-SHA256) under a MultiFernet of every key in the rotation list: the first key
encrypts, all of them decrypt, so SECRET_KEY="new,old" keeps every stored secret
readable; a secret is sealed under the new key when it is next written.
"""

import base64
from collections.abc import Mapping
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

TOTP = "admin.totp_secret"
WEBHOOK = "webhook_endpoint.secret"
# Fernet's token for the longest secret we keep (a 40-character whsec_): 140 characters.
SEALED_LENGTH = 255


def signing_keys(config: Mapping[str, Any]) -> list[str]:
    """All keys that verify, oldest first: itsdangerous signs with the last one.

    ``SECRET_KEY`` signs; ``SECRET_KEY_FALLBACKS`` (from the comma-separated
    environment value) still verify, so keys rotate without breaking links.
    """
    return [*reversed(config.get("SECRET_KEY_FALLBACKS") or []), config["SECRET_KEY"]]


class CannotOpen(ValueError):
    """A sealed value that no key in SECRET_KEY opens: the key it was sealed with is gone."""


def seal(plaintext: str, purpose: str, keys: list[str] | None = None) -> str:
    """``plaintext`` encrypted under the newest key, for ``purpose``."""
    return _box(purpose, tuple(keys or _keys())).encrypt(plaintext.encode()).decode()


def open_sealed(sealed: str, purpose: str, keys: list[str] | None = None) -> str:
    """The plaintext of a ``seal``; raises CannotOpen if no key opens it."""
    try:
        return _box(purpose, tuple(keys or _keys())).decrypt(sealed.encode()).decode()
    except InvalidToken as error:
        raise CannotOpen(purpose) from error


def _keys() -> list[str]:
    # Newest first: MultiFernet encrypts with the first.
    return list(reversed(signing_keys(current_app.config)))


@cache
def _box(purpose: str, keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_derived(key, purpose)) for key in keys])


def _derived(key: str, purpose: str) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=f"newsletter.secret_box.{purpose}".encode(),
        info=b"fernet",
    )
    return base64.urlsafe_b64encode(hkdf.derive(key.encode()))
