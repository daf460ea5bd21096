"""Subscribers: the list (searched, filtered, paged), one subscriber's page, and what an admin
does to them: resend the confirmation, unsubscribe, erase, lift a suppression, the same
to many at once; the CSV export and import."""

import io

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from newsletter.admins import audit, roles
from newsletter.bounces import feedback
from newsletter.content import newsletters
from newsletter.core import i18n
from newsletter.core.addresses import InvalidSignup
from newsletter.core.row_ids import MAX_ROW_ID
from newsletter.extensions import db
from newsletter.subscribers import admin_actions, privacy
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from newsletter.web.admin import bp, row_id_arg
from newsletter.web.forms import ActionForm, ImportForm, LiftAddressForm


@bp.get("/subscribers")
def subscribers():
    query = request.args.get("q", "").strip()
    status = request.args.get("status", "")
    if status not in {s.value for s in SubscriberStatus}:
        status = ""
    choices = newsletters.all_newsletters()
    newsletter = next(
        (choice for choice in choices if choice.slug == request.args.get("newsletter")), None
    )
    after, before = row_id_arg("after"), row_id_arg("before")
    counts = admin_actions.status_counts()
    listing = admin_actions.browse(
        query,
        status,
        after=after,
        before=before,
        counts=counts,
        newsletter_id=newsletter and newsletter.id,
    )
    return render_template(
        "admin/subscribers.html",
        action_form=ActionForm(),
        lift_form=LiftAddressForm(),
        listing=listing,
        query=query,
        status=status,
        here={"after": after, "before": before},
        newsletter=newsletter.slug if newsletter else "",
        newsletter_options=choices,
        counts=counts,
        statuses=[s.value for s in SubscriberStatus],
    )


@bp.get("/subscribers/<id:subscriber_id>")
def show_subscriber(subscriber_id):
    """One subscriber: their consent, the mail they were sent, and what came back of it."""
    subscriber = db.get_or_404(Subscriber, subscriber_id)
    return render_template(
        "admin/subscriber.html",
        subscriber=subscriber,
        record=privacy.data_of(subscriber),
        feedback_events=feedback.events_of(subscriber.id),
        language=i18n.LANGUAGES[i18n.subscriber_locale(subscriber.locale)],
        language_is_default=subscriber.locale is None,
        suppressed=admin_actions.is_suppressed(subscriber),
        action_form=ActionForm(),
    )


@bp.post("/subscribers/<id:subscriber_id>/erase")
@roles.required("subscribers.write")
def erase_subscriber(subscriber_id):
    """Erase a subscriber at their request (by mail, by phone): as "Delete my data"."""
    subscriber = db.get_or_404(Subscriber, subscriber_id)
    if ActionForm().validate_on_submit():
        email = subscriber.email
        privacy.erase(subscriber, by="admin")
        # The entry names the subscriber by id only: the erasure keeps no address.
        audit.record("subscribers.erase", target=f"subscriber {subscriber_id}")
        flash(f"Erased {email}; the address will not be added again.", "info")
    return redirect(url_for("admin.subscribers"))


@bp.post("/subscribers/<id:subscriber_id>/<any(resend, unsubscribe):action>")
@roles.required("subscribers.write")
def subscriber_action(subscriber_id, action):
    subscriber = db.get_or_404(Subscriber, subscriber_id)
    if ActionForm().validate_on_submit():
        flash(BULK_ACTIONS[action]([subscriber.id]), "info")
        audit.record(f"subscribers.{action}", target=f"subscriber {subscriber_id}")
    return redirect(url_for("admin.show_subscriber", subscriber_id=subscriber_id))


@bp.post("/subscribers/<id:subscriber_id>/lift-suppression")
@roles.required("subscribers.write")
def lift_suppression(subscriber_id):
    """Allow a bounced, complained or suppressed address again: the subscriber gets a fresh
    confirmation email, and no other mail until they confirm."""
    subscriber = db.get_or_404(Subscriber, subscriber_id)
    if ActionForm().validate_on_submit():
        try:
            owed = admin_actions.lift_suppression(subscriber)
        except admin_actions.NotSuppressed as error:
            flash(str(error), "error")
        else:
            audit.record("suppressions.lift", target=f"subscriber {subscriber_id}")
            flash(lifted_message(subscriber.email, owed), "info")
    return redirect(url_for("admin.show_subscriber", subscriber_id=subscriber_id))


@bp.post("/subscribers/lift-erased")
@roles.required("subscribers.write")
def lift_erased_address():
    """Allow an erased address again: it signs up afresh and must confirm."""
    form = LiftAddressForm()
    if not form.validate_on_submit():
        abort(400, "Give the erased address to allow again.")
    try:
        admin_actions.lift_erased_address(form.email.data)
    except (admin_actions.NotSuppressed, InvalidSignup) as error:
        flash(str(error), "error")
    else:
        audit.record("suppressions.lift", target="an erased address", detail="erased")
        flash(lifted_message(form.email.data, owed=True), "info")
    return redirect(url_for("admin.subscribers"))


def lifted_message(email, owed):
    if owed:
        return (
            f"{email} is allowed again: a confirmation email is on its way, and no other "
            "mail until they confirm."
        )
    return (
        f"{email} is allowed again, pending; they had as many confirmation emails today "
        "as the limit allows."
    )


@bp.post("/subscribers/bulk")
@roles.required("subscribers.write")
def bulk_action():
    """One action on the subscribers ticked in the list."""
    name = request.form.get("action", "")
    action = BULK_ACTIONS.get(name)
    ids = [int(n) for n in request.form.getlist("ids") if n.isdigit() and int(n) <= MAX_ROW_ID]
    if not ActionForm().validate_on_submit() or action is None or not ids:
        flash("Tick some subscribers and choose what to do with them.", "error")
    else:
        flash(action(ids), "info")
        audit.record("subscribers.bulk", target=name, detail=f"subscribers {ids_text(ids)}")
    return redirect(url_for("admin.subscribers", **request.args))


def ids_text(ids):
    return " ".join(str(n) for n in ids)


def resend_to(ids):
    owed = admin_actions.resend_confirmation(ids)
    return (
        f"A new confirmation email is on its way to {owed} of {len(ids)} "
        "(only pending readers get one, within the limits of the sign-up form)."
    )


def unsubscribe_all(ids):
    changed = admin_actions.unsubscribe_by_admin(ids)
    return f"Unsubscribed {changed} of {len(ids)} (the others were not getting mail)."


def erase_all(ids):
    erased = privacy.erase_many(ids, by="admin")
    return f"Erased {erased}; their addresses will not be added again."


BULK_ACTIONS = {"resend": resend_to, "unsubscribe": unsubscribe_all, "erase": erase_all}


@bp.get("/subscribers.csv")
@roles.required("subscribers.export")
def export_subscribers():
    audit.record("subscribers.export", detail="subscribers.csv")
    return Response(
        stream_with_context(admin_actions.export_rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=subscribers.csv"},
    )


@bp.route("/subscribers/import", methods=["GET", "POST"])
@roles.required("subscribers.write")
def import_subscribers():
    form = ImportForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("admin/import.html", form=form), status
    lines = io.TextIOWrapper(form.file.data.stream, encoding="utf-8-sig", newline="")
    try:
        report = admin_actions.import_subscribers(lines, confirmed=form.confirmed.data)
    except admin_actions.ImportFileError as error:
        form.file.errors.append(str(error))
        return render_template("admin/import.html", form=form), 400
    audit.record(
        "subscribers.import",
        target=form.file.data.filename,
        detail=f"{import_summary(report)}, confirmed: {'yes' if form.confirmed.data else 'no'}",
    )
    return render_template("admin/import.html", form=ImportForm(formdata=None), report=report)


def import_summary(report):
    return f"added {report.added}, skipped {report.skipped}, rejected {report.rejected}"
