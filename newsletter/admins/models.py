"""What the data is about admins: accounts, API keys, invitations, recovery codes, the audit log."""

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from newsletter import secret_box
from newsletter.core.models import new_token_nonce, utcnow
from newsletter.extensions import Model


class Admin(UserMixin, Model):
    """Somebody who may log in to /admin. The password is stored only as a hash."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Part of every session's id: a new one (at logout, or a new password) ends every
    # session made before, copied cookies included.
    session_token: Mapped[str] = mapped_column(String(32), default=new_token_nonce)
    # Two-factor login (TOTP): no secret means it is off. The time step of the last code
    # accepted, so that a code seen over a shoulder or in a proxy's log is not taken again.
    # The secret is sealed (secret_box): a copy of the table is no copy of the phone.
    # Read and set ``totp_secret``.
    sealed_totp_secret: Mapped[str | None] = mapped_column(
        "totp_secret", String(secret_box.SEALED_LENGTH)
    )
    totp_last_step: Mapped[int | None]
    # What this admin may do (roles.py): owner, editor or viewer.
    role: Mapped[str] = mapped_column(String(16), default="owner", server_default="owner")

    def get_id(self) -> str:
        return f"{self.id}.{self.session_token}"

    @property
    def totp_secret(self) -> str | None:
        sealed = self.sealed_totp_secret
        return None if sealed is None else secret_box.open_sealed(sealed, secret_box.TOTP)

    @totp_secret.setter
    def totp_secret(self, plaintext: str | None) -> None:
        self.sealed_totp_secret = (
            None if plaintext is None else secret_box.seal(plaintext, secret_box.TOTP)
        )


class ApiKey(Model):
    """A key that a script sends as ``Authorization: Bearer …`` to use /api/v1
    (api_keys.py). Only its SHA-256 is kept: the key itself is shown once, when made."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The key's first characters, so that admins can tell which key a script holds.
    prefix: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # The scopes the key may use, space-separated; None: every scope (keys made before
    # scopes existed, or made without naming any).
    scopes: Mapped[str | None] = mapped_column(String(200))
    # After this the key is refused as if revoked; None: it never expires.
    expires_at: Mapped[datetime | None]


class AdminInvitation(Model):
    """An owner's invitation to become an admin (accounts.invite): the emailed link names
    it, and works once, until ADMIN_INVITATION_MAX_AGE has passed."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    # Who invited, by name: the invitation outlives the admin who sent it.
    invited_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set once the email went out; the sweep sends those still unsent.
    sent_at: Mapped[datetime | None]
    # Set when the link was used: it never works again.
    accepted_at: Mapped[datetime | None]
    # Part of the link, so a link cannot be made from the row id alone.
    nonce: Mapped[str] = mapped_column(String(32), default=new_token_nonce)


class AuditEntry(Model):
    """One thing an admin, an API key or an operator's command did (audit.py). Rows are
    only ever added, and deleted after AUDIT_RETENTION_DAYS; the actor is kept by name
    too, so an entry outlives the admin or key it names."""

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # admin, api_key, command or system; the actor's row id where it has one.
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None]
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(48), index=True)
    target: Mapped[str | None] = mapped_column(String(320))
    detail: Mapped[str | None] = mapped_column(Text)
    # Dropped after IP_RETENTION_DAYS, as the consent log's are.
    ip: Mapped[str | None] = mapped_column(String(45))


class RecoveryCode(Model):
    """A code that stands in for the authenticator app once; only its SHA-256 is kept."""

    id: Mapped[int] = mapped_column(primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admin.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]
