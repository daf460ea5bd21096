"""Extensions, created once without an app and bound in ``create_app``."""

import sqlite3

from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
mail = Mail()


@event.listens_for(Engine, "connect")
def tune_sqlite(dbapi_connection, _record):
    """SQLite, the embedded default, is shared by the web process and the workers:
    WAL lets readers and one writer work at once, and foreign keys are off unless asked."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()
