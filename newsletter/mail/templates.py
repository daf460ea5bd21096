"""Email templates as emails are made from them: an admin's stored source where there
is one, else the file in templates/email/, rendered in Jinja's sandbox.

Admins write these templates, so they run sandboxed: no reaching Python's internals
through attributes, no unsafe calls. Compiled templates are kept per process, keyed
by their row's ``updated_at``: a render costs one query per template, whatever the
number of readers, and compiles again only after an edit.
"""

from pathlib import Path

from flask import current_app
from jinja2 import BaseLoader, StrictUndefined, TemplateNotFound, Undefined
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import EmailTemplate

# Each part, and the extension of its default file.
PARTS = {"html": "html", "text": "txt"}
# The welcome email is made like a digest: until an admin writes its own, it is the digest's.
DEFAULT_FILES = {"confirmation": "confirmation", "welcome": "digest", "digest": "digest"}
CACHE_KEY = "newsletter.email_templates"


def default_source(name: str, part: str) -> str:
    folder = Path(current_app.root_path, current_app.template_folder, "email")
    return (folder / f"{DEFAULT_FILES[name]}.{PARTS[part]}").read_text(encoding="utf-8")


def stored_or_default_source(name: str, part: str) -> str:
    stored = db.session.scalar(
        select(EmailTemplate.source).where(EmailTemplate.name == name, EmailTemplate.part == part)
    )
    return default_source(name, part) if stored is None else stored


class StoredFirstLoader(BaseLoader):
    """Loads ``<name>.<part>`` (``digest.html``): the stored source, else the file."""

    def get_source(self, environment, template):
        name, _, part = template.partition(".")
        if name not in DEFAULT_FILES or part not in PARTS:
            raise TemplateNotFound(template)
        # Never up to date: the per-process cache below decides when to load again.
        return stored_or_default_source(name, part), None, lambda: False


def sandbox(part: str, undefined: type[Undefined]) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=StoredFirstLoader(),
        autoescape=part == "html",
        undefined=undefined,
        cache_size=0,
    )


# Sending forgives what the check refuses: a variable misspelt in a branch the sample
# data did not take renders empty rather than stopping a send to every reader.
SENDING = {part: sandbox(part, Undefined) for part in PARTS}
CHECKING = {part: sandbox(part, StrictUndefined) for part in PARTS}


def render(name: str, context: dict) -> tuple[str, str]:
    """The template's HTML and text, rendered with ``context``."""
    versions = dict(
        db.session.execute(
            select(EmailTemplate.part, EmailTemplate.updated_at).where(EmailTemplate.name == name)
        ).all()
    )
    html, text = (compiled(name, part, versions.get(part)).render(context) for part in PARTS)
    return html, text


def compiled(name: str, part: str, updated_at):
    """The template as compiled in this process for that version (None: the file)."""
    cache = current_app.extensions.setdefault(CACHE_KEY, {})
    cached = cache.get((name, part))
    if cached is None or cached[0] != updated_at:
        cached = (updated_at, SENDING[part].get_template(f"{name}.{part}"))
        cache[(name, part)] = cached
    return cached[1]


def render_source(part: str, source: str, context: dict) -> str:
    """Unsaved source rendered strictly: an undefined variable or attribute is an error."""
    return CHECKING[part].from_string(source).render(context)
