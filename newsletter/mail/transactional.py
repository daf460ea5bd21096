"""What the transactional emails say: the confirmation, the welcome email and the
link to a subscriber's data, each in its subscriber's language.

Each message's Message-ID comes from its job (sending.email_jobs), so a message
sent again after a crash is the same message to the subscriber's mail client.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import select

from newsletter.content.models import Post
from newsletter.core import i18n, settings, tokens
from newsletter.extensions import db
from newsletter.mail import mime, template_data, templates
from newsletter.mail.digest import DigestMessages
from newsletter.mail.relay import smtp_address
from newsletter.subscribers.models import SubscriberSnapshot

WELCOME_POSTS = 5
# The welcome email's words as shipped (models.Settings' defaults): subscribers get them in
# their language until an admin writes their own, which every subscriber gets as written.
SHIPPED_WELCOME_WORDS = (
    i18n.N_("Welcome aboard"),
    i18n.N_("Thank you for subscribing. Here is what we published lately."),
)


def link(path: str) -> str:
    return f"{current_app.config['BASE_URL']}{path}"


def confirmation_context(subscriber: SubscriberSnapshot) -> dict[str, Any]:
    """What the confirmation template is rendered with, ``lang`` the subscriber's language."""
    token = tokens.make_token_for(tokens.CONFIRM, subscriber.token_nonce)
    return {
        "lang": i18n.subscriber_locale(subscriber.locale),
        # Its name and address only: the row's nonce makes its links.
        "subscriber": template_data.subscriber_data(subscriber),
        "site_name": current_app.config["SITE_NAME"],
        "confirm_url": link(f"/confirm/{token}"),
        "code": tokens.confirmation_code(subscriber.id, subscriber.token_nonce),
        "max_age_hours": current_app.config["CONFIRM_MAX_AGE"] // 3600,
    }


def data_link_context(subscriber: SubscriberSnapshot) -> dict[str, Any]:
    """What the data-link template is rendered with: a fresh preferences link, made as a
    digest's is, so that it opens the subscriber's data."""
    token = tokens.make_token_for(tokens.PREFERENCES, subscriber.token_nonce)
    return {
        "lang": i18n.subscriber_locale(subscriber.locale),
        "subscriber": template_data.subscriber_data(subscriber),
        "site_name": current_app.config["SITE_NAME"],
        "preferences_url": link(f"/preferences/{token}"),
        "max_age_days": current_app.config["PREFERENCES_MAX_AGE"] // 86400,
    }


# Each transactional email's subject, and what its template is rendered with.
SUBJECTS = {
    "confirmation": i18n.N_("Confirm your subscription to %(site_name)s"),
    "data_link": i18n.N_("Your link to your data at %(site_name)s"),
}
CONTEXTS: dict[str, Callable[[SubscriberSnapshot], dict[str, Any]]] = {
    "confirmation": confirmation_context,
    "data_link": data_link_context,
}


def build_confirmation(subscriber: SubscriberSnapshot, message_id: str) -> bytes:
    """The email whose link confirms a pending subscription."""
    return build("confirmation", subscriber, message_id)


def build_data_link(subscriber: SubscriberSnapshot, message_id: str) -> bytes:
    """The email a subscriber asked for on their preferences page, whose link opens their data."""
    return build("data_link", subscriber, message_id)


def build(name: str, subscriber: SubscriberSnapshot, message_id: str) -> bytes:
    """The transactional email ``name`` (of SUBJECTS) for the subscriber, in their language;
    made from the built-in template when the admin's fails, since a subscriber must always get
    their link."""
    context = CONTEXTS[name](subscriber)
    html, text, _failure = templates.render_or_default(name, context, context["lang"])
    frame = _frame(name, context["lang"])
    headers = (
        frame.headers
        + (
            f"To: {mime.address_header(subscriber.name, smtp_address(subscriber.email))}\r\n"
            f"Date: {formatdate(usegmt=True)}\r\n"
            f"Message-ID: {message_id}\r\n"
        ).encode()
    )
    return frame.alternative.message(
        headers,
        mime.qp(text),
        mime.qp(html),
    )


class Frame(NamedTuple):
    headers: bytes
    alternative: mime.Alternative


def _frame(name: str, locale: str) -> Frame:
    """What every email of a kind in a language shares (From, Subject, the MIME
    skeleton), made once per app: the stdlib's header encoding is slow."""
    frames: dict[tuple[str, str], Frame] = current_app.extensions.setdefault(
        "newsletter.transactional_frames", {}
    )
    if (name, locale) not in frames:
        config = current_app.config
        subject = i18n.catalog(locale).gettext(SUBJECTS[name])
        frames[name, locale] = Frame(
            mime.fixed_headers(
                From=config["MAIL_DEFAULT_SENDER"],
                Subject=subject % {"site_name": config["SITE_NAME"]},
                Content_Language=locale,
            ),
            mime.Alternative(),
        )
    return frames[name, locale]


@dataclass
class WelcomeIssue:
    """The welcome email is a digest of the latest posts, made like every digest."""

    subject: str
    intro: str
    posts: Sequence[Post]


def welcome_messages() -> DigestMessages:
    """The welcome email, a hello and the latest posts, rendered once for a batch:
    rendering costs milliseconds, a copy microseconds. The built-in template stands in
    for the admin's when that fails: a welcome is no digest, with nobody to resume it."""
    chosen = settings.current()
    latest = db.session.scalars(
        select(Post).order_by(Post.published_at.desc()).limit(WELCOME_POSTS)
    ).all()
    issue = WelcomeIssue(chosen.welcome_subject, chosen.welcome_intro, latest)
    in_language = {
        locale: WelcomeIssue(
            _shipped_words_in(locale, issue.subject),
            _shipped_words_in(locale, issue.intro),
            latest,
        )
        for locale in i18n.LANGUAGES
    }
    return DigestMessages(issue, template="welcome", in_language=in_language, or_default=True)


def _shipped_words_in(locale: str, words: str) -> str:
    return i18n.catalog(locale).gettext(words) if words in SHIPPED_WELCOME_WORDS else words
