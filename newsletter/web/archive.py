"""The public archive of sent digests: the list, each digest's page and the Atom feed."""

import re

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from newsletter.content import archive
from newsletter.core import permalinks
from newsletter.mail import digest as digest_mail

bp = Blueprint("archive", __name__)
# Nine digits at most: int() refuses thousands, and no archive has a billion pages.
PAGE_NUMBER = re.compile("[1-9][0-9]{0,8}")


@bp.errorhandler(archive.NotInArchive)
def not_in_archive(_error):
    return render_template(
        "public/message.html",
        title=_("Not in the archive"),
        text=_("There is no such digest or page in the archive."),
    ), 404


@bp.context_processor
def links():
    return {"digest_url": digest_url}


def digest_url(digest):
    return url_for("archive.show", digest_id=digest.id, slug=permalinks.slug(digest.subject))


@bp.get("/archive")
def index():
    number = request.args.get("page", "1")
    if not PAGE_NUMBER.fullmatch(number):
        abort(404)
    return render_template("archive/index.html", page=archive.page(int(number)))


@bp.get("/archive/<id:digest_id>", defaults={"slug": ""})
@bp.get("/archive/<id:digest_id>-<slug>")
def show(digest_id, slug):
    digest = archive.sent_digest(digest_id)
    if slug != permalinks.slug(digest.subject):
        return redirect(digest_url(digest), 301)
    # The email as subscribers got it, less their own links: whoever follows them here
    # is sent to the sign-up page, and the page does not link to itself. A template
    # that fails gives way to the built-in one: subscribers see the digest, the log why.
    signup_url = url_for("public.index")
    shown = digest_mail.render_or_default(
        digest,
        links={"unsubscribe_url": signup_url, "preferences_url": signup_url, "archive_url": None},
        locale=str(get_locale()),
    )
    return shown.html


@bp.get("/archive.atom")
def feed():
    return archive.atom_feed(), {"Content-Type": "application/atom+xml; charset=utf-8"}
