"""The editable email templates: each kind's HTML and text parts, previewed with sample
data before they are saved, and put back to the default."""

from flask import flash, redirect, render_template, url_for

from newsletter.admins import audit, roles
from newsletter.content import email_templates
from newsletter.web.admin import bp
from newsletter.web.admin.previews import previewing
from newsletter.web.forms import ActionForm, EmailTemplateForm

TEMPLATE_NAME = f"<any({', '.join(email_templates.KINDS)}):name>"


@bp.get("/email-templates")
def email_template_list():
    return render_template("admin/email_templates.html", listed=email_templates.listing())


@bp.route(f"/email-templates/{TEMPLATE_NAME}", methods=["GET", "POST"])
@roles.required("settings.write", writes_only=True)
def edit_email_template(name):
    """Save or preview (with sample data) both parts; either refuses a template that
    could not be sent, saying why."""
    form = EmailTemplateForm(data=email_templates.sources(name))
    shown = None
    if form.validate_on_submit():
        edited = {"html": form.html.data, "text": form.text.data}
        try:
            if previewing():
                shown = email_templates.preview(name, edited)
            else:
                email_templates.save(name, edited)
                audit.record("templates.save", target=name)
                flash(f"The {name} template is saved: the next emails use it.", "note")
                return redirect(url_for("admin.edit_email_template", name=name))
        except email_templates.TemplateRefused as error:
            form[error.part].errors.append(str(error))
    return render_template(
        "admin/email_template.html",
        form=form,
        name=name,
        kind=email_templates.KINDS[name],
        variables=email_templates.variables(name),
        reset_form=ActionForm(),
        preview=shown,
    ), 400 if form.errors else 200


@bp.post(f"/email-templates/{TEMPLATE_NAME}/reset")
@roles.required("settings.write")
def reset_email_template(name):
    if ActionForm().validate_on_submit():
        email_templates.reset(name)
        audit.record("templates.reset", target=name)
        flash(f"The {name} template is the default again.", "note")
    return redirect(url_for("admin.edit_email_template", name=name))
