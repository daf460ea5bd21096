"""Engagement tracking in the admin area: each newsletter's choice of it, at
/admin/newsletters/<id>/tracking, and a digest's link figures as CSV
(docs/engagement.md); the digest's page shows its figures (digest_figures.py)."""

from flask import Response, flash, redirect, render_template, request, url_for

from newsletter.admins import audit, roles
from newsletter.content import newsletters
from newsletter.content.models import Digest, Newsletter
from newsletter.engagement import figures
from newsletter.extensions import db
from newsletter.web.admin import bp
from newsletter.web.forms import TrackingForm


@bp.route("/newsletters/<id:newsletter_id>/tracking", methods=["GET", "POST"])
@roles.required("newsletters.write", writes_only=True)
def newsletter_tracking(newsletter_id):
    newsletter = db.get_or_404(Newsletter, newsletter_id)
    form = TrackingForm(obj=newsletter)
    if form.validate_on_submit():
        newsletters.update_newsletter(newsletter, tracking=form.tracking.data)
        audit.record("newsletters.tracking", target=newsletter.slug, detail=newsletter.tracking)
        flash(f"Tracking of “{newsletter.name}”: {newsletter.tracking}.", "note")
        return redirect(url_for("admin.edit_newsletter", newsletter_id=newsletter.id))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "admin/newsletter_tracking.html", form=form, newsletter=newsletter
    ), status


@bp.get("/digests/<id:digest_id>/links.csv")
def digest_links_csv(digest_id):
    """The digest's links with people's and machines' clicks, for a spreadsheet."""
    db.get_or_404(Digest, digest_id)
    return Response(
        list(figures.links_csv(figures.figures(digest_id))),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=digest-{digest_id}-links.csv"},
    )
