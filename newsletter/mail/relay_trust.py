"""Whether the relay may be trusted with our mail and our password.

Every message carries working confirm, unsubscribe and preferences links, and the
login carries MAIL_PASSWORD: both go only to a relay whose certificate and host name
check out (TLS 1.2 at least), and a password never goes over an unencrypted
connection, unless to a relay on this machine, whose traffic never leaves it.

Why the last session with a relay could not be opened is kept in the database, where
every worker writes it and /healthz reads it, until a session opens again.
"""

import functools
import ipaddress
import logging
import ssl
from collections.abc import Callable
from typing import TypeVar

from flask import current_app
from sqlalchemy import Connection, Select, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.mail.models import RelayFailure

log = logging.getLogger("newsletter.mail.relay")

Outcome = TypeVar("Outcome")

LOOPBACK_NAMES = {"localhost"}
REASON_LENGTH = 1000


class PasswordRefused(Exception):
    """We will not send the relay our password: the connection would not be encrypted."""


def tls_context() -> ssl.SSLContext:
    """The context of every TLS session with the relay, STARTTLS or implicit: its
    certificate checked against MAIL_TLS_CA_FILE's CAs (a private relay's) or else
    the system's, and its host name against MAIL_SERVER."""
    return _context_for(current_app.config.get("MAIL_TLS_CA_FILE") or None)


@functools.cache
def _context_for(cafile: str | None) -> ssl.SSLContext:
    # Made once a CA file: loading the CA store costs milliseconds, and every batch
    # opens a session.
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    return context


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: localhost, 127.0.0.0/8 or ::1 (also written
    as an IPv4-mapped address)."""
    name = host.strip().rstrip(".").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def check_password_may_go(host: str, encrypted: bool) -> None:
    """Raise PasswordRefused unless the password would travel encrypted, or only
    to this machine. Checked before connecting: nothing is sent to such a relay."""
    if not (encrypted or is_loopback(host)):
        raise PasswordRefused(
            "refusing to send MAIL_PASSWORD over an unencrypted connection to a relay "
            "on another machine: set MAIL_USE_TLS or MAIL_USE_SSL"
        )


def record_failure(relay: str, reason: str) -> int:
    """Keep why a session with ``relay`` could not be opened, for /healthz; return how
    many openings have failed in a row, every worker's (1 when it cannot be kept)."""
    values = {"relay": relay, "reason": reason[:REASON_LENGTH], "at": utcnow(), "failures": 1}
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    upsert = (
        dialect.insert(RelayFailure)
        .values(values)
        .on_conflict_do_update(
            index_elements=["relay"],
            set_={
                "reason": values["reason"],
                "at": values["at"],
                "failures": RelayFailure.failures + 1,
            },
        )
        .returning(RelayFailure.failures)
    )
    failures = _on_own_connection(lambda connection: connection.execute(upsert).scalar_one())
    return failures or 1


def record_success(relay: str) -> None:
    """A session with ``relay`` opened: whatever failed before is over. Only a read
    unless something had failed: sessions open often, failures are rare."""

    def clear(connection: Connection) -> None:
        if connection.scalar(_failure_of(relay)) is not None:
            connection.execute(delete(RelayFailure).where(RelayFailure.relay == relay))

    _on_own_connection(clear)


def last_failure(relay: str) -> str | None:
    """Why the last session with ``relay`` could not be opened, if it could not."""
    return db.session.scalar(_failure_of(relay))


def _failure_of(relay: str) -> Select[tuple[str]]:
    return select(RelayFailure.reason).where(RelayFailure.relay == relay)


def _on_own_connection(work: Callable[[Connection], Outcome]) -> Outcome | None:
    """Run ``work`` in a transaction of its own and return what it returns: the
    caller's (a batch being sent) is neither committed nor held open by it, and its
    failure stops no mail (None then)."""
    try:
        with db.engine.begin() as connection:
            return work(connection)
    except SQLAlchemyError as error:
        log.warning("the relay's state could not be recorded: %s", error)
        return None
