"""Extensions, created once without an app and bound in ``create_app``."""

import sqlite3
from typing import TYPE_CHECKING, ClassVar

from flask_babel import Babel
from flask_cors import CORS
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import Table, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Every model maps one table (none a join or a select), which core statements name.
    __table__: ClassVar[Table]


db = SQLAlchemy(model_class=Base)
# The models' base class. At run time it is db.Model, which Flask-SQLAlchemy builds from
# Base (adding table names made from class names); mypy takes no attribute as a base class
# (python/mypy#8603), so it is told Base.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
mail_extension = Mail()
csrf = CSRFProtect()
login_manager = LoginManager()
limiter = Limiter(get_remote_address)
# Lets the sites of EMBED_ORIGINS post sign-ups from their own pages (/embed.js).
cors = CORS()
# Translates the public pages; emails use i18n.catalog directly (see mail/templates.py).
babel = Babel()


@event.listens_for(Engine, "connect")
def tune_sqlite(dbapi_connection, _record):
    """SQLite, the embedded default, is shared by the web process and the workers:
    WAL lets readers and one writer work at once, and foreign keys are off unless asked."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode this is still safe against a crashed process; only a power cut
        # may lose the last commits. It spares an fsync on every commit.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()
