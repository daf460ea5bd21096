"""The public archive: every digest that went out, as a page and as an Atom feed.

Everything here is keyed by the digest: its id names its page, and ``sent_digests``
is the one query the list, the feed and the pages start from, so that a filter by
newsletter goes there once there are several.
"""

import re
from dataclasses import dataclass
from xml.etree import ElementTree

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from newsletter.content.models import Digest, DigestStatus, Newsletter
from newsletter.core import markup
from newsletter.core.models import utcnow
from newsletter.core.permalinks import page_url
from newsletter.extensions import db

PAGE_SIZE = 20
FEED_SIZE = 20
ATOM = "http://www.w3.org/2005/Atom"
# Characters XML 1.0 forbids, which an admin's paste could still carry into a subject.
NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class NotInArchive(LookupError):
    """No such page of the archive, or no sent digest with that id."""


@dataclass(frozen=True)
class ArchivePage:
    digests: list[Digest]
    number: int
    pages: int


def sent_digests():
    """The digests subscribers may see again, newest first."""
    return (
        select(Digest)
        .join(Newsletter, Newsletter.id == Digest.newsletter_id)
        .where(Digest.status == DigestStatus.SENT, Newsletter.public.is_(True))
        .order_by(func.coalesce(Digest.finished_at, Digest.started_at).desc(), Digest.id.desc())
    )


def sent_digest(digest_id: int) -> Digest:
    digest = db.session.scalar(sent_digests().where(Digest.id == digest_id))
    if digest is None:
        raise NotInArchive(digest_id)
    return digest


def page(number: int) -> ArchivePage:
    """One page of the list. The count comes first, so that a page far past the end
    is refused before it becomes an OFFSET the database cannot take."""
    total = db.session.execute(
        select(func.count()).select_from(sent_digests().subquery())
    ).scalar_one()
    pages = max(1, -(-total // PAGE_SIZE))
    if not 1 <= number <= pages:
        raise NotInArchive(number)
    query = sent_digests().limit(PAGE_SIZE).offset((number - 1) * PAGE_SIZE)
    return ArchivePage(list(db.session.scalars(query)), number, pages)


def atom_feed() -> bytes:
    """The latest digests as an Atom 1.0 feed. Written with ElementTree, which escapes
    every text; a feed library would add lxml for two dozen lines."""
    config = current_app.config
    base_url = config["BASE_URL"]
    query = sent_digests().options(selectinload(Digest.posts)).limit(FEED_SIZE)
    latest = db.session.scalars(query).all()
    feed = ElementTree.Element("feed", xmlns=ATOM)
    _text(feed, "id", f"{base_url}/archive")
    _text(feed, "title", config["SITE_NAME"])
    _text(feed, "updated", _atom_date(latest[0].sent_at if latest else utcnow()))
    ElementTree.SubElement(
        feed, "link", rel="alternate", type="text/html", href=f"{base_url}/archive"
    )
    ElementTree.SubElement(
        feed, "link", rel="self", type="application/atom+xml", href=f"{base_url}/archive.atom"
    )
    _text(ElementTree.SubElement(feed, "author"), "name", config["SITE_NAME"])
    for digest in latest:
        _entry(feed, digest, base_url)
    return ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)


def _entry(feed, digest, base_url):
    entry = ElementTree.SubElement(feed, "entry")
    # The id stays when an admin edits the subject, which changes the slug.
    _text(entry, "id", f"{base_url}/archive/{digest.id}")
    _text(entry, "title", digest.subject)
    _text(entry, "updated", _atom_date(digest.sent_at))
    ElementTree.SubElement(entry, "link", rel="alternate", type="text/html", href=page_url(digest))
    summary = [markup.to_text(markup.to_html(digest.intro))] if digest.intro else []
    summary += [post.title for post in digest.posts]
    _text(entry, "summary", "\n".join(summary) or digest.subject)


def _text(parent, tag, text):
    ElementTree.SubElement(parent, tag).text = NOT_IN_XML.sub("", text)


def _atom_date(moment) -> str:
    """RFC 3339 in UTC, as Atom wants it; the database keeps naive UTC times."""
    return moment.replace(microsecond=0).isoformat() + "Z"
