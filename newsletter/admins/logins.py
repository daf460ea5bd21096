"""Admin log-ins in the audit log, and failed ones noticed when they pile up.

Failures never lock an account: whoever knows the password logs in from an address that
has not been guessing. Guessing is slowed per client address and per account and address
together (the limits in web/admin/sessions.py); failures for one account from everywhere
only raise a WARNING and an audit entry, so that an attack spread over many addresses is
seen without letting it keep the owner out.
"""

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import distinct, func, select

from newsletter.admins import audit
from newsletter.admins.models import Admin, AuditEntry
from newsletter.core.models import utcnow
from newsletter.extensions import db

log = logging.getLogger(__name__)

LOGIN = "admins.login"
FAILED = "admins.login_failed"
PILED_UP = "admins.login_failures"
# Failures for one account are counted over this long.
ALERT_WINDOW = timedelta(hours=1)


def record_login(admin: Admin, step: str) -> None:
    """Note a log-in, once the admin is in (after the password, or the code after it)."""
    audit.record(LOGIN, admin.email, step)


def record_failure(email: str, step: str) -> None:
    """Note a wrong password or code for the account ``email`` names (as typed: the
    account may not exist); never the password typed. Every LOGIN_ACCOUNT_ALERT failures
    within an hour make a WARNING and an ``admins.login_failures`` entry."""
    account = " ".join((email or "").split()).lower()[: audit.TARGET_LENGTH]
    visitor = audit.Actor("visitor", account)
    audit.record(FAILED, account, step, actor=visitor)
    alert_every = current_app.config["LOGIN_ACCOUNT_ALERT"]
    if not alert_every:
        return
    failures, addresses = db.session.execute(
        select(func.count(), func.count(distinct(AuditEntry.ip))).where(
            AuditEntry.action == FAILED,
            AuditEntry.target == account,
            AuditEntry.at >= utcnow() - ALERT_WINDOW,
        )
    ).one()
    if failures % alert_every == 0:
        log.warning(
            "%d failed logins to the admin account %r in the last hour, from %d addresses",
            failures,
            account,
            addresses,
        )
        detail = f"{failures} failed logins in the last hour, from {addresses} addresses"
        audit.record(PILED_UP, account, detail, actor=visitor)
