"""Addresses and names as subscribers type them, made safe and comparable."""

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import lazy_gettext as _l

NAME_MAX_LENGTH = 100


class InvalidSignup(ValueError):
    """The sign-up data is unusable; the message says why, for the subscriber, in the
    language of the page (translated when it is shown)."""


def normalize_email(raw: str | None) -> str:
    """The address as we store it: validated, IDN domain decoded, lower-cased.

    The whole address is lower-cased so that ``Ann@x.org`` and ``ann@x.org`` are
    one subscription; mail systems that treat the local part's case as
    significant are vanishingly rare.
    """
    raw = (raw or "").strip()
    if not raw:
        raise InvalidSignup(_l("Please enter your email address."))
    try:
        info = validate_email(
            raw, check_deliverability=current_app.config["EMAIL_CHECK_DELIVERABILITY"]
        )
    except EmailNotValidError as error:
        raise InvalidSignup(
            _l("That email address is not valid: %(reason)s", reason=str(error))
        ) from None
    return info.normalized.lower()


# A scheme, "www.", an @, a host with a path, or a host under a common top-level domain.
WEB_ADDRESS = re.compile(
    r"[a-z][a-z0-9+.-]*:/|www\.|@|\w\.[a-z]{2,}/"
    r"|\w\.(com|net|org|info|biz|io|co|me|ru|cn|xyz|top|link|click|online|site|shop)\b",
    re.IGNORECASE,
)


# Control and format characters, and lone surrogates (JSON can carry them; no mail
# header, database or UTF-8 can).
UNSAFE_IN_NAMES = {"Cc", "Cf", "Cs"}


def clean_name(raw: str | None) -> str:
    """A display name that is safe in a mail header: no line breaks or control characters."""
    name = " ".join((raw or "").split())
    if any(unicodedata.category(char) in UNSAFE_IN_NAMES for char in name) or any(
        char in (raw or "") for char in "\r\n"
    ):
        raise InvalidSignup(_l("The name must be a single line of ordinary text."))
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidSignup(
            _l("The name may be at most %(count)d characters long.", count=NAME_MAX_LENGTH)
        )
    if WEB_ADDRESS.search(name):
        # The name is mailed to the address given: a sign-up bomb would carry its ad.
        raise InvalidSignup(_l("Please leave web and email addresses out of the name."))
    return name
