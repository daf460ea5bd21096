"""What the transactional emails say: the confirmation and the welcome email.

Each message's Message-ID comes from its job (sending.email_jobs), so a message
sent again after a crash is the same message to the reader's mail client.
"""

from collections import namedtuple
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formatdate

from flask import current_app
from sqlalchemy import select

from newsletter import settings, tokens
from newsletter.extensions import db
from newsletter.mail import mime, templates
from newsletter.mail.digest import DigestMessages
from newsletter.mail.relay import smtp_address
from newsletter.models import Post, Reader, utcnow

WELCOME_POSTS = 5


def link(path: str) -> str:
    return f"{current_app.config['BASE_URL']}{path}"


def confirmation_context(reader: Reader) -> dict:
    """What the confirmation template is rendered with."""
    token = tokens.make_token_for(tokens.CONFIRM, reader.token_nonce)
    return {
        "subscriber": reader,
        "site_name": current_app.config["SITE_NAME"],
        "confirm_url": link(f"/confirm/{token}"),
        "code": tokens.confirmation_code(reader.id, reader.token_nonce),
        "max_age_hours": current_app.config["CONFIRM_MAX_AGE"] // 3600,
    }


def build_confirmation(reader: Reader, message_id: str) -> bytes:
    """The email whose link confirms a pending subscription."""
    html, text = templates.render("confirmation", confirmation_context(reader))
    frame = _confirmation_frame()
    headers = (
        frame.headers
        + (
            f"To: {mime.address_header(reader.name, smtp_address(reader.email))}\r\n"
            f"Date: {formatdate(usegmt=True)}\r\n"
            f"Message-ID: {message_id}\r\n"
        ).encode()
    )
    return frame.alternative.message(
        headers,
        mime.qp(text),
        mime.qp(html),
    )


ConfirmationFrame = namedtuple("ConfirmationFrame", "headers alternative")


def _confirmation_frame() -> ConfirmationFrame:
    """What every confirmation shares (From, Subject, the MIME skeleton), made once
    per app: the stdlib's header encoding is slow."""
    key = "newsletter.confirmation_frame"
    if key not in current_app.extensions:
        config = current_app.config
        current_app.extensions[key] = ConfirmationFrame(
            mime.fixed_headers(
                From=config["MAIL_DEFAULT_SENDER"],
                Subject=f"Confirm your subscription to {config['SITE_NAME']}",
            ),
            mime.Alternative(),
        )
    return current_app.extensions[key]


@dataclass
class WelcomeIssue:
    """The welcome email is a digest of the latest posts, made like every digest."""

    subject: str
    intro: str
    posts: list
    id: str = "welcome"
    created_at: datetime = field(default_factory=utcnow)


def welcome_messages() -> DigestMessages:
    """The welcome email, a hello and the latest posts, rendered once for a batch:
    rendering costs milliseconds, a copy microseconds."""
    chosen = settings.current()
    latest = db.session.scalars(
        select(Post).order_by(Post.published_at.desc()).limit(WELCOME_POSTS)
    ).all()
    issue = WelcomeIssue(chosen.welcome_subject, chosen.welcome_intro, latest)
    return DigestMessages(issue, template="welcome")
