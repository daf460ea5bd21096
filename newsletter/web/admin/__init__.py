"""The admin area at /admin: one blueprint, its routes in one module per area.

Here is what every area shares: the login every page needs (bar those marked
``open_to_visitors``), what every page's template gets, and small helpers of the request
and the response."""

from flask import Blueprint, current_app, make_response, request
from flask_login import current_user

from newsletter.admins import accounts, roles
from newsletter.core.row_ids import MAX_ROW_ID
from newsletter.extensions import login_manager
from newsletter.web.forms import LogoutForm

bp = Blueprint("admin", __name__, url_prefix="/admin")


@login_manager.user_loader
def load_admin(session_id):
    return accounts.admin_for_session(session_id)


def open_to_visitors(view):
    """Mark a view anyone may open, logged in or not: the login itself, an invitation."""
    view.open_to_visitors = True
    return view


@bp.before_request
def require_login():
    view = current_app.view_functions.get(request.endpoint)
    if not getattr(view, "open_to_visitors", False) and not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


@bp.context_processor
def logout_form():
    return {"logout_form": LogoutForm()}


@bp.context_processor
def permissions():
    """``can("…")`` in templates: a button the admin may not use is not shown."""
    return {"can": lambda permission: roles.can(current_user, permission)}


def row_id_arg(name):
    """A row id from the query string (0: before the first), or None when it is missing
    or no id could be."""
    value = request.args.get(name, type=int)
    return value if value is not None and 0 <= value <= MAX_ROW_ID else None


def no_store(html, status=200):
    """A page with a secret or recovery codes on it stays out of every cache."""
    response = make_response(html, status)
    response.headers["Cache-Control"] = "no-store"
    return response


# The areas register their routes on ``bp`` as they are imported, so they come last.
from newsletter.web.admin import (  # noqa: E402, F401
    api_keys,
    blocked_domains,
    dashboard,
    deliverability,
    digests,
    email_templates,
    engagement,
    newsletters,
    posts,
    previews,
    sessions,
    subscribers,
    team,
    webhooks,
)
