"""The newsletter service: a Flask app made by ``create_app``."""

import importlib
import os
import secrets
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from flask import Flask

from config import Config
from newsletter.bounces import providers
from newsletter.celery_app import celery_init_app
from newsletter.core import i18n, limit_counters
from newsletter.extensions import (
    babel,
    csrf,
    db,
    limiter,
    login_manager,
    mail_extension,
    migrate,
)
from newsletter.mail import mailto, return_path
from newsletter.subscribers import captcha
from newsletter.web import cli, languages, register_blueprints, security
from newsletter.webhooks import outgoing_http

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Each domain keeps its tables in its own models module. All are loaded before the first
# query, whatever a process imported first, so that relationships named by string resolve
# and create_all and Alembic see the whole schema.
MODEL_MODULES = tuple(
    f"newsletter.{domain}.models"
    for domain in (
        "core",
        "mail",
        "sending",
        "webhooks",
        "content",
        "engagement",
        "subscribers",
        "bounces",
        "admins",
    )
)


def create_app(config=Config, instance_path=None):
    """Build the app from a config class (or mapping); embedded defaults fill the gaps.

    The instance folder holds the embedded defaults' files; ``INSTANCE_PATH``
    moves it, e.g. to run a second copy of the service beside the first.
    """
    app = Flask(
        __name__,
        instance_path=instance_path
        or os.environ.get("INSTANCE_PATH")
        or str(PROJECT_ROOT / "instance"),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    if isinstance(config, dict):
        app.config.from_object(Config)
        app.config.update(config)
    else:
        app.config.from_object(config)
    os.makedirs(app.instance_path, exist_ok=True)
    apply_embedded_defaults(app)
    check_config(app.config)

    for module in MODEL_MODULES:
        importlib.import_module(module)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    mail_extension.init_app(app)
    security.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "admin.login"
    babel.init_app(
        app,
        default_locale=app.config["DEFAULT_LOCALE"],
        default_translation_directories=str(i18n.TRANSLATIONS_DIR),
        locale_selector=languages.select_locale,
    )
    app.jinja_env.globals["page_language"] = languages.page_language

    celery_init_app(app)
    register_blueprints(app)
    cli.register(app)
    return app


def check_config(config: MutableMapping[str, Any]) -> None:
    """Refuse to start with a setting that could never work, rather than fail later."""
    for check in (
        captcha.check_config,
        providers.check_config,
        i18n.check_config,
        outgoing_http.check_config,
        return_path.check_config,
        mailto.check_config,
    ):
        check(config)


def apply_embedded_defaults(app):
    """Defaults that need no server: everything lives in the instance folder."""
    config = app.config
    instance = Path(app.instance_path)
    keys = [key.strip() for key in (config["SECRET_KEY"] or "").split(",") if key.strip()]
    if not keys:
        keys = [instance_secret_key(instance / "secret_key")]
    config["SECRET_KEY"], config["SECRET_KEY_FALLBACKS"] = keys[0], keys[1:]
    if not config.get("SQLALCHEMY_DATABASE_URI"):
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'newsletter.sqlite'}"
    if not config.get("RATELIMIT_STORAGE_URI"):
        broker = config.get("CELERY_BROKER_URL") or ""
        config["RATELIMIT_STORAGE_URI"] = (
            broker
            if broker.startswith(("redis://", "rediss://"))
            else limit_counters.uri(instance / "limits.sqlite")
        )
    if not config.get("CELERY_BROKER_URL"):
        config["CELERY_BROKER_URL"] = f"sqlite:///{instance / 'broker.sqlite'}"
        config["CELERY_BROKER_TRANSPORT"] = "workers.broker:EmbeddedTransport"
    if not config.get("OUTBOX_DIR"):
        config["OUTBOX_DIR"] = str(instance / "outbox")


def instance_secret_key(path):
    """A key made on first start and kept, so links survive restarts.

    Written aside and hard-linked into place, which fails if the file exists, so
    the web process and a worker starting at the same moment agree on one key
    and neither reads a half-written file.
    """
    if not path.exists():
        draft = path.with_name(f"{path.name}.{os.getpid()}.new")
        draft.write_text(secrets.token_hex(32))
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
