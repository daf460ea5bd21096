"""The audit log: who did what to which target, when and from where.

Every admin action that reads personal data in bulk or changes the list, the content,
the settings or who may do what is recorded here, as is every API key's and every
operator command's. Entries are only added; ``drop_old`` deletes them after
AUDIT_RETENTION_DAYS and forgets their IPs after IP_RETENTION_DAYS.
"""

import csv
import getpass
import io
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, g, has_request_context, request
from flask_login import current_user
from sqlalchemy import delete, select, update

from newsletter.admins.models import AuditEntry
from newsletter.core.models import utcnow
from newsletter.core.writes import rows_changed
from newsletter.extensions import db

PAGE_SIZE = 50
TARGET_LENGTH = 320
DETAIL_LENGTH = 2000
CSV_FIELDS = ("at", "actor_kind", "actor", "action", "target", "detail", "ip")

# Every action recorded, by its dotted name: the one list the admin pages, the commands
# and /admin/audit's filter share. (Others may record names not listed here; the filter
# still finds them by name.)
ACTIONS = {
    "admins.login": "An admin logged in",
    "admins.login_failed": "A wrong password or code for an admin account",
    "admins.login_failures": "Failed logins piled up for one admin account",
    "two_factor.enable": "Two-factor login turned on",
    "two_factor.disable": "Two-factor login turned off (by the admin, or reset by a command)",
    "two_factor.recovery_codes": "New recovery codes made",
    "subscribers.read": "Subscribers listed through the API",
    "subscribers.add": "A reader added through the API",
    "subscribers.change": "A reader changed through the API",
    "subscribers.export": "Subscribers exported as CSV",
    "subscribers.import": "Subscribers imported from a CSV file",
    "subscribers.erase": "A reader erased",
    "subscribers.unsubscribe": "Readers unsubscribed by an admin",
    "subscribers.resend": "Confirmation emails sent again",
    "subscribers.bulk": "An action on the readers ticked in the list",
    "suppressions.lift": "A suppressed address allowed again (with a new double opt-in)",
    "posts.save": "A post written or changed",
    "posts.import_feed": "Posts pulled from a feed",
    "digests.create": "A digest composed",
    "digests.test": "A test copy of a digest sent",
    "digests.send": "A digest sent",
    "digests.schedule": "A digest scheduled",
    "digests.pause": "A digest paused",
    "digests.resume": "A digest resumed",
    "settings.update": "Settings changed",
    "templates.save": "An email template saved",
    "templates.reset": "An email template reset to the default",
    "newsletters.create": "A newsletter created",
    "newsletters.update": "A newsletter changed",
    "newsletters.tracking": "A newsletter's tracking changed",
    "blocked_domains.update": "The blocked domains changed",
    "webhooks.create": "An outgoing webhook added",
    "webhooks.deactivate": "An outgoing webhook turned off",
    "api_keys.create": "An API key made",
    "api_keys.revoke": "An API key revoked",
    "admins.create": "An admin created (or their password set) by a command",
    "admins.invite": "An admin invited",
    "admins.invitation_withdraw": "An invitation withdrawn",
    "admins.invitation_accept": "An invitation accepted: a new admin",
    "admins.role": "An admin's role changed",
    "admins.remove": "An admin removed",
}


@dataclass(frozen=True)
class Actor:
    """Who an entry is about: an admin, an API key, a command run by an operator, the
    service itself, or a visitor not (yet) logged in, such as a failed login."""

    kind: str
    name: str
    id: int | None = None


def current_actor() -> Actor:
    """The actor of this request or command: the API key it carried, else the admin
    logged in, else a visitor; outside a request, the operator running a command."""
    if not has_request_context():
        return Actor("command", _operator())
    api_key = g.get("api_key")
    if api_key is not None:
        return Actor("api_key", f"{api_key.name} ({api_key.prefix}…)", api_key.id)
    if current_user.is_authenticated:
        return Actor("admin", current_user.email, current_user.id)
    return Actor("visitor", "")


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record(
    action: str,
    target: str | None = None,
    detail: str | None = None,
    actor: Actor | None = None,
) -> AuditEntry:
    """Add an entry and commit it (with whatever the caller's session holds)."""
    actor = actor or current_actor()
    entry = AuditEntry(
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor=actor.name[:TARGET_LENGTH],
        action=action,
        target=None if target is None else str(target)[:TARGET_LENGTH],
        detail=None if detail is None else detail[:DETAIL_LENGTH],
        ip=request.remote_addr if has_request_context() else None,
    )
    db.session.add(entry)
    db.session.commit()
    return entry


def page_of_entries(
    before_id: int | None = None, action: str | None = None
) -> tuple[list[AuditEntry], int | None]:
    """A page of the newest entries (older than ``before_id`` when given), and the id
    the next, older page starts before: None when there is none."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(PAGE_SIZE + 1)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if action:
        query = query.where(AuditEntry.action == action)
    entries = list(db.session.scalars(query))
    more = len(entries) > PAGE_SIZE
    return entries[:PAGE_SIZE], entries[PAGE_SIZE - 1].id if more else None


def as_csv() -> str:
    """Every entry kept, oldest first, as CSV."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for entry in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)):
        writer.writerow(
            [entry.at.isoformat(), *(getattr(entry, field) or "" for field in CSV_FIELDS[1:])]
        )
    return out.getvalue()


def drop_old() -> tuple[int, int]:
    """Delete entries older than AUDIT_RETENTION_DAYS and forget the IPs of those older
    than IP_RETENTION_DAYS (0 keeps either); how many of each."""
    now = utcnow()
    deleted = forgotten = 0
    if days := current_app.config["AUDIT_RETENTION_DAYS"]:
        deleted = rows_changed(delete(AuditEntry).where(AuditEntry.at < now - timedelta(days=days)))
    if days := current_app.config["IP_RETENTION_DAYS"]:
        forgotten = rows_changed(
            update(AuditEntry)
            .where(AuditEntry.ip.is_not(None), AuditEntry.at < now - timedelta(days=days))
            .values(ip=None)
        )
    db.session.commit()
    return deleted, forgotten
