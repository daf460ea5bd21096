"""Writes whose row count is the answer: a conditional UPDATE that tells whether this
caller won a race (a claim two workers may try at once), a DELETE that tells how much
went."""

from typing import Any, cast

from sqlalchemy import CursorResult, Delete, Update

from newsletter.extensions import db


def rows_changed(statement: Update | Delete) -> int:
    """Run the statement in the session; how many rows it changed."""
    # Session.execute is typed as returning any Result; for an UPDATE or DELETE without
    # RETURNING it is a CursorResult, which has the count (sqlalchemy/sqlalchemy#12913).
    return cast(CursorResult[Any], db.session.execute(statement)).rowcount
