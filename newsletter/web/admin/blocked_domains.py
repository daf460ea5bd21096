"""The domains whose addresses may not sign up, beside the list of disposable ones."""

from flask import current_app, flash, redirect, render_template, request, url_for

from newsletter.admins import audit, roles
from newsletter.subscribers import blocked_domains
from newsletter.web.admin import bp
from newsletter.web.forms import BlockedDomainsForm


@bp.route("/blocked-domains", methods=["GET", "POST"])
@roles.required("settings.write", writes_only=True)
def edit_blocked_domains():
    form = BlockedDomainsForm()
    if form.validate_on_submit():
        try:
            domains = blocked_domains.parse(form.domains.data or "")
        except blocked_domains.InvalidBlocklist as error:
            form.domains.errors.append(str(error))
        else:
            blocked_domains.replace(domains)
            audit.record("blocked_domains.update", detail=" ".join(domains))
            flash(f"Saved: {len(domains)} blocked domains.", "note")
            return redirect(url_for("admin.edit_blocked_domains"))
    if request.method == "GET":
        form.domains.data = "\n".join(blocked_domains.listed())
    status = 400 if request.method == "POST" else 200
    return render_template(
        "admin/blocked_domains.html",
        form=form,
        disposable_blocked=current_app.config["BLOCK_DISPOSABLE_DOMAINS"],
    ), status
