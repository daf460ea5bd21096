"""Markdown that admins write, as safe HTML for emails, and any such HTML as text."""

import re
from html.parser import HTMLParser

import nh3
from markdown_it import MarkdownIt

# What an article summary may keep: text formatting, links and images. No
# scripts, styles, event handlers, forms or frames ever reach an email.
ALLOWED_TAGS = {
    "a", "b", "blockquote", "br", "code", "em", "figcaption", "figure", "h2", "h3", "h4",
    "i", "img", "li", "ol", "p", "pre", "strong", "sub", "sup", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}}
# Raw HTML stays the characters typed, never markup. Every link is let through
# here and nh3 (sanitize) alone judges its scheme, as for feed HTML: a link
# refused by markdown-it would stay in the email as the text "[x](javascript:…)",
# while nh3 drops only the href and keeps the words.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False})
# markdown-it-py's way to judge links is to replace this method (its docs do so).
_MARKDOWN.validateLink = lambda url: True  # type: ignore[method-assign]

# Elements whose text starts on a line of its own, after an empty one.
_BLOCKS = {"p", "h2", "h3", "h4", "blockquote", "pre", "ul", "ol", "figure", "figcaption"}
_BLANK_LINES = re.compile(r"\n{3,}")
_SPACES = re.compile(r"\s+")


def sanitize(html: str) -> str:
    """HTML safe to put into an email: only ALLOWED_TAGS, only http(s) and mailto links."""
    return nh3.clean(
        html or "",
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    ).strip()


def to_html(markdown: str) -> str:
    """Markdown (CommonMark, no raw HTML) as HTML safe to put into an email."""
    return sanitize(_MARKDOWN.render(markdown or ""))


def to_text(html: str) -> str:
    """Readable plain text of sanitized HTML: paragraphs, list items with a dash,
    each link's address after its words, an image's alt text."""
    writer = _TextWriter()
    writer.feed(html or "")
    writer.close()
    return writer.text()


class _TextWriter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.in_pre = 0
        # Each open link: its address and where its words start in parts.
        self.links: list[tuple[str, int]] = []
        # Each open list: the number of its last item, None in a bulleted one.
        self.lists: list[int | None] = []

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag in _BLOCKS:
            self.parts.append("\n\n")
            self.in_pre += tag == "pre"
            if tag in ("ul", "ol"):
                self.lists.append(0 if tag == "ol" else None)
        elif tag == "li":
            self.parts.append(f"\n{self._item_mark()} ")
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "img" and found.get("alt"):
            self.parts.append(found["alt"])
        elif tag == "a":
            self.links.append((found.get("href") or "", len(self.parts)))

    def handle_endtag(self, tag):
        if tag in _BLOCKS:
            self.parts.append("\n\n")
            self.in_pre -= tag == "pre"
            if tag in ("ul", "ol") and self.lists:
                self.lists.pop()
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            words = "".join(self.parts[start:]).strip()
            if href and href != words:
                self.parts.append(f" ({href})")

    def _item_mark(self) -> str:
        if not self.lists or self.lists[-1] is None:
            return "-"
        self.lists[-1] += 1
        return f"{self.lists[-1]}."

    def handle_data(self, data):
        if self.in_pre:
            self.parts.append(data)
            return
        data = _SPACES.sub(" ", data)
        # A line starts with its words, not with the space the HTML had there.
        at_line_start = not self.parts or self.parts[-1].endswith("\n")
        self.parts.append(data.lstrip() if at_line_start else data)

    def text(self) -> str:
        lines = "".join(self.parts).split("\n")
        return _BLANK_LINES.sub("\n\n", "\n".join(line.rstrip() for line in lines)).strip()
