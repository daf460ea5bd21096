"""Domains whose addresses may not subscribe: the admins' blocklist and, with
BLOCK_DISPOSABLE_DOMAINS, the throwaway-mail services of the
``disposable-email-domains`` package. A domain blocks every domain under it.

Domains are kept and compared in their IDNA2008 (UTS #46) ASCII form, the one
SMTP carries, so that ``bücher.example`` and ``xn--bcher-kva.example`` are one.
"""

from collections.abc import Iterable

import idna
from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, delete, exists, insert, select

from newsletter.core.addresses import InvalidSignup
from newsletter.extensions import db
from newsletter.subscribers.models import BlockedDomain

# Built once and run on the session's connection: every sign-up asks it.
_BLOCKED = select(BlockedDomain.__table__.c.domain).where(
    BlockedDomain.__table__.c.domain.in_(bindparam("names", expanding=True))
)


# A condition for statements that take an address's ``domains`` (domains_of): the
# admins block none of them.
NOT_BLOCKED = ~exists().where(
    BlockedDomain.__table__.c.domain.in_(bindparam("domains", expanding=True))
)


class InvalidBlocklist(ValueError):
    """Lines of the admin's list that are no domain; the message names them."""


def ascii_domain(domain: str) -> str:
    """The domain's IDNA ASCII form, lower-cased. Raises idna.IDNAError."""
    return idna.encode(domain.strip().rstrip("."), uts46=True).decode("ascii").lower()


def with_parents(domain: str) -> list[str]:
    """``a.b.example`` → ``a.b.example``, ``b.example``, ``example``."""
    labels = domain.split(".")
    return [".".join(labels[start:]) for start in range(len(labels))]


def blocked(domains: Iterable[str]) -> set[str]:
    """Those of ``domains`` (ASCII) that are refused, themselves or by a domain above
    them: one indexed lookup for all of them, whatever the length of the list."""
    parents = {domain: with_parents(domain) for domain in set(domains)}
    names = {name for names in parents.values() for name in names}
    if not names:
        return set()
    refused = set(db.session.connection().execute(_BLOCKED, {"names": list(names)}).scalars())
    if current_app.config["BLOCK_DISPOSABLE_DOMAINS"]:
        refused |= names & DISPOSABLE_DOMAINS
    return {domain for domain, names in parents.items() if refused.intersection(names)}


def domain_of(address: str) -> str:
    """The ASCII domain of a normalized address (whose domain is valid, so it encodes)."""
    domain = address.rpartition("@")[2]
    # Validated and lower-cased already: an ASCII domain is its own IDNA form.
    return domain if domain.isascii() else ascii_domain(domain)


def refusal(address: str):
    """Why an address cannot subscribe (translated when shown)."""
    return _l(
        "Addresses at %(domain)s cannot subscribe. Please use another one.",
        domain=address.rpartition("@")[2],
    )


def domains_of(address: str) -> list[str]:
    """The domains that would refuse a normalized address: its own and those above it."""
    return with_parents(domain_of(address))


def refuse_if_blocked(address: str) -> None:
    """Raise InvalidSignup, saying why, when a normalized address's domain is refused."""
    if blocked([domain_of(address)]):
        raise InvalidSignup(refusal(address))


def refuse_if_disposable(address: str) -> None:
    """The part of refuse_if_blocked that needs no database: statements that add an
    address check the admins' list themselves (NOT_BLOCKED)."""
    if current_app.config["BLOCK_DISPOSABLE_DOMAINS"] and DISPOSABLE_DOMAINS.intersection(
        domains_of(address)
    ):
        raise InvalidSignup(refusal(address))


def listed() -> list[str]:
    return list(db.session.scalars(select(BlockedDomain.domain).order_by(BlockedDomain.domain)))


def parse(text: str) -> list[str]:
    """The domains of the admin's text, one a line (blank lines ignored), in ASCII form.

    Raises InvalidBlocklist naming every line that is no domain name.
    """
    domains, bad = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            domain = ascii_domain(line)
        except (idna.IDNAError, UnicodeError):
            bad.append(f"line {number} ({line.strip()[:80]})")
            continue
        domains.append(domain)
    if bad:
        raise InvalidBlocklist(
            f"These lines are not domain names: {', '.join(bad)}. "
            "Write one domain a line, such as example.com."
        )
    return sorted(set(domains))


def replace(domains: list[str]) -> None:
    """Make the blocklist exactly ``domains``, keeping the entries that stay."""
    kept = set(listed())
    wanted = set(domains)
    if kept - wanted:
        db.session.execute(delete(BlockedDomain).where(BlockedDomain.domain.in_(kept - wanted)))
    if wanted - kept:
        db.session.execute(insert(BlockedDomain), [{"domain": d} for d in sorted(wanted - kept)])
    db.session.commit()
