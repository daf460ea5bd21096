"""Digest emails, built fast: render once per digest and language, personalise each
copy cheaply.

Building every message with the stdlib ``email`` package costs about 2 ms; a
digest to 100,000 readers would spend minutes on it. Here the digest is
rendered, CSS-inlined and quoted-printable encoded once for each language (its
chrome, the headings and links around what the admin wrote, is translated; what
the admin wrote stays as written); each copy only adds its
own headers and its own links, which takes tens of microseconds. Each link sits
between encoded pieces joined by soft line breaks, so the decoded text is exact.

Headers are written as plain ``<URL>`` values: the stdlib's default policy would
turn a long List-Unsubscribe into an RFC 2047 encoded-word, which mail clients
cannot use.
"""

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from email.utils import formatdate, parseaddr
from typing import Any, NamedTuple

import css_inline
from flask import current_app
from markupsafe import Markup

from newsletter.core import i18n, markup, permalinks, tokens
from newsletter.mail import mailto, mime, return_path, template_data, templates
from newsletter.mail.relay import smtp_address
from newsletter.mail.template_data import Issue
from newsletter.models import Digest, Reader

# Where each subscriber's own links go in the rendered digest.
PLACEHOLDERS = {
    "__NEWSLETTER_UNSUBSCRIBE_URL__": tokens.UNSUBSCRIBE,
    "__NEWSLETTER_PREFERENCES_URL__": tokens.PREFERENCES,
}
PLACEHOLDER = re.compile("|".join(map(re.escape, PLACEHOLDERS)))
LINK_PURPOSES = list(PLACEHOLDERS.values())
SOFT_BREAK = b"=\r\n"
# @media rules (the dark scheme's) cannot be inlined, so they are kept; stylesheets an
# admin's template links to are never fetched: the server would fetch any URL given.
INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def _pieces(rendered: str) -> list[bytes | str]:
    """Encoded static pieces, with the purpose (a str) where a subscriber's link goes."""
    pieces: list[bytes | str] = []
    position = 0
    for match in PLACEHOLDER.finditer(rendered):
        pieces.append(mime.qp(rendered[position : match.start()]))
        pieces.append(PLACEHOLDERS[match.group()])
        position = match.end()
    pieces.append(mime.qp(rendered[position:]))
    return pieces


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
    is the language of its readers (None: the default).

    ``links`` overrides the links in it: the reader's own (``unsubscribe_url``,
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
    text_pieces: list[bytes | str]
    html_pieces: list[bytes | str]


class DigestMessages:
    """Makes the raw bytes of one digest for any subscriber, in their language."""

    def __init__(
        self,
        digest: Issue,
        template: str = "digest",
        in_language: Mapping[str, Issue] | None = None,
        or_default: bool = False,
    ) -> None:
        """``in_language``: the digest as the readers of a language get it, where it
        differs from ``digest`` (the welcome email's default words, translated).
        When the admin's template fails: TemplateFailed, or with ``or_default`` the
        built-in template."""
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
        # Its readers' links leave this newsletter only; the welcome email, which is no
        # newsletter's, carries links that leave everything.
        self.newsletter_id = newsletter.id if newsletter else None
        self.alternative = mime.Alternative()
        self.default_locale = i18n.default_locale()
        saved = templates.versions(template)
        self.editions: dict[str, Edition] = {}
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
            self.editions[locale] = Edition(head, _pieces(text), _pieces(html))

    def message_id(self, reader: Reader) -> str:
        """A copy's signed Message-ID (return_path.py): it names the reader to whoever
        holds the secret key, and tells nobody else a row id."""
        if self.digest_id is None:
            raise ValueError("only a saved digest's copies have Message-IDs of their own")
        return return_path.message_id(
            reader.token_nonce, return_path.DIGEST, self.digest_id, self.domain
        )

    def build(
        self, reader: Reader, date: str | None = None, message_id: str | None = None
    ) -> bytes:
        """The message for one subscriber, as bytes ready for SMTP, in their language
        (None, or one we no longer have: the default)."""
        edition = (
            self.editions.get(reader.locale or self.default_locale)
            or self.editions[self.default_locale]
        )
        made = tokens.make_tokens_for(LINK_PURPOSES, reader.token_nonce, self.newsletter_id)
        urls = {purpose: f"{self.base_url}/{purpose}/{token}" for purpose, token in made.items()}
        list_unsubscribe = f"<{urls[tokens.UNSUBSCRIBE]}>"
        if mailto_address := mailto.address_for(reader.token_nonce, self.newsletter_id):
            list_unsubscribe += f",\r\n <mailto:{mailto_address}?subject=unsubscribe>"
        headers = (
            edition.head
            + (
                f"To: {mime.address_header(reader.name, smtp_address(reader.email))}\r\n"
                f"Date: {date or formatdate(usegmt=True)}\r\n"
                f"Message-ID: {message_id or self.message_id(reader)}\r\n"
                f"List-Unsubscribe: {list_unsubscribe}\r\n"
            ).encode()
        )
        links = {purpose: mime.qp(url) for purpose, url in urls.items()}
        return self.alternative.message(
            headers,
            SOFT_BREAK.join(_filled(edition.text_pieces, links)),
            SOFT_BREAK.join(_filled(edition.html_pieces, links)),
        )


def _filled(pieces: list[bytes | str], links: dict[str, bytes]) -> Iterator[bytes]:
    """The pieces with the reader's own link where each purpose stands."""
    for piece in pieces:
        yield links[piece] if isinstance(piece, str) else piece


def sender_domain() -> str:
    """The domain of MAIL_DEFAULT_SENDER, which ends every Message-ID we make."""
    return parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1].rpartition("@")[2] or "localhost"
