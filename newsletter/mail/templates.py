"""Email templates as emails are made from them: an admin's stored source where there
is one, else the file in templates/email/, rendered in Jinja's sandbox.

Admins write these templates, so they run in sandbox.py's sandbox: no reaching
Python's internals through attributes, no unsafe calls, no render that exhausts the
machine, and only frozen plain data (template_data.py) to render. Compiled templates
are kept per process, keyed by their row's ``updated_at``: a render costs one query
per template, whatever the number of subscribers, and compiles again only after an edit.

The default templates speak every language of i18n.LANGUAGES through ``{% trans %}``
and ``_()``: each language has sandboxes of its own, with that language's catalog
installed, so a render never switches a shared environment's language under another
thread's feet.

A stored template may still fail when it is rendered: one saved before the sandbox
refused what it does, or one that real data takes down a branch the sample did not.
``render`` then raises TemplateFailed, naming the template and why, so that a send
can stop and say so; ``render_or_default`` renders the built-in file instead, for
what must not depend on an admin's template (a public page, a confirmation link).
"""

import logging
import traceback
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple, cast

from flask import current_app
from jinja2 import BaseLoader, Environment, StrictUndefined, Template, TemplateNotFound, Undefined
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from newsletter.content.models import EmailTemplate
from newsletter.core import i18n
from newsletter.extensions import db
from newsletter.mail import sandbox as template_sandbox

# Each part, and the extension of its default file.
PARTS = {"html": "html", "text": "txt"}
# The welcome email is made like a digest: until an admin writes its own, it is the digest's.
DEFAULT_FILES = {
    "confirmation": "confirmation",
    "data_link": "data_link",
    "welcome": "digest",
    "digest": "digest",
}
CACHE_KEY = "newsletter.email_templates"

log = logging.getLogger("newsletter.mail")


class TemplateFailed(Exception):
    """An admin's stored template that did not render; the message, which the admin
    reads where the digest stopped, names the template and says why."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"the template '{name}' failed: {reason}")
        self.name = name
        self.reason = reason


class Rendered(NamedTuple):
    html: str
    text: str
    # Why the admin's template was not used (the default was), or None.
    failure: TemplateFailed | None = None


def default_source(name: str, part: str) -> str:
    # create_app always names the template folder.
    folder = Path(current_app.root_path, cast(str, current_app.template_folder), "email")
    return (folder / f"{DEFAULT_FILES[name]}.{PARTS[part]}").read_text(encoding="utf-8")


def stored_or_default_source(name: str, part: str) -> str:
    stored = db.session.scalar(
        select(EmailTemplate.source).where(EmailTemplate.name == name, EmailTemplate.part == part)
    )
    return default_source(name, part) if stored is None else stored


class StoredFirstLoader(BaseLoader):
    """Loads ``<name>.<part>`` (``digest.html``): the stored source, else the file."""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool]]:
        name, _, part = template.partition(".")
        if name not in DEFAULT_FILES or part not in PARTS:
            raise TemplateNotFound(template)
        # Never up to date: the per-process cache below decides when to load again.
        return stored_or_default_source(name, part), None, lambda: False


@cache
def sandbox(part: str, locale: str, strict: bool = False) -> template_sandbox.TemplateSandbox:
    """The sandbox a part is rendered in, in a language. Sending forgives what the check
    (``strict``) refuses: a variable misspelt in a branch the sample data did not take
    renders empty rather than stopping a send to every subscriber."""
    environment = template_sandbox.TemplateSandbox(
        loader=StoredFirstLoader(),
        autoescape=part == "html",
        undefined=StrictUndefined if strict else Undefined,
        cache_size=0,
        extensions=["jinja2.ext.i18n"],
    )
    # jinja2.ext.i18n adds the method to the environment at run time.
    environment.install_gettext_translations(i18n.catalog(locale), newstyle=True)  # type: ignore[attr-defined]
    return environment


def versions(name: str) -> dict[str, datetime]:
    """When each part of the template was last saved (a part not in it: the file)."""
    return dict(
        db.session.execute(
            select(EmailTemplate.part, EmailTemplate.updated_at).where(EmailTemplate.name == name)
        )
        .tuples()
        .all()
    )


def render(
    name: str, context: dict[str, Any], locale: str, saved: dict[str, datetime] | None = None
) -> tuple[str, str]:
    """The template's HTML and text, rendered with ``context`` in ``locale``; ``saved``
    is its ``versions``, when the caller renders it in several languages at once.
    TemplateFailed when either part does not render."""
    saved = versions(name) if saved is None else saved
    rendered = []
    for part in PARTS:
        try:
            template = compiled(name, part, saved.get(part), locale)
            rendered.append(template_sandbox.render(template, context))
        except SQLAlchemyError:
            # A database that is away is no fault of the template: the caller retries.
            raise
        except Exception as error:
            # Whatever a template does that Python refuses (a sandbox or size limit, an
            # undefined attribute, a division by zero) is the template's fault.
            raise TemplateFailed(name, f"{part.upper()} part, {describe(error)}") from error
    html, text = rendered
    return html, text


def render_or_default(
    name: str, context: dict[str, Any], locale: str, saved: dict[str, datetime] | None = None
) -> Rendered:
    """As ``render``; but when the admin's template fails, the built-in default with the
    same context, a WARNING, and ``failure`` saying why."""
    try:
        return Rendered(*render(name, context, locale, saved))
    except TemplateFailed as failure:
        log.warning("%s; the built-in default was used instead", failure)
        html, text = (
            template_sandbox.render(default_template(name, part, locale), context) for part in PARTS
        )
        return Rendered(html, text, failure)


def default_template(name: str, part: str, locale: str) -> Template:
    """The built-in file of that template, compiled once per process and language."""
    compiled_templates: dict[tuple[str, str, str, str], Template] = (
        current_app.extensions.setdefault(CACHE_KEY, {})
    )
    key = (name, part, locale, "default")
    if key not in compiled_templates:
        compiled_templates[key] = sandbox(part, locale).from_string(default_source(name, part))
    return compiled_templates[key]


def compiled(name: str, part: str, updated_at: datetime | None, locale: str) -> Template:
    """The template as compiled in this process for that version (None: the file)."""
    compiled_templates: dict[tuple[str, str, str], tuple[datetime | None, Template]] = (
        current_app.extensions.setdefault(CACHE_KEY, {})
    )
    cached = compiled_templates.get((name, part, locale))
    if cached is None or cached[0] != updated_at:
        cached = (updated_at, sandbox(part, locale).get_template(f"{name}.{part}"))
        compiled_templates[(name, part, locale)] = cached
    return cached[1]


def render_source(part: str, source: str, context: dict[str, Any], locale: str) -> str:
    """Unsaved source rendered strictly: an undefined variable or attribute is an error."""
    template = sandbox(part, locale, strict=True).from_string(source)
    return template_sandbox.render(template, context)


def describe(error: Exception) -> str:
    """The error as an admin reads it: "Line n: " of the template line it came from, as
    Jinja's traceback tells, then the error's own words."""
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename == template_sandbox.TEMPLATE_FILE
    ]
    where = f"Line {lines[-1]}: " if lines else ""
    return f"{where}{str(error) or type(error).__name__}"
