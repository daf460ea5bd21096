"""The admin area's people and record: owners manage admins (roles, invitations) and read
the audit log; an invitee accepts at the page their email links to, before they have an
account."""

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user

from newsletter.admins import accounts, audit, roles
from newsletter.admins.models import Admin, AdminInvitation
from newsletter.core.addresses import InvalidSignup
from newsletter.extensions import db
from newsletter.sending import hints
from newsletter.web.admin import bp, open_to_visitors, row_id_arg
from newsletter.web.forms import AcceptInvitationForm, ActionForm, InviteForm, RoleForm

ASK_AGAIN = "Ask an owner for a new one."


@bp.route("/admins", methods=["GET", "POST"])
@roles.required("admins.manage")
def admins():
    """Every admin with their role, and the invitations not yet used; POST invites."""
    form = InviteForm()
    if form.validate_on_submit():
        try:
            invitation = accounts.invite(form.email.data, form.role.data, current_user.email)
        except (accounts.AdminError, InvalidSignup) as error:
            form.email.errors.append(str(error))
        else:
            hints.send_invitation(invitation.id)
            audit.record("admins.invite", target=invitation.email, detail=invitation.role)
            flash(f"An invitation is on its way to {invitation.email}.", "note")
            return redirect(url_for("admin.admins"))
    return render_template(
        "admin/admins.html",
        form=form,
        admins=accounts.all_admins(),
        invitations=accounts.pending_invitations(),
        role_form=RoleForm(),
        action_form=ActionForm(),
    ), 400 if form.errors else 200


@bp.post("/admins/<id:admin_id>/role")
@roles.required("admins.manage")
def change_role(admin_id):
    changed = db.get_or_404(Admin, admin_id)
    form = RoleForm()
    if not form.validate_on_submit():
        abort(400, f"Choose one of the roles: {', '.join(roles.ROLES)}.")
    before = changed.role
    try:
        if accounts.set_role(changed, form.role.data):
            audit.record("admins.role", target=changed.email, detail=f"{before} → {changed.role}")
            flash(f"{changed.email} is now {changed.role}.", "note")
    except accounts.AdminError as error:
        flash(str(error), "error")
    if not roles.can(current_user, "admins.manage"):
        # An owner who stepped down: this page is no longer theirs.
        return redirect(url_for("admin.dashboard"))
    return redirect(url_for("admin.admins"))


@bp.post("/admins/<id:admin_id>/remove")
@roles.required("admins.manage")
def remove_admin(admin_id):
    removed = db.get_or_404(Admin, admin_id)
    if ActionForm().validate_on_submit():
        email, role = removed.email, removed.role
        try:
            accounts.remove_admin(removed)
        except accounts.AdminError as error:
            flash(str(error), "error")
        else:
            audit.record("admins.remove", target=email, detail=role)
            flash(f"{email} is no longer an admin; their sessions have ended.", "note")
    return redirect(url_for("admin.admins"))


@bp.post("/invitations/<id:invitation_id>/withdraw")
@roles.required("admins.manage")
def withdraw_invitation(invitation_id):
    invitation = db.get_or_404(AdminInvitation, invitation_id)
    if ActionForm().validate_on_submit():
        accounts.withdraw_invitation(invitation)
        audit.record("admins.invitation_withdraw", target=invitation.email)
        flash(f"The invitation to {invitation.email} no longer works.", "note")
    return redirect(url_for("admin.admins"))


@bp.route("/invitation/<token>", methods=["GET", "POST"])
# The invitee has no account yet: the link is their only credential.
@open_to_visitors
def accept_invitation(token):
    """The invitee chooses a password and is an admin, logged in, with the invited role."""
    try:
        invitation = accounts.open_invitation(token)
    except accounts.InvitationNotValid:
        abort(404, f"This invitation link has expired or was used already. {ASK_AGAIN}")
    form = AcceptInvitationForm()
    if form.validate_on_submit():
        try:
            joined = accounts.accept_invitation(token, form.password.data)
        except accounts.InvitationNotValid:
            abort(404, f"This invitation link was used already. {ASK_AGAIN}")
        except accounts.AdminError as error:
            form.password.errors.append(str(error))
        else:
            # The new admin is the actor: logged in first, then recorded.
            login_user(joined)
            audit.record("admins.invitation_accept", target=joined.email, detail=joined.role)
            return redirect(url_for("admin.dashboard"))
    return render_template(
        "admin/accept_invitation.html",
        form=form,
        invitation=invitation,
        min_length=accounts.PASSWORD_MIN_LENGTH,
    ), 400 if form.errors else 200


@bp.get("/audit")
@roles.required("audit.read")
def audit_log():
    """The newest entries first, a page at a time (``before``: older than that id),
    only one action's when ``action`` is given."""
    action = request.args.get("action", "").strip()[:48] or None
    entries, older = audit.page_of_entries(row_id_arg("before"), action)
    return render_template(
        "admin/audit.html",
        entries=entries,
        older=older,
        action=action or "",
        actions=audit.ACTIONS,
    )


@bp.get("/audit.csv")
@roles.required("audit.read")
def audit_csv():
    return Response(
        audit.as_csv(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=audit.csv"},
    )
