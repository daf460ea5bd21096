"""Digest emails, built fast: render once per digest, personalise each copy cheaply.

Building every message with the stdlib ``email`` package costs about 2 ms; a
digest to 100,000 readers would spend minutes on it. Here the digest is
rendered, CSS-inlined and quoted-printable encoded once; each copy only adds its
own headers and its own links, which takes tens of microseconds. Each link sits
between encoded pieces joined by soft line breaks, so the decoded text is exact.

Headers are written as plain ``<URL>`` values: the stdlib's default policy would
turn a long List-Unsubscribe into an RFC 2047 encoded-word, which mail clients
cannot use.
"""

import re
from email.utils import formatdate, parseaddr

import css_inline
from flask import current_app
from markupsafe import Markup

from newsletter import archive, markup, tokens
from newsletter.mail import mime, templates
from newsletter.mail.relay import smtp_address
from newsletter.models import Digest

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


def _pieces(rendered):
    """Encoded static pieces, with the purpose (a str) where a subscriber's link goes."""
    pieces = []
    position = 0
    for match in PLACEHOLDER.finditer(rendered):
        pieces.append(mime.qp(rendered[position : match.start()]))
        pieces.append(PLACEHOLDERS[match.group()])
        position = match.end()
    pieces.append(mime.qp(rendered[position:]))
    return pieces


def render(digest, links=None, template="digest"):
    """The digest's HTML (CSS inlined) and text, as every subscriber sees them, from
    ``template`` (``digest`` or ``welcome``)."""
    html, text = templates.render(template, context(digest, links))
    return INLINER.inline(html), text


def context(digest, links=None) -> dict:
    """What a digest template is rendered with: its intro is Markdown, rendered to
    HTML; the text part has the text of that HTML and of each post's summary.

    ``links`` overrides the links in it: the reader's own (``unsubscribe_url``,
    ``preferences_url``) and ``archive_url``, its "View in browser" link (None: none).
    """
    config = current_app.config
    intro_html = markup.to_html(digest.intro)
    return {
        "digest": digest,
        "posts": digest.posts,
        # Sanitized by to_html, so safe to put in as it is.
        "intro_html": Markup(intro_html),
        "intro_text": markup.to_text(intro_html),
        "summary_texts": [markup.to_text(post.summary_html) for post in digest.posts],
        "site_name": config["SITE_NAME"],
        "base_url": config["BASE_URL"],
        # The welcome email is made like a digest but is no digest: it has no page.
        "archive_url": archive.page_url(digest) if isinstance(digest, Digest) else None,
        "unsubscribe_url": "__NEWSLETTER_UNSUBSCRIBE_URL__",
        "preferences_url": "__NEWSLETTER_PREFERENCES_URL__",
        **(links or {}),
    }


class DigestMessages:
    """Makes the raw bytes of one digest for any subscriber."""

    def __init__(self, digest, template="digest"):
        config = current_app.config
        html, text = render(digest, template=template)
        # Stable per copy, so a copy sent twice after a crash looks like one to mail clients.
        self.message_id_prefix = f"digest.{digest.id}.{int(digest.created_at.timestamp())}"
        self.domain = sender_domain()
        self.base_url = config["BASE_URL"]
        self.mailto = config.get("LIST_UNSUBSCRIBE_MAILTO")
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
        self.head = mime.fixed_headers(
            From=config["MAIL_DEFAULT_SENDER"],
            Subject=digest.subject,
            List_Id=f"{name} <{slug}.{list_host}>",
            List_Unsubscribe_Post="List-Unsubscribe=One-Click",
        )
        self.alternative = mime.Alternative()
        self.text_pieces, self.html_pieces = _pieces(text), _pieces(html)

    def message_id(self, subscriber_id: int) -> str:
        return f"<{self.message_id_prefix}.{subscriber_id}@{self.domain}>"

    def build(
        self,
        subscriber_id: int,
        email: str,
        name: str,
        nonce: str,
        date: str | None = None,
        message_id: str | None = None,
    ) -> bytes:
        """The message for one subscriber, as bytes ready for SMTP."""
        made = tokens.make_tokens_for(LINK_PURPOSES, nonce, self.newsletter_id)
        urls = {purpose: f"{self.base_url}/{purpose}/{token}" for purpose, token in made.items()}
        list_unsubscribe = f"<{urls[tokens.UNSUBSCRIBE]}>"
        if self.mailto:
            list_unsubscribe += f",\r\n <mailto:{self.mailto}?subject=unsubscribe>"
        headers = (
            self.head
            + (
                f"To: {mime.address_header(name, smtp_address(email))}\r\n"
                f"Date: {date or formatdate(usegmt=True)}\r\n"
                f"Message-ID: {message_id or self.message_id(subscriber_id)}\r\n"
                f"List-Unsubscribe: {list_unsubscribe}\r\n"
            ).encode()
        )
        links = {purpose: mime.qp(url) for purpose, url in urls.items()}
        return self.alternative.message(
            headers,
            SOFT_BREAK.join(links.get(piece, piece) for piece in self.text_pieces),
            SOFT_BREAK.join(links.get(piece, piece) for piece in self.html_pieces),
        )


def sender_domain() -> str:
    """The domain of MAIL_DEFAULT_SENDER, which ends every Message-ID we make."""
    return parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1].rpartition("@")[2] or "localhost"
