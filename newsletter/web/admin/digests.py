"""Digests: the list with each one's figures, composing a new one, its page with the
progress followed live, a test copy, and sending, scheduling, pausing and resuming."""

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from wtforms.fields.choices import SelectChoice

from newsletter.admins import audit, roles
from newsletter.bounces import feedback
from newsletter.content import composer, digests, newsletters
from newsletter.content.models import Digest
from newsletter.extensions import db
from newsletter.sending import hints
from newsletter.web.admin import bp, digest_figures
from newsletter.web.admin.previews import digest_preview, previewing
from newsletter.web.forms import ActionForm, DigestForm, ScheduleForm, TestSendForm

# What the buttons on a digest's page do, but scheduling, which takes a time.
DIGEST_ACTIONS = {"send": digests.send_now, "pause": digests.pause, "resume": digests.resume}


@bp.get("/digests")
def digest_list():
    history = digests.history()
    reactions = feedback.reactions([digest for digest, _counts in history])
    return render_template("admin/digests.html", history=history, reactions=reactions)


@bp.route("/digests/new", methods=["GET", "POST"])
@roles.required("digests.write")
def new_digest():
    form = DigestForm()
    offered = newsletters.all_newsletters()
    form.newsletter.choices = [SelectChoice(one.id, one.name) for one in offered]
    # The posts offered are those not yet sent in the newsletter the digest is for.
    asked = (request.form if request.method == "POST" else request.args).get("newsletter", type=int)
    newsletter = next((one for one in offered if one.id == asked), offered[0])
    form.newsletter.data = newsletter.id
    unsent = digests.unsent_posts(newsletter.id)
    form.posts.choices = [SelectChoice(post.id, post.title) for post in unsent]
    if request.method == "GET":
        form.posts.data = [post.id for post in unsent]
    shown = {"form": form, "newsletter": newsletter, "newsletters": offered}
    if previewing():
        return render_template("admin/digest_form.html", **shown, preview=digest_preview())
    if form.validate_on_submit():
        try:
            digest = digests.create_digest(
                form.subject.data, form.intro.data, form.posts.data, form.newsletter.data
            )
        except digests.DigestError as error:
            form.posts.errors.append(str(error))
        else:
            audit.record("digests.create", target=f"digest {digest.id}", detail=digest.subject)
            return redirect(url_for("admin.show_digest", digest_id=digest.id))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/digest_form.html", **shown), status


@bp.get("/digests/<id:digest_id>")
def show_digest(digest_id):
    digest = db.get_or_404(Digest, digest_id)
    preview = composer.preview(digest)
    progress = digests.progress(digest_id)
    return render_template(
        "admin/digest.html",
        digest=digest,
        live=digests.is_under_way(digest),
        preview=preview,
        progress=progress,
        engagement=digest_figures.shown(digest, progress["sent"], preview.html),
        reactions=feedback.reactions([digest])[digest.id],
        test_form=TestSendForm(),
        schedule_form=ScheduleForm(),
        action_form=ActionForm(),
    )


@bp.get("/digests/<id:digest_id>/progress")
def digest_progress(digest_id):
    digest = db.get_or_404(Digest, digest_id)
    return jsonify(status=digest.status, **digests.progress(digest_id))


@bp.post("/digests/<id:digest_id>/test")
@roles.required("digests.write")
def test_digest(digest_id):
    db.get_or_404(Digest, digest_id)
    form = TestSendForm()
    if not form.validate_on_submit():
        flash("Give an address for the test copy.", "error")
    elif hints.send_test_copy(digest_id, form.email.data):
        audit.record("digests.test", target=f"digest {digest_id}", detail=form.email.data)
        flash(f"A test copy is on its way to {form.email.data}.", "note")
    else:
        flash("The workers cannot be reached right now; try the test copy again soon.", "error")
    return redirect(url_for("admin.show_digest", digest_id=digest_id))


@bp.post("/digests/<id:digest_id>/<any(send, schedule, pause, resume):action>")
@roles.required("digests.write")
def digest_action(digest_id, action):
    db.get_or_404(Digest, digest_id)
    form = ScheduleForm() if action == "schedule" else ActionForm()
    if not form.validate_on_submit():
        abort(400, "The form was incomplete or expired; please try again.")
    send_at = form.send_at.data if action == "schedule" else None
    try:
        if action == "schedule":
            digests.schedule(digest_id, send_at)
        else:
            DIGEST_ACTIONS[action](digest_id)
    except digests.DigestError as error:
        flash(str(error), "error")
    else:
        when = send_at.isoformat() if send_at else None
        audit.record(f"digests.{action}", target=f"digest {digest_id}", detail=when)
    return redirect(url_for("admin.show_digest", digest_id=digest_id))
