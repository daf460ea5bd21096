"""Admin accounts: creating them, checking their passwords, ending their sessions.

The second factor of a login is in ``newsletter.two_factor``."""

import hmac

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from newsletter.addresses import normalize_email
from newsletter.extensions import db
from newsletter.models import Admin, new_token_nonce, utcnow

PASSWORD_MIN_LENGTH = 10
# Checked against when the address is unknown, so a wrong address costs as much
# time as a wrong password and does not reveal which admins exist.
UNKNOWN_ADMIN_HASH = generate_password_hash("no such admin")


class AdminError(ValueError):
    """The admin cannot be created; the message says why."""


def create_admin(email: str, password: str) -> Admin:
    """Create an admin, or set a new password for an existing one. Returns the Admin."""
    address = normalize_email(email)
    if len(password) < PASSWORD_MIN_LENGTH:
        raise AdminError(f"The password must be at least {PASSWORD_MIN_LENGTH} characters long.")
    admin = db.session.scalar(select(Admin).where(Admin.email == address))
    if admin is None:
        admin = Admin(email=address)
        db.session.add(admin)
    admin.password_hash = generate_password_hash(password)
    admin.session_token = new_token_nonce()
    db.session.commit()
    return admin


def end_sessions(admin: Admin) -> None:
    """End every session of this admin, on every browser that holds one."""
    admin.session_token = new_token_nonce()
    db.session.commit()


def admin_for_session(session_id: str) -> Admin | None:
    """The admin a session's id names, if that session has not been ended."""
    admin_id, _, token = (session_id or "").partition(".")
    if not admin_id.isdigit():
        return None
    admin = db.session.get(Admin, int(admin_id))
    if admin is None or not hmac.compare_digest(admin.session_token, token):
        return None
    return admin


def admin_by_email(email: str) -> Admin | None:
    return db.session.scalar(select(Admin).where(Admin.email == (email or "").strip().lower()))


def authenticate(email: str, password: str) -> Admin | None:
    """The admin with this address and password, or None."""
    admin = admin_by_email(email)
    if admin is None:
        check_password_hash(UNKNOWN_ADMIN_HASH, password)
        return None
    return admin if password_matches(admin, password) else None


def password_matches(admin: Admin, password: str) -> bool:
    return check_password_hash(admin.password_hash, password)


def record_login(admin: Admin) -> None:
    """Called once the admin is in: after the password, or after the code that follows it."""
    admin.last_login_at = utcnow()
    db.session.commit()
