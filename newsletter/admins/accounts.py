"""Admin accounts: creating them, checking their passwords, ending their sessions,
their roles, and inviting new ones by an emailed link.

The second factor of a login is in ``newsletter.admins.two_factor``; what a role may do is in
``newsletter.admins.roles``."""

import hmac
import logging
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app, render_template
from itsdangerous import BadSignature, SignatureExpired
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from newsletter.admins import roles
from newsletter.admins.models import Admin, AdminInvitation, RecoveryCode
from newsletter.core import tokens
from newsletter.core.addresses import normalize_email
from newsletter.core.models import new_token_nonce, utcnow
from newsletter.core.writes import rows_changed
from newsletter.extensions import db
from newsletter.mail import relay
from newsletter.mail.digest import sender_domain

log = logging.getLogger(__name__)
# The salt of invitation links: a token made for a subscriber's link never works here.
INVITATION = "admin-invitation"
# An invitation this old and still unsent has lost its task: the sweep sends it.
SWEEP_GRACE = timedelta(seconds=30)

PASSWORD_MIN_LENGTH = 10
# Checked against when the address is unknown, so a wrong address costs as much
# time as a wrong password and does not reveal which admins exist.
UNKNOWN_ADMIN_HASH = generate_password_hash("no such admin")


class AdminError(ValueError):
    """The admin cannot be created; the message says why."""


def create_admin(email: str, password: str, role: str | None = None) -> Admin:
    """Create an admin (an owner unless ``role`` says otherwise), or set a new password
    (and the role, when given) for an existing one. Returns the Admin."""
    address = normalize_email(email)
    if len(password) < PASSWORD_MIN_LENGTH:
        raise AdminError(f"The password must be at least {PASSWORD_MIN_LENGTH} characters long.")
    check_role(role or roles.OWNER)
    admin = db.session.scalar(select(Admin).where(Admin.email == address))
    if admin is None:
        admin = Admin(email=address, role=role or roles.OWNER)
        db.session.add(admin)
    elif role is not None and role != admin.role:
        _lock_owners(admin, role)
        admin.role = role
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


def check_role(role: str) -> None:
    if role not in roles.ROLES:
        raise AdminError(f"There is no role {role!r}: choose one of {', '.join(roles.ROLES)}.")


def all_admins() -> list[Admin]:
    return list(db.session.scalars(select(Admin).order_by(Admin.email)))


def _lock_owners(admin: Admin, new_role: str | None) -> None:
    """Refuse to take the last owner's role away (``new_role`` None: removal). The
    owners' rows stay locked until the caller commits, so two owners demoting each
    other at once cannot both succeed (PostgreSQL; SQLite has one writer anyway)."""
    if admin.role != roles.OWNER or new_role == roles.OWNER:
        return
    owners = db.session.scalars(
        select(Admin.id).where(Admin.role == roles.OWNER).with_for_update()
    ).all()
    if owners == [admin.id]:
        db.session.rollback()
        raise AdminError(f"{admin.email} is the last owner: make another admin an owner first.")


def set_role(admin: Admin, role: str) -> bool:
    """Give an admin another role; whether it changed. Takes effect on their next page."""
    check_role(role)
    if admin.role == role:
        return False
    _lock_owners(admin, role)
    admin.role = role
    db.session.commit()
    return True


def remove_admin(admin: Admin) -> None:
    """Delete an admin: their sessions end with their row, their recovery codes too."""
    _lock_owners(admin, None)
    db.session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.admin_id == admin.id))
    db.session.delete(admin)
    db.session.commit()


class InvitationNotValid(Exception):
    """An invitation link that is forged, expired, used already or withdrawn."""


def invite(email: str, role: str, invited_by: str) -> AdminInvitation:
    """Record an invitation to become an admin with ``role``; its email is sent by a
    worker (``send_invitation``). Refuses an address that is an admin already."""
    address = normalize_email(email)
    check_role(role)
    if admin_by_email(address) is not None:
        raise AdminError(f"{address} is an admin already: change their role instead.")
    invitation = AdminInvitation(email=address, role=role, invited_by=invited_by)
    db.session.add(invitation)
    db.session.commit()
    return invitation


def pending_invitations() -> list[AdminInvitation]:
    """Invitations neither used nor expired, newest first."""
    oldest = utcnow() - _max_age()
    return list(
        db.session.scalars(
            select(AdminInvitation)
            .where(AdminInvitation.accepted_at.is_(None), AdminInvitation.created_at > oldest)
            .order_by(AdminInvitation.id.desc())
        )
    )


def withdraw_invitation(invitation: AdminInvitation) -> None:
    """Make an unused invitation's link stop working (it counts as used)."""
    invitation.accepted_at = invitation.accepted_at or utcnow()
    db.session.commit()


def unsent_invitation_ids() -> list[int]:
    """Invitations still owed their email (the broker was down, the relay failed), for
    the sweep; not those just made, whose own task is sending them."""
    now = utcnow()
    return list(
        db.session.scalars(
            select(AdminInvitation.id).where(
                AdminInvitation.sent_at.is_(None),
                AdminInvitation.accepted_at.is_(None),
                AdminInvitation.created_at > now - _max_age(),
                AdminInvitation.created_at < now - SWEEP_GRACE,
            )
        )
    )


def _max_age() -> timedelta:
    return timedelta(seconds=current_app.config["ADMIN_INVITATION_MAX_AGE"])


def invitation_token(invitation: AdminInvitation) -> str:
    return tokens.serializer(INVITATION).dumps([invitation.id, invitation.nonce])


def open_invitation(token: str) -> AdminInvitation:
    """The unused invitation a link names; raises InvitationNotValid."""
    max_age = current_app.config["ADMIN_INVITATION_MAX_AGE"]
    try:
        invitation_id, nonce = tokens.serializer(INVITATION).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature, TypeError, ValueError):
        raise InvitationNotValid() from None
    if type(invitation_id) is not int:
        raise InvitationNotValid()
    invitation = db.session.get(AdminInvitation, invitation_id)
    if (
        invitation is None
        or invitation.accepted_at is not None
        or not hmac.compare_digest(invitation.nonce, str(nonce))
    ):
        raise InvitationNotValid()
    return invitation


def accept_invitation(token: str, password: str) -> Admin:
    """Make the invitee an admin with the invited role and this password; the link
    works once (two tabs posting at once: one wins). Raises InvitationNotValid or
    AdminError (a short password, or the address became an admin meanwhile)."""
    invitation = open_invitation(token)
    if len(password) < PASSWORD_MIN_LENGTH:
        raise AdminError(f"The password must be at least {PASSWORD_MIN_LENGTH} characters long.")
    if admin_by_email(invitation.email) is not None:
        raise AdminError(f"{invitation.email} is an admin already: log in instead.")
    used = rows_changed(
        update(AdminInvitation)
        .where(AdminInvitation.id == invitation.id, AdminInvitation.accepted_at.is_(None))
        .values(accepted_at=utcnow())
    )
    if not used:
        db.session.rollback()
        raise InvitationNotValid()
    admin = Admin(
        email=invitation.email,
        role=invitation.role,
        password_hash=generate_password_hash(password),
    )
    db.session.add(admin)
    try:
        db.session.commit()
    except IntegrityError:
        # Another invitation to the same address was accepted a moment ago.
        db.session.rollback()
        raise AdminError(f"{invitation.email} is an admin already: log in instead.") from None
    return admin


def send_invitation(invitation_id: int) -> bool:
    """Email an invitation its link, once: whether it went out now. A relay that
    fails leaves it unsent, for the sweep to try again."""
    invitation = db.session.get(AdminInvitation, invitation_id)
    if invitation is None or invitation.sent_at or invitation.accepted_at:
        return False
    raw = _invitation_message(invitation)
    try:
        with relay.connection() as sender:
            sender.send(relay.Envelope(invitation.email), raw, before_commit=lambda: None)
    except relay.DeliveryFailure as error:
        log.warning("invitation %s to %s not sent: %s", invitation.id, invitation.email, error)
        return False
    invitation.sent_at = utcnow()
    db.session.commit()
    return True


def _invitation_message(invitation: AdminInvitation) -> bytes:
    config = current_app.config
    url = f"{config['BASE_URL']}/admin/invitation/{invitation_token(invitation)}"
    message = EmailMessage()
    message["From"] = config["MAIL_DEFAULT_SENDER"]
    message["To"] = invitation.email
    message["Subject"] = f"You are invited to help run {config['SITE_NAME']}"
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid("invitation", domain=sender_domain())
    message.set_content(
        render_template(
            "email/admin_invitation.txt",
            invitation=invitation,
            url=url,
            site_name=config["SITE_NAME"],
            max_age_hours=config["ADMIN_INVITATION_MAX_AGE"] // 3600,
        )
    )
    return message.as_bytes(policy=policy.SMTP)
