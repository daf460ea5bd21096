"""The admins' settings, kept in the database so every process sees the same."""

from sqlalchemy import select

from newsletter.core.models import Settings
from newsletter.extensions import db


def current() -> Settings:
    """The settings row, made with the defaults on first use."""
    settings = db.session.scalar(select(Settings).order_by(Settings.id).limit(1))
    if settings is None:
        settings = Settings()
        db.session.add(settings)
        db.session.commit()
    return settings


def update(**values: object) -> Settings:
    settings = current()
    for key, value in values.items():
        setattr(settings, key, value)
    db.session.commit()
    return settings
