"""What each admin may do: the roles, and the one table of permissions they grant.

The admin pages check a permission with ``required`` (a 403 page otherwise) and their
templates with ``can``, so a button the admin may not use is not shown. The table is
the one docs/security.md's "Who may do what" shows.
"""

from functools import wraps

from flask import abort, request
from flask_login import current_user

OWNER = "owner"
EDITOR = "editor"
VIEWER = "viewer"
ROLES = (OWNER, EDITOR, VIEWER)
EVERYONE = frozenset(ROLES)
WRITERS = frozenset({OWNER, EDITOR})
OWNERS = frozenset({OWNER})

# Each permission and the roles that have it. Newsletters are the owner's: a
# newsletter's "on by default" and "public" decide what subscribers consented to and who
# may read its archive, and its schedule sends by itself.
PERMISSIONS = {
    # Figures, lists, a subscriber's page, digests, posts, settings: to look at.
    "pages.view": EVERYONE,
    "posts.write": WRITERS,
    # Compose, preview, test-send, send, schedule, pause and resume digests.
    "digests.write": WRITERS,
    "subscribers.export": OWNERS,
    # Import, erase, unsubscribe, resend confirmations, lift a suppression.
    "subscribers.write": OWNERS,
    "newsletters.write": OWNERS,
    # Site settings, email templates, blocked domains.
    "settings.write": OWNERS,
    "webhooks.write": OWNERS,
    "api_keys.write": OWNERS,
    # Invite, change the role of and remove admins.
    "admins.manage": OWNERS,
    "audit.read": OWNERS,
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def can(admin, permission: str) -> bool:
    """Whether this admin's role grants the permission (an unknown role grants nothing)."""
    return getattr(admin, "role", None) in PERMISSIONS[permission]


def required(permission: str, writes_only: bool = False):
    """Refuse the view with a 403 page unless the logged-in admin has ``permission``;
    with ``writes_only``, only its POSTs are refused: a form's page can still be seen."""
    if permission not in PERMISSIONS:
        raise KeyError(f"No permission {permission!r} in roles.PERMISSIONS")

    def decorate(view):
        @wraps(view)
        def checked(*args, **kwargs):
            exempt = writes_only and request.method in SAFE_METHODS
            if not exempt and not can(current_user, permission):
                abort(403, f"Your role ({current_user.role}) may not do this ({permission}).")
            return view(*args, **kwargs)

        return checked

    return decorate
