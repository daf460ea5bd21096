"""The composer's preview of a post or a digest: the email its form holds, unsaved, live
beside the form, or on the page itself when the Preview button was pressed."""

from flask import jsonify, request

from newsletter.admins import roles
from newsletter.content import composer
from newsletter.content.models import Post
from newsletter.extensions import db
from newsletter.web.admin import bp


@bp.post("/preview")
@roles.required("posts.write")
def preview():
    """The composer's live preview. ``composing`` says which form: a post (``post_id``:
    the one it edits) or a digest."""
    if request.args.get("composing") == "post":
        post_id = request.args.get("post_id", type=int)
        shown = post_preview(db.get_or_404(Post, post_id) if post_id else None)
    else:
        shown = digest_preview()
    return jsonify(html=shown.html, text=shown.text)


def previewing() -> bool:
    """Whether the composer's Preview button was pressed: how the preview comes
    without JavaScript (CSRFProtect has checked the form's token already)."""
    return request.method == "POST" and "preview" in request.form


def post_preview(post):
    fields = request.form
    return composer.post_preview(
        post, fields.get("title", ""), fields.get("link", ""), fields.get("summary_markdown", "")
    )


def digest_preview():
    fields = request.form
    return composer.digest_preview(
        fields.get("subject", ""), fields.get("intro", ""), fields.getlist("posts", type=int)
    )
