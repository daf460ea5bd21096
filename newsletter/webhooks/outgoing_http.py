"""The HTTP posts of outgoing webhooks, which reach only public addresses.

An endpoint's URL is the admin's (or an API key's) to choose, so a URL naming an
internal service would turn the worker into a scanner of the private network. Every
address the URL's host resolves to must therefore be public, or in
WEBHOOK_ALLOWED_NETWORKS, when the endpoint is added and again at each delivery; and
the delivery connects to the very addresses it checked, so a name that resolves
elsewhere a moment later (DNS rebinding) gains nothing. Redirects are answers like
any other: never followed.
"""

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

# IPv6 addresses that carry an IPv4 address in their last 32 bits and reach it:
# the well-known NAT64 prefix (RFC 6052).
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Unreachable(ValueError):
    """The URL's host does not resolve: no address to check or post to."""


class PrivateAddress(ValueError):
    """The URL's host resolves to an address that webhooks may not reach."""


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` has, numeric forms (``0x7f000001``, ``127.1``) read as
    the system reads them. Tests swap this function so that no real DNS is asked."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def allowed_networks(config) -> tuple:
    """WEBHOOK_ALLOWED_NETWORKS as networks; raises ValueError naming a bad one."""
    text = config.get("WEBHOOK_ALLOWED_NETWORKS") or ""
    networks = []
    for part in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(
                f"WEBHOOK_ALLOWED_NETWORKS: {part!r} is not a network (e.g. 10.0.0.0/8)"
            ) from None
    return tuple(networks)


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse to start with WEBHOOK_ALLOWED_NETWORKS that are not networks."""
    allowed_networks(config)


def _embedded_ipv4(address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches in the end, when it carries one."""
    if address.version == 4:
        return None
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    # IPv4-compatible (::a.b.c.d, deprecated), which :: and ::1 are too.
    if int(address) >> 32 == 0 or address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address) -> bool:
    """Whether ``address`` is on the public internet: not loopback, private,
    link-local, shared (CGNAT), unique-local, unspecified, multicast or reserved;
    an IPv6 address carrying an IPv4 one (mapped, compatible, 6to4, NAT64) is judged
    by the IPv4 one, and Teredo's (never global) is refused."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return is_public(embedded)
    return address.is_global and not (address.is_multicast or address.is_reserved)


def _may_reach(address, allowed) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    in_allowed = any(a in network for a in (address, mapped) if a for network in allowed)
    return in_allowed or is_public(address)


def checked_addresses(host: str, port: int, allowed) -> list[str]:
    """The addresses of ``host``, when webhooks may reach every one of them.

    Raises Unreachable (it does not resolve) or PrivateAddress (one address at least
    is not public and not in ``allowed``): a name with one public and one private
    address would otherwise reach the private one whenever the public one is down."""
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as error:
        raise Unreachable(f"{host} does not resolve: {error}") from None
    if not addresses:
        raise Unreachable(f"{host} does not resolve")
    refused = [a for a in addresses if not _may_reach(ipaddress.ip_address(a), allowed)]
    if refused:
        raise PrivateAddress(f"{host} resolves to {', '.join(refused)}")
    return addresses


def check_url(url: str, allowed) -> None:
    """Raise Unreachable or PrivateAddress unless the URL's host may be posted to."""
    parts = urlsplit(url)
    checked_addresses(_host(parts), _port(parts), allowed)


def post(url: str, body: bytes, headers: dict, *, allowed, timeout: float) -> int:
    """POST ``body`` to ``url``, connecting only to addresses checked just now; the
    answer's status code. Raises Unreachable, PrivateAddress, or what the connection
    raised (OSError, ssl.SSLError, http.client.HTTPException)."""
    parts = urlsplit(url)
    port = _port(parts)
    host = _host(parts)
    addresses = checked_addresses(host, port, allowed)
    kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = kind(host, port, addresses, timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body, headers=headers)
        # The status is all we keep: the body, whatever its size, is never read.
        return connection.getresponse().status
    finally:
        connection.close()


def _host(parts: SplitResult) -> str:
    if not parts.hostname:
        raise Unreachable("the URL names no host")
    return parts.hostname


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _connect(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """A socket to the first of the checked addresses that accepts one."""
    error = OSError("no address to connect to")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as failure:
            error = failure
    raise error


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to addresses already checked: the Host header names the URL's host, but
    the name is not looked up again, which could answer differently."""

    def __init__(self, host, port, addresses, timeout):
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses

    def connect(self):
        self.sock = _connect(self.addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to addresses already checked; the certificate is verified, with the
    system's CAs, against the URL's host name (sent as SNI too), not the address."""

    def __init__(self, host, port, addresses, timeout):
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.addresses = addresses

    def connect(self):
        sock = _connect(self.addresses, self.port, self.timeout)
        try:
            self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
