"""Two-factor login for admins: TOTP codes (RFC 6238) from an authenticator app, and
single-use recovery codes for when the app is lost."""

import hashlib
import hmac
import re
import secrets
import time

import pyotp
import segno
from flask import current_app
from sqlalchemy import delete, func, select, update

from newsletter.admins import accounts
from newsletter.admins.models import Admin, RecoveryCode
from newsletter.core.models import utcnow
from newsletter.core.writes import rows_changed
from newsletter.extensions import db

RECOVERY_CODE_COUNT = 10
# Between the password and the code: time to find the phone, not to leave a browser
# half logged in for the next person at the desk.
PENDING_LOGIN_SECONDS = 300
# Codes of the steps either side of now are taken too: phones' clocks drift, and a code
# typed in its last seconds arrives in the next step.
VALID_WINDOW = 1
NO_STEP_TAKEN = -1


def new_secret() -> str:
    return pyotp.random_base32()


def setup_uri(admin: Admin, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(
        name=admin.email, issuer_name=current_app.config["SITE_NAME"]
    )


def qr_code(uri: str) -> str:
    """The URI as a QR code in an SVG data: URI: an image, which the pages' CSP allows,
    where an inline script or a third-party QR service would not be."""
    return segno.make(uri, error="m").svg_data_uri(scale=4)


def enable(admin: Admin, secret: str, code: str) -> list[str] | None:
    """Turn two-factor login on once ``code`` shows that the app holds ``secret``.

    Returns the new recovery codes, or None for a wrong code. Every session of the
    admin ends, since any of them may be the one the second factor is meant to stop.
    """
    step = accepted_step(secret, code, after=NO_STEP_TAKEN)
    if step is None:
        return None
    admin.totp_secret = secret
    admin.totp_last_step = step
    codes = replace_recovery_codes(admin)
    accounts.end_sessions(admin)
    return codes


def disable(admin: Admin) -> None:
    """Turn two-factor login off, delete the recovery codes and end every session."""
    admin.totp_secret = None
    admin.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.admin_id == admin.id))
    accounts.end_sessions(admin)


def new_recovery_codes(admin: Admin) -> list[str]:
    """Replace the admin's recovery codes; the old ones stop working."""
    codes = replace_recovery_codes(admin)
    db.session.commit()
    return codes


def recovery_codes_left(admin: Admin) -> int:
    return db.session.execute(
        select(func.count(RecoveryCode.id)).where(
            RecoveryCode.admin_id == admin.id, RecoveryCode.used_at.is_(None)
        )
    ).scalar_one()


def take_code(admin: Admin, code: str) -> bool:
    """Whether ``code`` is the admin's current TOTP code, not taken before; it is taken now."""
    # Both are set together (enable), or neither.
    if admin.totp_secret is None or admin.totp_last_step is None:
        return False
    step = accepted_step(admin.totp_secret, code, after=admin.totp_last_step)
    if step is None:
        return False
    # Conditional, so that two requests racing with one code cannot both be accepted.
    taken = rows_changed(
        update(Admin)
        .where(Admin.id == admin.id, Admin.totp_last_step < step)
        .values(totp_last_step=step)
    )
    db.session.commit()
    return taken == 1


def use_recovery_code(admin: Admin, code: str) -> bool:
    """Whether ``code`` is one of the admin's recovery codes, unused; it is used up now."""
    used = rows_changed(
        update(RecoveryCode)
        .where(
            RecoveryCode.admin_id == admin.id,
            RecoveryCode.code_hash == recovery_code_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    db.session.commit()
    return used == 1


def proves_identity(admin: Admin, code_or_password: str) -> bool:
    """Before turning it off or making new recovery codes: a current code or the password,
    so that a session left open on someone else's screen is not enough."""
    return take_code(admin, code_or_password) or accounts.password_matches(admin, code_or_password)


def pending_login(admin: Admin) -> dict:
    """What the session holds between the password and the code: whose password was
    right, and when. The admin's session id in it ends it with their sessions."""
    return {"session_id": admin.get_id(), "email": admin.email, "at": time.time()}


def admin_awaiting_code(pending: dict | None) -> Admin | None:
    """The admin whose password was right moments ago, while that still counts."""
    if not pending or time.time() - pending["at"] > PENDING_LOGIN_SECONDS:
        return None
    admin = accounts.admin_for_session(pending["session_id"])
    if admin is None or admin.totp_secret is None:
        return None
    return admin


def accepted_step(secret: str, code: str, after: int) -> int | None:
    """The time step, near now and later than ``after``, whose code ``code`` is."""
    totp = pyotp.TOTP(secret)
    # As bytes: compare_digest refuses a str with anything but ASCII in it.
    typed = "".join(code.split()).encode()
    now = totp.timecode(time.time())
    for step in range(max(now - VALID_WINDOW, after + 1), now + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), typed):
            return step
    return None


def replace_recovery_codes(admin: Admin) -> list[str]:
    """New recovery codes in place of the old, not committed. 64 random bits each, so a
    SHA-256 without salt is as good as a slow hash: nobody can try 2**64 codes."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.admin_id == admin.id))
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    db.session.add_all(
        RecoveryCode(admin_id=admin.id, code_hash=recovery_code_hash(code)) for code in codes
    )
    return codes


def new_recovery_code() -> str:
    digits = secrets.token_hex(8)
    return "-".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def recovery_code_hash(code: str) -> str:
    """The same for the code however it is typed: spaces, dashes and case do not count."""
    normalized = re.sub(r"[\s-]", "", code.lower())
    return hashlib.sha256(normalized.encode()).hexdigest()
