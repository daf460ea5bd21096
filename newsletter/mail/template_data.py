"""What an email template may see: frozen copies of plain values, made once per render.

Admins write the templates, so a template is untrusted code. It gets no ORM object
(whose ``.query`` reaches the session, and through it every table), no app, config,
request or callable with state behind it: only these frozen dataclasses of str,
and tuples of them. The sample data the template editor checks a template with is
made by the same functions, so a template that passes the check sees the same
shapes when it is sent.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from markupsafe import Markup

from newsletter.core import markup
from newsletter.subscribers.models import SubscriberSnapshot


class IssuePost(Protocol):
    """A post as a digest carries it: a saved ``Post``, or one the composer made."""

    @property
    def title(self) -> str: ...
    @property
    def link(self) -> str: ...
    @property
    def summary_html(self) -> str: ...


class Issue(Protocol):
    """What a digest email is made from: a saved ``Digest``, the composer's draft
    (composer.DraftIssue) or the welcome email (transactional.WelcomeIssue)."""

    @property
    def subject(self) -> str: ...
    @property
    def intro(self) -> str: ...
    @property
    def posts(self) -> Sequence[IssuePost]: ...


@dataclass(frozen=True, slots=True)
class PostData:
    title: str
    link: str
    # Sanitized when the post was saved (or by the composer), so it goes in as it is.
    summary_html: Markup
    summary_text: str


@dataclass(frozen=True, slots=True)
class DigestData:
    subject: str
    # The Markdown as the admin wrote it; ``intro_html`` and ``intro_text`` beside it.
    intro: str
    posts: tuple[PostData, ...]


@dataclass(frozen=True, slots=True)
class SubscriberData:
    name: str
    email: str


def digest_data(issue: Issue) -> DigestData:
    """A digest, saved (an ORM row) or not (composer.DraftIssue, the welcome email)."""
    posts = tuple(
        PostData(
            title=str(post.title),
            link=str(post.link),
            summary_html=Markup(post.summary_html or ""),
            summary_text=markup.to_text(post.summary_html or ""),
        )
        for post in issue.posts
    )
    return DigestData(subject=str(issue.subject), intro=str(issue.intro or ""), posts=posts)


def subscriber_data(subscriber: SubscriberSnapshot) -> SubscriberData:
    return SubscriberData(name=str(subscriber.name or ""), email=str(subscriber.email))
