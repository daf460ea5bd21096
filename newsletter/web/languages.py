"""Which language a page speaks: Flask-Babel asks ``select_locale`` once per request."""

from flask import g, has_request_context, request
from flask_babel import get_locale, refresh

from newsletter.core import i18n

# The admin's pages, and whatever answers machines, are written in English only.
ENGLISH_ONLY = {"admin", "admin_api", "outbox_viewer", "health", "webhooks"}


def select_locale() -> str:
    """A subscriber's own page speaks their language; any other page the browser's
    best match among ours; else the default. Outside a request (commands): English."""
    if not has_request_context() or request.blueprint in ENGLISH_ONLY:
        return i18n.SOURCE_LOCALE
    return g.get("subscriber_locale") or browser_locale() or i18n.default_locale()


def browser_locale() -> str | None:
    return i18n.best_match(request.headers.get("Accept-Language"))


def speak_to(subscriber) -> None:
    """Render the rest of this request in the language a subscriber chose, if any."""
    chosen = i18n.supported(subscriber.locale)
    if chosen:
        g.subscriber_locale = chosen
        refresh()


def page_language() -> str:
    """The page's language, for ``<html lang>``."""
    return str(get_locale())
