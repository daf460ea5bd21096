"""Which opens and clicks are a machine's: link scanners of mail gateways, mail
proxies that fetch images for the subscriber, scripts. Each rule is named here and in
docs/engagement.md; its setting is in config.py. Machine requests still get their
redirect and their image: they are counted apart, never dropped.

Some rules need one request only (``request_rule``), and are applied when it comes;
the others look at a copy's requests together (``copy_machine``), and are applied when
events are counted, since a scanner's later request can show what an earlier one was.
"""

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from newsletter.core import tokens
from newsletter.engagement.models import EngagementKind

# The reasons a request alone is a machine's, as EngagementEvent.machine keeps them.
HEAD = "head"
TRAP = "trap"
AGENT = "agent"
PROXY = "proxy"
TOO_SOON = "too-soon"

# Gateways' scanners and HTTP libraries that say who they are; an empty user agent too
# (a person's browser always sends one). Headless browsers are not in it: scanners that
# drive one look like a person, and the trap, the timing and burst rules catch them.
# Matched against the lowercased agent: IGNORECASE made the search six times slower, a
# tenth of a redirect's own work.
SCANNER_AGENTS = re.compile(
    r"^\s*$|bot\b|crawler|spider|scanner|preview|barracuda|mimecast|proofpoint|"
    r"safelinks|forcepoint|trendmicro|sophos|fortiguard|symantec|cisco|ironport|"
    r"python-requests|python-urllib|aiohttp|httpx|curl/|wget/|go-http-client|java/|okhttp|"
    r"libwww|apache-httpclient|node-fetch|axios|undici|ruby|php/|postman"
)
# Mail proxies fetch the images of every message for the subscriber, read or not: Gmail's
# (its user agent says GoogleImageProxy), Yahoo's, and Apple Mail Privacy Protection,
# which fetches from Apple's own 17.0.0.0/8 with a bare "Mozilla/5.0".
MAIL_PROXY_AGENTS = re.compile(r"GoogleImageProxy|YahooMailProxy|^Mozilla/5\.0$")
APPLE_PROXY_NETWORK = ipaddress.ip_network("17.0.0.0/8")


@dataclass(frozen=True, slots=True)
class Seen:
    """What the rules read of a request; nothing of it is stored."""

    method: str
    user_agent: str
    address: str | None


def from_mail_proxy(seen: Seen) -> bool:
    """An image fetched by a mail proxy (Apple MPP, Gmail's or Yahoo's image proxy)."""
    if MAIL_PROXY_AGENTS.search(seen.user_agent):
        return True
    try:
        return ipaddress.ip_address(seen.address or "") in APPLE_PROXY_NETWORK
    except ValueError:
        return False


def from_scanner(seen: Seen) -> bool:
    """A user agent of a known link scanner or HTTP library, or none at all."""
    return bool(SCANNER_AGENTS.search(seen.user_agent.lower()))


def request_rule(seen: Seen, kind: str, position: int | None) -> str | None:
    """Why this request alone is a machine's, or None, before the timing rule (which
    the database applies as the event is written, see ``delivered_after``): a HEAD
    request only checks a link; the trap link is seen by no person."""
    if seen.method == "HEAD":
        return HEAD
    if kind == EngagementKind.CLICK and position == tokens.TRAP_POSITION:
        return TRAP
    if kind == EngagementKind.OPEN and from_mail_proxy(seen):
        return PROXY
    if from_scanner(seen):
        return AGENT
    return None


def delivered_after(now: datetime, min_seconds: int) -> datetime:
    """TOO_SOON: a request on a copy delivered after this moment, less than
    ``min_seconds`` (TRACKING_MIN_SECONDS) ago, is a gateway's scan on arrival."""
    return now - timedelta(seconds=min_seconds)


@dataclass(frozen=True, slots=True)
class Request:
    """One stored request of one copy, as the copy rules read it."""

    at: datetime
    kind: str
    position: int | None
    machine: str | None


def copy_machine(
    requests: list[Request], trap_window_seconds: int, burst_seconds: int
) -> list[bool]:
    """For each request of one copy, whether it is a machine's: by its own rule; or
    within ``trap_window_seconds`` (TRACKING_TRAP_WINDOW_SECONDS) of a request on the
    trap link; or, for a click, within ``burst_seconds`` (TRACKING_BURST_SECONDS) of a
    click on another link of the copy."""
    trap_window = timedelta(seconds=trap_window_seconds)
    burst = timedelta(seconds=burst_seconds)
    traps = [r.at for r in requests if r.kind == EngagementKind.CLICK and r.position == 0]
    clicks = [r for r in requests if r.kind == EngagementKind.CLICK]

    def machine(request: Request) -> bool:
        if request.machine is not None:
            return True
        if any(abs(request.at - trap) <= trap_window for trap in traps):
            return True
        return request.kind == EngagementKind.CLICK and any(
            other.position != request.position and abs(other.at - request.at) <= burst
            for other in clicks
        )

    return [machine(request) for request in requests]
