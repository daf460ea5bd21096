"""Outgoing webhooks: the endpoints our events are posted to (the providers' incoming
events are web/webhooks.py)."""

from flask import flash, redirect, render_template, url_for

from newsletter.admins import audit, roles
from newsletter.web.admin import bp, no_store
from newsletter.web.forms import ActionForm, WebhookEndpointForm
from newsletter.webhooks import outgoing


@bp.route("/webhooks", methods=["GET", "POST"])
@roles.required("webhooks.write", writes_only=True)
def webhooks():
    """The endpoints and how their latest delivery went; a new one's secret is shown on
    the page that adds it, and never again."""
    form = WebhookEndpointForm()
    added = None
    if form.validate_on_submit():
        try:
            added = outgoing.add_endpoint(form.url.data.strip(), form.events.data)
        except outgoing.InvalidEndpoint as error:
            form.url.errors.append(str(error))
        else:
            events = " ".join(form.events.data)
            audit.record("webhooks.create", target=form.url.data.strip(), detail=events)
    status = 400 if form.errors else 200
    html = render_template(
        "admin/webhooks.html",
        form=form,
        added=added,
        endpoints=outgoing.endpoints(),
        action_form=ActionForm(),
    )
    return no_store(html, status)


@bp.post("/webhooks/<id:endpoint_id>/deactivate")
@roles.required("webhooks.write")
def deactivate_webhook(endpoint_id):
    if ActionForm().validate_on_submit():
        outgoing.deactivate(endpoint_id)
        audit.record("webhooks.deactivate", target=f"endpoint {endpoint_id}")
        flash("The endpoint gets no more events.", "note")
    return redirect(url_for("admin.webhooks"))
