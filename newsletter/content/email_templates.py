"""Admins' own email templates: checked with sample data before they are kept, and
taken back to the default file by deleting them."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from jinja2 import TemplateSyntaxError
from sqlalchemy import delete, select

from newsletter.content import composer
from newsletter.content.models import EmailTemplate
from newsletter.core.models import utcnow
from newsletter.extensions import db
from newsletter.mail import digest as digest_mail
from newsletter.mail import templates, transactional
from newsletter.subscribers.models import SubscriberSnapshot


@dataclass(frozen=True)
class Kind:
    title: str
    # The variable whose link every email of the kind must carry, and why.
    required_link: str
    why: str


KINDS = {
    "confirmation": Kind(
        "Confirmation", "confirm_url", "without it nobody can confirm a subscription"
    ),
    "data_link": Kind(
        "Link to a reader's data",
        "preferences_url",
        "it is the link the reader asked for, which opens their data",
    ),
    "welcome": Kind("Welcome", "unsubscribe_url", "every email must let its reader leave"),
    "digest": Kind("Digest", "unsubscribe_url", "every email must let its reader leave"),
}

SAMPLE_SUBSCRIBER = SubscriberSnapshot(
    id=0,
    email="reader@example.org",
    name="Ann SubscriberSnapshot",
    token_nonce="sample",
    status="pending",
)
SAMPLE_POSTS = [
    composer.DraftPost(
        "Council approves new bridge",
        "https://news.example/bridge",
        "<p>The vote was <strong>unanimous</strong>; work starts in spring.</p>",
    ),
    composer.DraftPost(
        "Library extends its hours", "https://news.example/library", "<p>Open until 9 pm.</p>"
    ),
]


class TemplateRefused(Exception):
    """A template that would not make a sound email; ``part`` says which."""

    def __init__(self, part: str, message: str):
        super().__init__(message)
        self.part = part


@dataclass(frozen=True)
class Listed:
    name: str
    kind: Kind
    # When an admin last saved it; None: the default.
    updated_at: datetime | None


def listing() -> list[Listed]:
    saved = dict(
        db.session.execute(
            select(EmailTemplate.name, db.func.max(EmailTemplate.updated_at)).group_by(
                EmailTemplate.name
            )
        )
        .tuples()
        .all()
    )
    return [Listed(name, kind, saved.get(name)) for name, kind in KINDS.items()]


def sources(name: str) -> dict[str, str]:
    """Each part's source as emails are made from it now."""
    return {part: templates.stored_or_default_source(name, part) for part in templates.PARTS}


def preview(name: str, edited: dict[str, str]) -> composer.Preview:
    """The email the sources make from sample data; refuses what cannot be sent."""
    edited = {part: source.replace("\r\n", "\n") for part, source in edited.items()}
    context, required_url = sample(name)
    rendered = {part: _rendered(part, edited[part], context) for part in templates.PARTS}
    kind = KINDS[name]
    for part, output in rendered.items():
        if required_url not in output:
            raise TemplateRefused(
                part,
                f"The {part.upper()} part must keep the link {{{{ {kind.required_link} }}}}: "
                f"{kind.why}.",
            )
    # As sent: digests' CSS is inlined; the transactional emails' styles are inline already.
    html = (
        rendered["html"]
        if name in transactional.SUBJECTS
        else digest_mail.INLINER.inline(rendered["html"])
    )
    return composer.Preview(html, rendered["text"])


def save(name: str, edited: dict[str, str]) -> None:
    """Keep the parts that differ from the default; a part equal to it follows the file."""
    # As the browser sends a textarea: CRLF.
    edited = {part: source.replace("\r\n", "\n") for part, source in edited.items()}
    preview(name, edited)
    for part, source in edited.items():
        row = db.session.get(EmailTemplate, (name, part))
        if source == templates.default_source(name, part):
            if row is not None:
                db.session.delete(row)
        elif row is None:
            db.session.add(EmailTemplate(name=name, part=part, source=source))
        else:
            row.source, row.updated_at = source, utcnow()
    db.session.commit()


def variables(name: str) -> list[str]:
    """The names a template of the kind may use."""
    return sorted(sample(name)[0])


def reset(name: str) -> None:
    db.session.execute(delete(EmailTemplate).where(EmailTemplate.name == name))
    db.session.commit()


def sample(name: str) -> tuple[dict[str, Any], str]:
    """The variables a template of the kind gets, with sample values, and the value of
    its required link."""
    if name in transactional.CONTEXTS:
        context = transactional.CONTEXTS[name](SAMPLE_SUBSCRIBER)
        return context, context[KINDS[name].required_link]
    base_url = current_app.config["BASE_URL"]
    unsubscribe_url = f"{base_url}/unsubscribe/sample"
    links = {
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": f"{base_url}/preferences/sample",
        # The welcome email has no page in the archive.
        "archive_url": f"{base_url}/archive/1-sample" if name == "digest" else None,
    }
    issue = composer.DraftIssue("This week: a bridge", "A *short* intro.", SAMPLE_POSTS)
    return digest_mail.context(issue, links), unsubscribe_url


def _rendered(part: str, source: str, context: dict) -> str:
    try:
        return templates.render_source(part, source, context, context["lang"])
    except TemplateSyntaxError as error:
        raise TemplateRefused(part, f"Line {error.lineno}: {error.message}") from error
    except Exception as error:
        # Whatever stops the sample stops a send: an unsafe or undefined attribute, a
        # division by zero.
        raise TemplateRefused(part, templates.describe(error)) from error
