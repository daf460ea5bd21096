"""A digest's opens and clicks as its admin page shows them: the figures with their
rates, each link's share of people's clicks, and the digest's preview with that share
drawn beside each of its links (docs/engagement.md)."""

import html as html_entities
import re
from dataclasses import dataclass

from markupsafe import Markup

from newsletter.engagement import figures as engagement_figures

# A link of the rendered preview, its address and its text: the share goes after it.
LINK = re.compile(r'<a\b[^>]*?\bhref="(https?://[^"]+)"[^>]*>.*?</a\s*>', re.IGNORECASE | re.DOTALL)
BAR_WIDTH = 80
BAR_COLOUR = "#1f5fa8"


@dataclass(frozen=True, slots=True)
class LinkRow:
    position: int
    url: str
    human: int
    machine: int
    # Copies in which a person followed it: subscribers, estimated as the unique opens are.
    subscribers: int
    # Its part of all people's clicks on the digest's links, 0 to 1.
    share: float


@dataclass(frozen=True, slots=True)
class DigestFigures(engagement_figures.Reach):
    links: list[LinkRow]
    # The preview's HTML with each link's share drawn beside it.
    preview_html: str


def shown(digest, delivered: int, preview_html: str) -> DigestFigures | None:
    """What the digest's page shows of its opens and clicks; None for a digest that
    was never tracked (no link of it recorded, nothing counted)."""
    found = engagement_figures.figures(digest.id)
    counted = found.opens.human + found.opens.machine + found.clicks.human + found.clicks.machine
    if not found.links and not counted:
        return None
    people = sum(link.counts.human for link in found.links)
    links = [
        LinkRow(
            link.position,
            link.url,
            link.counts.human,
            link.counts.machine,
            link.counts.human_copies,
            link.counts.human / people if people else 0.0,
        )
        for link in found.links
    ]
    return DigestFigures(
        delivered, found.opens, found.clicks, links, with_shares(preview_html, links)
    )


def with_shares(preview_html: str, links: list[LinkRow]) -> str:
    """The preview with a bar and a percentage after each link: its share of people's
    clicks. A link the digest's record lacks is left as it is."""
    by_url = {link.url: link for link in links}

    def drawn(match):
        link = by_url.get(html_entities.unescape(match[1]))
        if link is None:
            return match[0]
        return match[0] + str(_share_mark(link))

    return LINK.sub(drawn, preview_html)


def _share_mark(link: LinkRow) -> Markup:
    """A bar on a track BAR_WIDTH wide, then the share and the count, in words too."""
    width = max(round(link.share * BAR_WIDTH), 1 if link.human else 0)
    return Markup(
        '<span data-link-share style="margin-left:6px;white-space:nowrap;'
        'font:bold 12px sans-serif;color:{colour}">'
        '<span style="display:inline-block;width:{track}px;height:10px;background:#dde6f2;'
        'vertical-align:middle"><span style="display:block;width:{width}px;height:10px;'
        'background:{colour}"></span></span> {share:.0%} of clicks ({human})</span>'
    ).format(colour=BAR_COLOUR, track=BAR_WIDTH, width=width, share=link.share, human=link.human)
