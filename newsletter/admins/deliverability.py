"""Will receivers take our mail? The checks of the admins' deliverability page.

SPF, DKIM and DMARC of the sender's domain are read from DNS each time; BASE_URL
and the complaint rate from this service. Every check ends in a status and one
sentence that says what to fix. Every DNS question goes through ``txt_records``,
so that tests can give the answers.
"""

import base64
import binascii
import functools
import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

import dns.exception
import dns.resolver
from dkim.crypto import UnparsableKeyError, parse_pem_private_key, parse_public_key
from dkim.util import InvalidTagValueList, parse_tag_value
from flask import current_app
from sqlalchemy import func, select

from newsletter.bounces.models import FeedbackEvent, FeedbackKind
from newsletter.content.models import Digest
from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.mail.relay import dkim_domain, dkim_enabled, sender_domain
from newsletter.sending.models import Delivery, EmailJob, JobStatus

# Each DNS question gets this long in all, retries included: a dead resolver makes
# the page slow by seconds, never hangs it.
LOOKUP_SECONDS = 3
COMPLAINT_DAYS = 30
# Gmail's lines for bulk senders, in complaints per 1,000 messages: stay under 1
# (0.1%), never reach 3 (0.3%).
COMPLAINTS_PER_MILLE_WARNING = 1
COMPLAINTS_PER_MILLE_ERROR = 3

SPF_VERSION = re.compile(r"^v=spf1(\s|$)", re.IGNORECASE)
SPF_ALL = re.compile(r"^([-~?+]?)all$", re.IGNORECASE)
SPF_REDIRECT = re.compile(r"^redirect=(\S+)$", re.IGNORECASE)
DMARC_VERSION = re.compile(r"^v\s*=\s*DMARC1\s*(;|$)", re.IGNORECASE)
DMARC_POLICIES = {"none", "quarantine", "reject"}


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str


class NoSuchDomain(LookupError):
    """The name does not exist in DNS (NXDOMAIN)."""


class DnsUnavailable(LookupError):
    """DNS gave no answer (timeout, no server reachable); the message says which."""


def txt_records(name: str) -> list[str]:
    """The TXT records at ``name``, each one's strings joined; [] when it has none.

    Raises NoSuchDomain and DnsUnavailable."""
    try:
        answer = dns.resolver.resolve(name, "TXT", lifetime=LOOKUP_SECONDS)
    except dns.resolver.NXDOMAIN:
        raise NoSuchDomain(name) from None
    except dns.resolver.NoAnswer:
        return []
    except dns.exception.Timeout:
        raise DnsUnavailable(f"DNS did not answer for {name} within {LOOKUP_SECONDS} s") from None
    except dns.exception.DNSException as error:
        reason = str(error).rstrip(".")
        raise DnsUnavailable(f"DNS could not answer for {name} ({reason})") from None
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def _records_or_none(name: str) -> list[str]:
    """As txt_records, for names that need not exist (selectors, _dmarc)."""
    try:
        return txt_records(name)
    except NoSuchDomain:
        return []


def _dns_check(name):
    """A check that reports DNS failing to answer as "could not be checked", not a 500."""

    def decorate(check):
        @functools.wraps(check)
        def checked(*args):
            try:
                return check(*args)
            except DnsUnavailable as error:
                message = f"{name} could not be checked: {error}. Reload the page to try again."
                return Check(name, Status.NOT_CHECKED, message)

        return checked

    return decorate


def run_checks() -> list[Check]:
    return [
        check_spf(sender_domain()),
        check_dkim(),
        check_dmarc(sender_domain()),
        check_base_url(),
        check_complaint_rate(),
    ]


@_dns_check("SPF")
def check_spf(domain: str) -> Check:
    try:
        records = [record for record in txt_records(domain) if SPF_VERSION.match(record)]
    except NoSuchDomain:
        message = (
            f"{domain}, the domain of MAIL_DEFAULT_SENDER, does not exist in DNS. "
            "Send from an address at a domain you own."
        )
        return Check("SPF", Status.ERROR, message)
    if not records:
        message = (
            f"{domain} has no SPF record. Add a TXT record at {domain}: "
            "v=spf1 include:… -all (the include: your mail relay's documentation gives)."
        )
        return Check("SPF", Status.ERROR, message)
    if len(records) > 1:
        message = (
            f"{domain} has {len(records)} SPF records, and receivers fail SPF for a domain "
            "with more than one (RFC 7208). Merge them into one TXT record."
        )
        return Check("SPF", Status.ERROR, message)
    return _spf_ending(domain, records[0])


def _spf_ending(domain: str, record: str) -> Check:
    """How the record treats servers it does not list: its ``all``, or a redirect."""
    terms = record.split()[1:]
    # Terms after an "all" are never reached, so the first one decides.
    ending = next((match for term in terms if (match := SPF_ALL.match(term))), None)
    said = f"SPF at {domain}: {record}."
    if ending:
        status, advice = _spf_all(ending[1] or "+", domain)
        return Check("SPF", status, f"{said} {advice}")
    redirect = next((match[1] for term in terms if (match := SPF_REDIRECT.match(term))), None)
    if redirect:
        advice = f"It hands over to {redirect} (redirect=), whose ending is not checked here."
        return Check("SPF", Status.OK, f"{said} {advice}")
    advice = (
        "It has no all at its end, so mail from servers it does not list passes as neutral. "
        "End it with -all (or ~all)."
    )
    return Check("SPF", Status.WARNING, f"{said} {advice}")


def _spf_all(qualifier: str, domain: str) -> tuple[Status, str]:
    if qualifier == "-":
        return Status.OK, "It ends with -all: mail from servers it does not list fails."
    if qualifier == "~":
        return Status.OK, (
            "It ends with ~all: mail from servers it does not list is marked suspicious "
            "(softfail); -all is stricter."
        )
    if qualifier == "?":
        return Status.WARNING, (
            "It ends with ?all, which says nothing about servers it does not list. "
            "End it with -all (or ~all)."
        )
    return Status.ERROR, (
        f"It ends with +all, which lets every server in the world send mail as {domain}. "
        "Replace +all with -all."
    )


@_dns_check("DKIM")
def check_dkim() -> Check:
    if not dkim_enabled():
        message = (
            "DKIM signing is off (set DKIM_SELECTOR and DKIM_PRIVATE_KEY_PATH). Gmail and "
            "Yahoo want bulk mail DKIM-signed: unless your relay signs it, turn signing on."
        )
        return Check("DKIM", Status.NOT_CHECKED, message)
    config = current_app.config
    name = f"{config['DKIM_SELECTOR']}._domainkey.{dkim_domain()}"
    try:
        ours = _public_key_of(Path(config["DKIM_PRIVATE_KEY_PATH"]).read_bytes())
    except (OSError, UnparsableKeyError) as error:
        message = (
            f"The key at DKIM_PRIVATE_KEY_PATH cannot be read ({error}), so no email can be "
            "signed. Point DKIM_PRIVATE_KEY_PATH at the RSA private key (PEM) of the selector."
        )
        return Check("DKIM", Status.ERROR, message)
    return _compare_keys(name, ours, _published_key(name))


def _public_key_of(private_pem: bytes) -> tuple[int, int]:
    key = parse_pem_private_key(private_pem)
    return key["modulus"], key["publicExponent"]


def _published_key(name: str) -> str | None:
    """The ``p=`` of the DKIM record at ``name`` (maybe empty), or None for no record."""
    for record in _records_or_none(name):
        try:
            tags = parse_tag_value(record.encode())
        except InvalidTagValueList:
            continue
        if b"p" in tags:
            return re.sub(r"\s", "", tags[b"p"].decode())
    return None


def _compare_keys(name: str, ours: tuple[int, int], published: str | None) -> Check:
    if published is None:
        message = (
            f"DKIM: no record at {name}. Add a TXT record there: v=DKIM1; k=rsa; p=… with the "
            "public key of DKIM_PRIVATE_KEY_PATH (openssl rsa -in KEY -pubout prints it; "
            "leave out its BEGIN and END lines)."
        )
        return Check("DKIM", Status.ERROR, message)
    if ours == _rsa_public_key(published):
        return Check("DKIM", Status.OK, f"The key at {name} matches DKIM_PRIVATE_KEY_PATH.")
    why = "DNS has a different key" if published else "its p= is empty, which revokes the key"
    message = (
        f"The key at {name} does not match ({why}), so receivers fail every signature. "
        "Publish the public key of DKIM_PRIVATE_KEY_PATH there, or set DKIM_SELECTOR to the "
        "selector that has it."
    )
    return Check("DKIM", Status.ERROR, message)


def _rsa_public_key(published: str) -> tuple[int, int] | None:
    try:
        key = parse_public_key(base64.b64decode(published, validate=True))
    except (binascii.Error, UnparsableKeyError):
        return None
    return key["modulus"], key["publicExponent"]


@_dns_check("DMARC")
def check_dmarc(domain: str) -> Check:
    found = _dmarc_records(domain)
    if found is None:
        message = (
            f"No DMARC record at _dmarc.{domain}: Gmail and Yahoo require a DMARC record of "
            f"bulk senders. Add a TXT record at _dmarc.{domain}: "
            f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}"
        )
        return Check("DMARC", Status.ERROR, message)
    name, records = found
    if len(records) > 1:
        message = (
            f"{name} has {len(records)} DMARC records, and receivers ignore them all. Keep one."
        )
        return Check("DMARC", Status.ERROR, message)
    tags = _dmarc_tags(records[0])
    # A record found above the sender's own domain applies to it by its sp=, if any.
    policy = tags.get("sp") if name != f"_dmarc.{domain}" and "sp" in tags else tags.get("p")
    return _dmarc_policy(name, records[0], (policy or "").lower(), tags.get("rua"))


def _dmarc_records(domain: str) -> tuple[str, list[str]] | None:
    """The DMARC records for ``domain``: its own, else its parent's (a DMARC record at
    the organization's domain covers its subdomains)."""
    labels = domain.split(".")
    for start in range(len(labels) - 1):
        name = "_dmarc." + ".".join(labels[start:])
        records = [record for record in _records_or_none(name) if DMARC_VERSION.match(record)]
        if records:
            return name, records
    return None


def _dmarc_tags(record: str) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in record.split(";") if "=" in part)
    return {key.strip().lower(): value.strip() for key, value in pairs}


def _dmarc_policy(name: str, record: str, policy: str, rua: str | None) -> Check:
    said = f"DMARC at {name}: {record}."
    if policy not in DMARC_POLICIES:
        advice = "It has no valid p= (none, quarantine or reject), so receivers ignore it."
        return Check("DMARC", Status.ERROR, f"{said} {advice}")
    if not rua:
        advice = (
            f"Policy p={policy}, but no rua= is set, so nobody sends you reports of mail "
            "that fails. Add rua=mailto:… to the record."
        )
        return Check("DMARC", Status.WARNING, f"{said} {advice}")
    if policy == "none":
        advice = (
            f"Policy p=none, reports to {rua}: receivers only report. Once the reports show "
            "all your mail passing, move to p=quarantine, then p=reject."
        )
    else:
        advice = f"Policy p={policy}, reports to {rua}."
    return Check("DMARC", Status.OK, f"{said} {advice}")


def check_base_url() -> Check:
    url = current_app.config["BASE_URL"]
    if url.lower().startswith("https://"):
        return Check("BASE_URL", Status.OK, f"Links in emails start with {url}.")
    message = (
        f"BASE_URL is {url}, not https: Gmail and Yahoo want the one-click unsubscribe "
        "link (RFC 8058) to be https. Set BASE_URL to this service's https:// address."
    )
    return Check("BASE_URL", Status.WARNING, message)


def complaint_rate(days: int = COMPLAINT_DAYS) -> tuple[int, int]:
    """Complaints reported and messages sent over the last ``days`` days."""
    since = utcnow() - timedelta(days=days)
    digest_copies = db.session.execute(
        select(func.count()).select_from(Delivery).where(Delivery.sent_at >= since)
    ).scalar_one()
    # Digests whose copies were already folded into totals (DELIVERY_RETENTION_DAYS
    # under the window) count by those totals.
    folded_copies = (
        db.session.scalar(
            select(func.sum(Digest.sent_count)).where(
                Digest.folded_at.is_not(None), Digest.finished_at >= since
            )
        )
        or 0
    )
    emails = db.session.execute(
        select(func.count())
        .select_from(EmailJob)
        .where(EmailJob.status == JobStatus.SENT, EmailJob.finished_at >= since)
    ).scalar_one()
    complaints = db.session.execute(
        select(func.count())
        .select_from(FeedbackEvent)
        .where(FeedbackEvent.kind == FeedbackKind.COMPLAINT, FeedbackEvent.at >= since)
    ).scalar_one()
    return complaints, digest_copies + folded_copies + emails


def check_complaint_rate() -> Check:
    complaints, sent = complaint_rate(COMPLAINT_DAYS)
    if not sent:
        message = f"No mail sent in {COMPLAINT_DAYS} days, so there is no complaint rate yet."
        return Check("Complaints", Status.NOT_CHECKED, message)
    said = (
        f"Complaint rate over {COMPLAINT_DAYS} days: {100 * complaints / sent:.2f}% "
        f"(complaints: {complaints:,}; messages sent: {sent:,})."
    )
    per_mille = 1000 * complaints
    if per_mille >= COMPLAINTS_PER_MILLE_ERROR * sent:
        advice = (
            "That is at or above Gmail's 0.3% line, beyond which Gmail sends mail to spam or "
            "refuses it. Stop mailing readers who have not opened in months, and make the "
            "unsubscribe link easy to find."
        )
        return Check("Complaints", Status.ERROR, f"{said} {advice}")
    if per_mille >= COMPLAINTS_PER_MILLE_WARNING * sent:
        advice = (
            "That is above the 0.1% Gmail asks bulk senders to stay under (0.3% is its "
            "limit). Stop mailing readers who have not opened in months."
        )
        return Check("Complaints", Status.WARNING, f"{said} {advice}")
    return Check("Complaints", Status.OK, f"{said} Under Gmail's 0.1%.")
