"""A sent digest's permanent address: its archive page, as emails, the feed and the
archive's own routes name it. Here, below ``mail``, so that a digest email links to its
page without reaching up into the archive."""

import re
import unicodedata

from flask import current_app

SLUG_LENGTH = 60


def slug(subject: str) -> str:
    """The subject in lowercase ASCII words joined by hyphens, for a readable URL."""
    ascii_subject = unicodedata.normalize("NFKD", subject).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_subject.lower()).strip("-")
    return words[:SLUG_LENGTH].rstrip("-") or "digest"


def page_url(digest) -> str:
    """The digest's archive page (the route is in web/archive.py), from BASE_URL, as
    emails and the feed link to it: they are read away from any request."""
    return f"{current_app.config['BASE_URL']}/archive/{digest.id}-{slug(digest.subject)}"
