"""The site's articles: pulled from its RSS/Atom feed, sanitized, deduplicated."""

import calendar
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import feedparser
import nh3
from sqlalchemy import or_, select

from newsletter.content.models import Post, PostCategory
from newsletter.core.markup import sanitize, to_html
from newsletter.core.models import utcnow
from newsletter.extensions import db

FETCH_TIMEOUT_SECONDS = 20
MAX_FEED_BYTES = 10 * 1024 * 1024
# A feed entry's categories kept, at most: a newsletter filters on one of them.
MAX_CATEGORIES = 20
CATEGORY_LENGTH = 100


class FeedError(Exception):
    """The feed could not be fetched or read; the message says why."""


@dataclass
class FeedReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    # Entries whose link is not a web address (javascript:, data:, …): never stored.
    refused: int = 0


def plain(text: str, limit: int = 500) -> str:
    """Text for a title: no markup, one line."""
    return " ".join(nh3.clean(text or "", tags=set()).split())[:limit]


def fetch(url_or_path):
    """The feed's bytes, from an http(s) URL (with a timeout and a size cap) or a file."""
    try:
        if url_or_path.startswith(("http://", "https://")):
            request = urllib.request.Request(url_or_path, headers={"User-Agent": "newsletter"})
            with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
                data = response.read(MAX_FEED_BYTES + 1)
        else:
            with open(url_or_path, "rb") as file:
                data = file.read(MAX_FEED_BYTES + 1)
    except (OSError, ValueError) as error:
        raise FeedError(f"Cannot read the feed at {url_or_path}: {error}") from None
    if len(data) > MAX_FEED_BYTES:
        raise FeedError(f"The feed at {url_or_path} is larger than {MAX_FEED_BYTES} bytes.")
    return data


def import_feed(url_or_path: str) -> FeedReport:
    """Add the feed's new posts and refresh changed ones, except posts edited by hand."""
    parsed = feedparser.parse(fetch(url_or_path))
    if parsed.bozo and not parsed.entries:
        raise FeedError(f"{url_or_path} is not an RSS or Atom feed: {parsed.bozo_exception}")
    report = FeedReport()
    for entry in parsed.entries:
        link = entry.get("link", "")
        guid = entry.get("id") or link
        if not guid:
            continue
        if not is_web_link(link):
            report.refused += 1
            continue
        _save_entry(entry, guid, link, report)
    db.session.commit()
    return report


def _save_entry(entry, guid: str, link: str, report: FeedReport) -> None:
    fields = {
        "link": link[:2000],
        "title": plain(entry.get("title")) or "(untitled)",
        "summary_html": sanitize(_entry_html(entry)),
        "published_at": _entry_time(entry),
    }
    same = or_(Post.guid == guid, Post.link == link) if link else Post.guid == guid
    post = db.session.scalar(select(Post).where(same))
    categories = _entry_categories(entry)
    if post is None:
        post = Post(guid=guid[:500], **fields)
        db.session.add(post)
        report.added += 1
    elif post.edited_at is None and any(getattr(post, k) != v for k, v in fields.items()):
        for key, value in fields.items():
            setattr(post, key, value)
        report.updated += 1
    else:
        report.unchanged += 1
    # The feed's categories are the feed's, on posts edited by hand too: nobody edits them.
    if post.category_names != categories:
        post.categories = [PostCategory(name=name) for name in sorted(categories)]


def category_key(name: str | None) -> str:
    """How a category is stored and compared: one line, case-folded."""
    return plain(name or "", CATEGORY_LENGTH).casefold()[:CATEGORY_LENGTH]


def is_web_link(link: str) -> bool:
    """Whether a post's link is an http(s) address: the only kind subscribers are sent to."""
    parts = urlsplit(link.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _entry_html(entry):
    if entry.get("summary"):
        return entry.summary
    content = entry.get("content") or []
    return content[0].get("value", "") if content else ""


def _entry_categories(entry) -> set[str]:
    """RSS ``<category>`` and Atom ``<category term>`` (or its label when it has no term)."""
    names = (category_key(tag.get("term") or tag.get("label")) for tag in entry.get("tags") or [])
    return set(list(dict.fromkeys(filter(None, names)))[:MAX_CATEGORIES])


def _entry_time(entry):
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return utcnow()
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC).replace(tzinfo=None)


def recent_posts(limit: int = 100) -> list[Post]:
    return list(db.session.scalars(select(Post).order_by(Post.published_at.desc()).limit(limit)))


def save_post(post: Post | None, title: str, link: str, summary_markdown: str) -> Post:
    """Save an admin's post (new when ``post`` is None); the feed will not overwrite it."""
    if post is None:
        post = Post(guid=link[:500])
        db.session.add(post)
    post.title = plain(title)
    post.link = link
    if writes_summary(post, summary_markdown):
        post.summary_markdown = summary_markdown
        post.summary_html = to_html(summary_markdown)
    post.edited_at = utcnow()
    db.session.commit()
    return post


def writes_summary(post: Post | None, summary_markdown: str) -> bool:
    """Whether the Markdown typed is the post's summary: it is, but for an empty one
    on a post whose summary came from the feed as HTML, which has no Markdown to
    show in the form and stays as it is."""
    feed_html = post is not None and post.summary_markdown is None and post.summary_html
    return bool(summary_markdown.strip() or not feed_html)


def newest_page(page: int, per_page: int):
    """One page of posts, newest first."""
    statement = select(Post).order_by(Post.published_at.desc(), Post.id.desc())
    return db.paginate(statement, page=page, per_page=per_page, error_out=False)
