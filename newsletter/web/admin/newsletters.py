"""Newsletters (each one's name, visibility and digest schedule) and the site's settings."""

from flask import flash, redirect, render_template, request, url_for

from newsletter.admins import audit, roles
from newsletter.content import newsletters
from newsletter.content.models import Newsletter
from newsletter.core import settings
from newsletter.extensions import db
from newsletter.web.admin import bp
from newsletter.web.forms import NewsletterForm, SettingsForm


@bp.get("/newsletters")
def newsletter_list():
    return render_template("admin/newsletters.html", listed=newsletters.overview())


@bp.route("/newsletters/new", methods=["GET", "POST"])
@roles.required("newsletters.write")
def new_newsletter():
    form = NewsletterForm()
    if form.validate_on_submit():
        try:
            newsletter = newsletters.create(
                form.slug.data,
                form.name.data,
                form.description.data,
                default_on=form.default_on.data,
                public=form.public.data,
            )
        except newsletters.NewsletterError as error:
            form.slug.errors.append(str(error))
        else:
            set_schedule(newsletter, form)
            audit.record("newsletters.create", target=newsletter.slug, detail=newsletter.name)
            flash(f"Newsletter “{newsletter.name}” created.", "note")
            return redirect(url_for("admin.newsletter_list"))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/newsletter_form.html", form=form, newsletter=None), status


@bp.route("/newsletters/<id:newsletter_id>", methods=["GET", "POST"])
@roles.required("newsletters.write", writes_only=True)
def edit_newsletter(newsletter_id):
    newsletter = db.get_or_404(Newsletter, newsletter_id)
    form = NewsletterForm(obj=newsletter)
    # The slug stays what it was made: subscribers' mail filters and scripts know it.
    del form.slug
    if form.validate_on_submit():
        newsletters.update_newsletter(
            newsletter,
            name=form.name.data,
            description=form.description.data,
            default_on=form.default_on.data,
            public=form.public.data,
        )
        set_schedule(newsletter, form)
        audit.record("newsletters.update", target=newsletter.slug, detail=newsletter.name)
        flash(f"Newsletter “{newsletter.name}” saved.", "note")
        return redirect(url_for("admin.newsletter_list"))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/newsletter_form.html", form=form, newsletter=newsletter), status


def set_schedule(newsletter, form):
    newsletters.set_schedule(
        newsletter,
        form.schedule.data,
        form.schedule_weekday.data,
        form.schedule_hour.data,
        form.schedule_category.data,
    )


@bp.route("/settings", methods=["GET", "POST"])
@roles.required("settings.write", writes_only=True)
def edit_settings():
    form = SettingsForm(obj=settings.current())
    if form.validate_on_submit():
        fields = {name: field.data for name, field in form._fields.items() if name != "csrf_token"}
        settings.update(**fields)
        audit.record("settings.update", detail=", ".join(sorted(fields)))
        flash("Settings saved.", "note")
        return redirect(url_for("admin.edit_settings"))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/settings.html", form=form), status
