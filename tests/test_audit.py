"""The audit log: what it records of an actor, and how long it keeps it."""

from datetime import timedelta

from sqlalchemy import select

from newsletter import audit
from newsletter.extensions import db
from newsletter.models import AuditEntry, utcnow


def test_a_command_is_recorded_as_its_operator_and_old_entries_go(app):
    with app.app_context():
        audit.record("subscribers.export", detail="all")
        old = audit.record("subscribers.erase", target="old@example.org")
        old.at = utcnow() - timedelta(days=400)
        recent_with_ip = audit.record("digests.send", target="digest 1")
        recent_with_ip.at = utcnow() - timedelta(days=100)
        recent_with_ip.ip = "192.0.2.7"
        db.session.commit()

        assert audit.drop_old() == (1, 1)

        entries = db.session.execute(
            select(AuditEntry.actor_kind, AuditEntry.action, AuditEntry.ip).order_by(AuditEntry.id)
        ).all()
        assert entries == [
            ("command", "subscribers.export", None),
            ("command", "digests.send", None),
        ]
        assert audit.as_csv().splitlines()[0] == "at,actor_kind,actor,action,target,detail,ip"
