"""The composer's preview: the email as subscribers will get it, from what an admin has
typed so far, before anything is saved."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from newsletter.content import posts
from newsletter.content.models import Post
from newsletter.core.markup import to_html
from newsletter.extensions import db
from newsletter.mail import digest as digest_mail
from newsletter.mail.template_data import Issue, IssuePost
from newsletter.mail.templates import TemplateFailed

# A subscriber's own links have no address in a preview: they go nowhere.
PREVIEW_LINKS = {"unsubscribe_url": "#unsubscribe", "preferences_url": "#preferences"}


@dataclass
class DraftPost:
    title: str
    link: str
    summary_html: str


@dataclass
class DraftIssue:
    """An unsaved digest, rendered as digests are."""

    subject: str
    intro: str
    posts: Sequence[IssuePost]


@dataclass(frozen=True)
class Preview:
    html: str
    text: str
    # Why the admin's digest template failed, so that the built-in one is shown.
    failure: TemplateFailed | None = None


def preview(issue: Issue) -> Preview:
    """The email of a digest (saved or not), as subscribers get it but for their own links;
    with the built-in template when the admin's fails, and why, for the admin to fix."""
    return Preview(*digest_mail.render_or_default(issue, links=PREVIEW_LINKS))


def post_preview(post: Post | None, title: str, link: str, summary_markdown: str) -> Preview:
    """A digest of just the post being written (``post``: the saved one it edits)."""
    if post is not None and not posts.writes_summary(post, summary_markdown):
        summary_html = post.summary_html
    else:
        summary_html = to_html(summary_markdown)
    # The link is checked when the post is saved; until then, no other kind is shown.
    shown_link = link if posts.is_web_link(link) else "#"
    title = posts.plain(title) or "(untitled)"
    return preview(DraftIssue(title, "", [DraftPost(title, shown_link, summary_html)]))


def digest_preview(subject: str, intro: str, post_ids: list[int]) -> Preview:
    """The digest the form would create: its subject, intro and the posts ticked."""
    chosen = db.session.scalars(
        select(Post).where(Post.id.in_(post_ids)).order_by(Post.published_at.desc())
    ).all()
    return preview(DraftIssue(" ".join(subject.split()) or "(no subject)", intro, chosen))
