"""Subscribers' languages: the ones we have translations for, which one a browser asks
for, and the catalogs emails are rendered with.

English is the language the code and templates are written in; every other language
has a catalog in newsletter/translations/<code>/LC_MESSAGES/messages.po (compiled to
.mo beside it). A subscriber's language is stored on their subscription (None: the
default, DEFAULT_LOCALE) and every email they get speaks it.
"""

from collections.abc import MutableMapping
from functools import cache
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations
from flask import current_app
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

SOURCE_LOCALE = "en"
# Each language offered, named in itself (as a subscriber looks for it in a list).
LANGUAGES = {"en": "English", "de": "Deutsch"}
TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"
# Language tags are short (RFC 5646 allows 35 characters in practice); a longer
# value in a header is garbage, not a language.
TAG_MAX_LENGTH = 35
# Values of Accept-Language looked at: browsers send a handful.
HEADER_VALUES_LOOKED_AT = 20


def supported(tag: object) -> str | None:
    """The language we offer for a tag such as ``de``, ``de-AT`` or ``de_DE``, or None."""
    if not isinstance(tag, str) or len(tag) > TAG_MAX_LENGTH:
        return None
    tag = tag.strip().lower().replace("_", "-")
    if tag in LANGUAGES:
        return tag
    primary = tag.split("-", 1)[0]
    return primary if primary in LANGUAGES else None


def best_match(accept_language: str | None) -> str | None:
    """The language of ours a browser's Accept-Language prefers, or None when it names
    none of them (a wildcard names none: the default is for that)."""
    if not accept_language:
        return None
    accepted = parse_accept_header(accept_language[:4096], LanguageAccept)
    for tag, quality in list(accepted)[:HEADER_VALUES_LOOKED_AT]:
        language = supported(tag) if quality > 0 and tag != "*" else None
        if language:
            return language
    return None


def N_(message: str) -> str:
    """Marks a message for pybabel (which knows this name) where it is translated
    later, in a language chosen then."""
    return message


def default_locale() -> str:
    return current_app.config["DEFAULT_LOCALE"]


def subscriber_locale(stored: str | None) -> str:
    """The language a subscriber's emails speak: theirs, else the default."""
    return supported(stored) or default_locale()


def check_config(config: MutableMapping[str, Any]) -> None:
    """Refuse to start with a default language we have no translations for."""
    language = supported(config["DEFAULT_LOCALE"])
    if language is None:
        raise ValueError(
            f"DEFAULT_LOCALE={config['DEFAULT_LOCALE']!r}: use one of {', '.join(LANGUAGES)}."
        )
    config["DEFAULT_LOCALE"] = language


@cache
def catalog(locale: str) -> NullTranslations:
    """The compiled translations of a language, loaded once per process; English,
    the source language, translates to itself."""
    if locale == SOURCE_LOCALE:
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS_DIR), [locale])
