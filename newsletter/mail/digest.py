"""Digest emails, built fast: render once per digest and language, personalise each
copy cheaply.

Building every message with the stdlib ``email`` package costs about 2 ms; a
digest to 100,000 subscribers would spend minutes on it. Here the digest is
rendered, CSS-inlined and quoted-printable encoded once for each language (its
chrome, the headings and links around what the admin wrote, is translated; what
the admin wrote stays as written); each copy only adds its
own headers and its own links, which takes tens of microseconds. Each link sits
between encoded pieces joined by soft line breaks, so the decoded text is exact.

A tracked digest (engagement) has its links, in both parts, and a pixel point at
``/r/<token>`` and ``/o/<token>``: they are marked once per digest like the subscriber's
own links, and each copy signs its tokens for them.

Headers are written as plain ``<URL>`` values: the stdlib's default policy would
turn a long List-Unsubscribe into an RFC 2047 encoded-word, which mail clients
cannot use.
"""

import html as html_entities
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from email.utils import formatdate, parseaddr
from typing import Any, NamedTuple

import css_inline
from flask import current_app
from markupsafe import Markup

from newsletter.content.models import Digest
from newsletter.core import i18n, markup, permalinks, tokens
from newsletter.mail import mailto, mime, return_path, template_data, templates
from newsletter.mail.relay import smtp_address
from newsletter.mail.template_data import Issue
from newsletter.subscribers.models import SubscriberSnapshot

# Where each subscriber's own links go in the rendered digest.
PLACEHOLDERS = {
    "__NEWSLETTER_UNSUBSCRIBE_URL__": tokens.UNSUBSCRIBE,
    "__NEWSLETTER_PREFERENCES_URL__": tokens.PREFERENCES,
}
PLACEHOLDER = re.compile("|".join(map(re.escape, PLACEHOLDERS)))
LINK_PURPOSES = list(PLACEHOLDERS.values())
# A tracked digest's links (by position; 0 is the trap) and its pixel.
TRACKED_PLACEHOLDER = re.compile(
    "|".join([*map(re.escape, PLACEHOLDERS), r"__NEWSLETTER_LINK_(\d+)__", "__NEWSLETTER_OPEN__"])
)
OPEN_PIECE = tokens.OPEN
# Invisible to people and to screen readers, and out of the tab order: only a machine
# that fetches every link of a message requests it (engagement/rules.py).
TRAP_LINK = (
    f'<a href="__NEWSLETTER_LINK_{tokens.TRAP_POSITION}__" aria-hidden="true" tabindex="-1" '
    'style="display:none;font-size:0;line-height:0;max-height:0;overflow:hidden"></a>'
)
PIXEL = (
    '<img src="__NEWSLETTER_OPEN__" width="1" height="1" alt="" '
    'style="display:block;width:1px;height:1px;border:0">'
)
HREF = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)(")', re.IGNORECASE)
TEXT_URL = re.compile(r"https?://[^\s<>\"']+")
BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
# The service's own pages are never tracked: subscribers' links and "View in browser".
UNTRACKED_PATHS = ("/unsubscribe/", "/preferences/", "/archive")
SOFT_BREAK = b"=\r\n"
# @media rules (the dark scheme's) cannot be inlined, so they are kept; stylesheets an
# admin's template links to are never fetched: the server would fetch any URL given.
INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


# A piece of an encoded part: static bytes, or what fills a gap in them: a subscriber's
# link (its purpose), a tracked link (its position) or the pixel (OPEN_PIECE).
Piece = bytes | str | int


def _pieces(rendered: str, tracked: bool = False) -> list[Piece]:
    """Encoded static pieces, with the purpose (a str) where a subscriber's link goes
    and, in a tracked digest, a link's position (an int) or OPEN_PIECE."""
    pieces: list[Piece] = []
    position = 0
    for match in (TRACKED_PLACEHOLDER if tracked else PLACEHOLDER).finditer(rendered):
        pieces.append(mime.qp(rendered[position : match.start()]))
        found = match.group()
        if found in PLACEHOLDERS:
            pieces.append(PLACEHOLDERS[found])
        else:
            pieces.append(OPEN_PIECE if match.group(1) is None else int(match.group(1)))
        position = match.end()
    pieces.append(mime.qp(rendered[position:]))
    return pieces


def trackable_links(html: str, text: str, base_url: str) -> list[str]:
    """The links of a rendered digest that tracking may rewrite, each once, in order:
    every web link of the HTML and text parts but the service's own pages."""
    found = [html_entities.unescape(match[2]) for match in HREF.finditer(html)]
    found += TEXT_URL.findall(text)
    own = tuple(f"{base_url}{path}" for path in UNTRACKED_PATHS)
    return list(dict.fromkeys(url for url in found if not url.startswith(own)))


def mark_tracked(html: str, text: str, positions: dict[str, int]) -> tuple[str, str]:
    """The digest with its tracked links (``positions``: URL to position) and the trap
    link and the pixel marked for each copy's own tokens."""

    def in_html(match: re.Match[str]) -> str:
        position = positions.get(html_entities.unescape(match[2]))
        if position is None:
            return match[0]
        return f"{match[1]}__NEWSLETTER_LINK_{position}__{match[3]}"

    def in_text(match: re.Match[str]) -> str:
        position = positions.get(match[0])
        return match[0] if position is None else f"__NEWSLETTER_LINK_{position}__"

    html = HREF.sub(in_html, html)
    html = (
        BODY_OPEN.sub(lambda body: body[0] + TRAP_LINK, html, count=1)
        if BODY_OPEN.search(html)
        else TRAP_LINK + html
    )
    closing = list(BODY_CLOSE.finditer(html))
    html = (
        f"{html[: closing[-1].start()]}{PIXEL}{html[closing[-1].start() :]}"
        if closing
        else html + PIXEL
    )
    return html, TEXT_URL.sub(in_text, text)


def render(
    digest: Issue,
    links: Mapping[str, str | None] | None = None,
    template: str = "digest",
    locale: str | None = None,
    saved: dict[str, datetime] | None = None,
) -> tuple[str, str]:
    """The digest's HTML (CSS inlined) and text, as every subscriber sees them, from
    ``template`` (``digest`` or ``welcome``), in ``locale`` (None: the default);
    ``saved``: the template's versions, when already read. TemplateFailed when the
    admin's template does not render."""
    locale = locale or i18n.default_locale()
    html, text = templates.render(template, context(digest, links, locale), locale, saved)
    return INLINER.inline(html), text


def render_or_default(
    digest: Issue,
    links: Mapping[str, str | None] | None = None,
    template: str = "digest",
    locale: str | None = None,
    saved: dict[str, datetime] | None = None,
) -> templates.Rendered:
    """As ``render``, but with the built-in template (and a WARNING) when the admin's
    fails: a page or a preview still shows the digest, and ``failure`` says why."""
    locale = locale or i18n.default_locale()
    shown = templates.render_or_default(template, context(digest, links, locale), locale, saved)
    return shown._replace(html=INLINER.inline(shown.html))


def context(
    digest: Issue, links: Mapping[str, str | None] | None = None, locale: str | None = None
) -> dict[str, Any]:
    """What a digest template is rendered with: its intro is Markdown, rendered to
    HTML; the text part has the text of that HTML and of each post's summary; ``lang``
    is the language of its subscribers (None: the default).

    ``links`` overrides the links in it: the subscriber's own (``unsubscribe_url``,
    ``preferences_url``) and ``archive_url``, its "View in browser" link (None: none).
    """
    config = current_app.config
    intro_html = markup.to_html(digest.intro)
    # Frozen plain data, never the row: an admin's template must reach nothing behind it.
    data = template_data.digest_data(digest)
    return {
        "lang": locale or i18n.default_locale(),
        "digest": data,
        "posts": data.posts,
        # Sanitized by to_html, so safe to put in as it is.
        "intro_html": Markup(intro_html),
        "intro_text": markup.to_text(intro_html),
        "summary_texts": tuple(post.summary_text for post in data.posts),
        "site_name": config["SITE_NAME"],
        "base_url": config["BASE_URL"],
        # The welcome email is made like a digest but is no digest: it has no page.
        "archive_url": permalinks.page_url(digest) if isinstance(digest, Digest) else None,
        "unsubscribe_url": "__NEWSLETTER_UNSUBSCRIBE_URL__",
        "preferences_url": "__NEWSLETTER_PREFERENCES_URL__",
        **(links or {}),
    }


class Edition(NamedTuple):
    """What every copy of a digest in one language shares: its headers and its pieces."""

    head: bytes
    text_pieces: list[Piece]
    html_pieces: list[Piece]


class DigestMessages:
    """Makes the raw bytes of one digest for any subscriber, in their language."""

    def __init__(
        self,
        digest: Issue,
        template: str = "digest",
        in_language: Mapping[str, Issue] | None = None,
        or_default: bool = False,
        track_links: Callable[[list[str]], dict[str, int]] | None = None,
    ) -> None:
        """``in_language``: the digest as the subscribers of a language get it, where it
        differs from ``digest`` (the welcome email's default words, translated).
        When the admin's template fails: TemplateFailed, or with ``or_default`` the
        built-in template. ``track_links``, for a tracked digest, gets its trackable
        links and answers the position of each that its tokens may name."""
        config = current_app.config
        # A saved digest's copies have Message-IDs of their own; the welcome email's
        # come from its email jobs.
        self.digest_id = digest.id if isinstance(digest, Digest) else None
        self.domain = sender_domain()
        self.base_url = config["BASE_URL"]
        list_host = self.base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        # Each newsletter its own list (RFC 2919), so mail clients can tell and filter them.
        newsletter = getattr(digest, "newsletter", None)
        name, slug = (
            (newsletter.name, newsletter.slug)
            if newsletter
            else (config["SITE_NAME"], "newsletter")
        )
        # Its subscribers' links leave this newsletter only; the welcome email, which is no
        # newsletter's, carries links that leave everything.
        self.newsletter_id = newsletter.id if newsletter else None
        self.alternative = mime.Alternative()
        self.default_locale = i18n.default_locale()
        saved = templates.versions(template)
        rendered: dict[str, tuple[bytes, str, str]] = {}
        for locale in i18n.LANGUAGES:
            issue = (in_language or {}).get(locale, digest)
            html, text, *_failure = (render_or_default if or_default else render)(
                issue, template=template, locale=locale, saved=saved
            )
            head = mime.fixed_headers(
                From=config["MAIL_DEFAULT_SENDER"],
                Subject=issue.subject,
                List_Id=f"{name} <{slug}.{list_host}>",
                List_Unsubscribe_Post="List-Unsubscribe=One-Click",
                Content_Language=locale,
            )
            rendered[locale] = (head, html, text)
        # A tracked copy's tokens name its digest and newsletter.
        self.tracked_ids: tuple[int, int] | None = None
        if track_links and self.digest_id is not None and self.newsletter_id is not None:
            self.tracked_ids = (self.digest_id, self.newsletter_id)
            positions = self._positions(rendered, track_links)
            rendered = {
                locale: (head, *mark_tracked(html, text, positions))
                for locale, (head, html, text) in rendered.items()
            }
        tracked = self.tracked_ids is not None
        self.editions = {
            locale: Edition(head, _pieces(text, tracked), _pieces(html, tracked))
            for locale, (head, html, text) in rendered.items()
        }
        # Every link position the pieces name, the trap's included.
        self.positions = sorted(
            {
                piece
                for edition in self.editions.values()
                for piece in (*edition.text_pieces, *edition.html_pieces)
                if type(piece) is int
            }
        )

    def _positions(
        self,
        rendered: dict[str, tuple[bytes, str, str]],
        track_links: Callable[[list[str]], dict[str, int]],
    ) -> dict[str, int]:
        links = [
            url
            for _head, html, text in rendered.values()
            for url in trackable_links(html, text, self.base_url)
        ]
        return track_links(list(dict.fromkeys(links)))

    def message_id(self, subscriber: SubscriberSnapshot) -> str:
        """A copy's signed Message-ID (return_path.py): it names the subscriber to whoever
        holds the secret key, and tells nobody else a row id."""
        if self.digest_id is None:
            raise ValueError("only a saved digest's copies have Message-IDs of their own")
        return return_path.message_id(
            subscriber.token_nonce, return_path.DIGEST, self.digest_id, self.domain
        )

    def build(
        self, subscriber: SubscriberSnapshot, date: str | None = None, message_id: str | None = None
    ) -> bytes:
        """The message for one subscriber, as bytes ready for SMTP, in their language
        (None, or one we no longer have: the default)."""
        edition = (
            self.editions.get(subscriber.locale or self.default_locale)
            or self.editions[self.default_locale]
        )
        made = tokens.make_tokens_for(LINK_PURPOSES, subscriber.token_nonce, self.newsletter_id)
        urls = {purpose: f"{self.base_url}/{purpose}/{token}" for purpose, token in made.items()}
        list_unsubscribe = f"<{urls[tokens.UNSUBSCRIBE]}>"
        if mailto_address := mailto.address_for(subscriber.token_nonce, self.newsletter_id):
            list_unsubscribe += f",\r\n <mailto:{mailto_address}?subject=unsubscribe>"
        headers = (
            edition.head
            + (
                f"To: {mime.address_header(subscriber.name, smtp_address(subscriber.email))}\r\n"
                f"Date: {date or formatdate(usegmt=True)}\r\n"
                f"Message-ID: {message_id or self.message_id(subscriber)}\r\n"
                f"List-Unsubscribe: {list_unsubscribe}\r\n"
            ).encode()
        )
        links: dict[Piece, bytes] = {purpose: mime.qp(url) for purpose, url in urls.items()}
        if self.tracked_ids is not None:
            links.update(self._tracking_links(subscriber, *self.tracked_ids))
        return self.alternative.message(
            headers,
            SOFT_BREAK.join(_filled(edition.text_pieces, links)),
            SOFT_BREAK.join(_filled(edition.html_pieces, links)),
        )

    def _tracking_links(
        self, subscriber: SubscriberSnapshot, digest_id: int, newsletter_id: int
    ) -> dict[Piece, bytes]:
        """The copy's own click and open links, encoded, by the pieces they fill."""
        clicks, opened = tokens.make_tracking_tokens(
            digest_id, self.positions, subscriber.token_nonce, newsletter_id
        )
        links: dict[Piece, bytes] = {
            position: mime.qp_url(f"{self.base_url}/r/{token}")
            for position, token in clicks.items()
        }
        links[OPEN_PIECE] = mime.qp_url(f"{self.base_url}/o/{opened}")
        return links


def _filled(pieces: list[Piece], links: Mapping[Piece, bytes]) -> Iterator[bytes]:
    """The pieces with the subscriber's own links where each purpose or position stands."""
    for piece in pieces:
        yield piece if isinstance(piece, bytes) else links[piece]


def sender_domain() -> str:
    """The domain of MAIL_DEFAULT_SENDER, which ends every Message-ID we make."""
    return parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1].rpartition("@")[2] or "localhost"
