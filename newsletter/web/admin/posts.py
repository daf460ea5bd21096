"""Posts: the list, and the composer that writes one by hand or edits one."""

from flask import flash, redirect, render_template, request, url_for

from newsletter.admins import audit, roles
from newsletter.content import posts
from newsletter.content.models import Post
from newsletter.extensions import db
from newsletter.web.admin import bp
from newsletter.web.admin.previews import post_preview, previewing
from newsletter.web.forms import PostForm


@bp.get("/posts")
def post_list():
    return render_template("admin/posts.html", posts=posts.recent_posts())


@bp.route("/posts/new", methods=["GET", "POST"], defaults={"post_id": None})
@bp.route("/posts/<id:post_id>", methods=["GET", "POST"])
@roles.required("posts.write", writes_only=True)
def edit_post(post_id):
    post = db.get_or_404(Post, post_id) if post_id else None
    form = PostForm(obj=post)
    if previewing():
        return render_template(
            "admin/post_form.html", form=form, post=post, preview=post_preview(post)
        )
    if form.validate_on_submit():
        # A form posted without its summary field (a script) means an empty summary.
        summary = form.summary_markdown.data or ""
        saved = posts.save_post(post, form.title.data, form.link.data, summary)
        audit.record("posts.save", target=f"post {saved.id}", detail=form.title.data)
        flash("Post saved.", "note")
        return redirect(url_for("admin.post_list"))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/post_form.html", form=form, post=post), status
