"""The keys scripts use for /api/v1: listed with their scopes, and revoked; each is made
with `flask create-api-key`."""

from flask import flash, redirect, render_template, url_for

from newsletter.admins import api_keys, roles
from newsletter.core.models import utcnow
from newsletter.web.admin import bp
from newsletter.web.forms import ActionForm


@bp.get("/api-keys")
def api_key_list():
    return render_template(
        "admin/api_keys.html",
        keys=api_keys.all_keys(),
        scopes=api_keys.SCOPES,
        now=utcnow(),
        form=ActionForm(),
    )


@bp.post("/api-keys/<id:key_id>/revoke")
@roles.required("api_keys.write")
def revoke_api_key(key_id):
    if ActionForm().validate_on_submit():
        api_keys.revoke(key_id)
        flash("The key no longer works.", "note")
    return redirect(url_for("admin.api_key_list"))
