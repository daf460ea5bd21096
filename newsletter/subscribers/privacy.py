"""A subscriber's rights over their data: a copy of it, and its erasure.

An erased subscriber leaves one thing behind: a keyed hash of the address
(HMAC-SHA256 under the secret key) on the suppression list (core/suppression.py), so
that no import and no sign-up form adds the address again, while nobody can read the
address back from it.
"""

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from newsletter.content.models import Digest, Newsletter, Subscription
from newsletter.core.models import SuppressedAddress, utcnow
from newsletter.core.suppression import address_hash
from newsletter.core.writes import rows_changed
from newsletter.engagement import figures
from newsletter.extensions import db
from newsletter.sending.models import Delivery, EmailJob
from newsletter.subscribers.consent import log_consent
from newsletter.subscribers.models import ConsentEvent, ConsentKind, Subscriber


def erase(subscriber: Subscriber, by: str) -> None:
    """Delete the subscriber with everything kept about them (their emails, their
    digest copies, their consent log, their opens and clicks), keep the address's hash
    so that it is never added again, and log the erasure itself, with no one's data in
    it."""
    digest = address_hash(subscriber.email)
    if db.session.get(SuppressedAddress, digest) is None:
        db.session.add(SuppressedAddress(address_hash=digest))
    # The database deletes their emails, digest copies, consent log and opens and
    # clicks with them.
    db.session.delete(subscriber)
    log_consent(None, ConsentKind.ERASURE, by, None)
    db.session.commit()


def erase_many(subscriber_ids: list[int], by: str) -> int:
    """Erase each of these subscribers, as ``erase`` does; how many there were."""
    subscribers = db.session.scalars(
        select(Subscriber).where(Subscriber.id.in_(subscriber_ids))
    ).all()
    for subscriber in subscribers:
        erase(subscriber, by)
    return len(subscribers)


def drop_old_ips() -> int:
    """Forget the IPs of sign-ups, confirmations and consent events older than
    IP_RETENTION_DAYS; returns how many records lost one."""
    days = current_app.config["IP_RETENTION_DAYS"]
    if not days:
        return 0
    before = utcnow() - timedelta(days=days)
    dropped = 0
    for model, ip, moment in (
        (ConsentEvent, ConsentEvent.ip, ConsentEvent.at),
        (Subscriber, Subscriber.signup_ip, Subscriber.signup_at),
        (Subscriber, Subscriber.confirm_ip, Subscriber.confirmed_at),
    ):
        dropped += rows_changed(
            update(model).where(ip.is_not(None), moment < before).values({ip.key: None})
        )
    db.session.commit()
    return dropped


def data_of(subscriber: Subscriber) -> dict:
    """Everything kept about a subscriber, as JSON-ready data."""
    jobs = db.session.scalars(
        select(EmailJob).where(EmailJob.subscriber_id == subscriber.id).order_by(EmailJob.id)
    )
    copies = db.session.execute(
        select(Digest.subject, Delivery.status, Delivery.sent_at)
        .join(Digest, Digest.id == Delivery.digest_id)
        .where(Delivery.subscriber_id == subscriber.id)
        .order_by(Delivery.id)
    )
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "language": subscriber.locale,
        "consent": {
            "signed_up_at": _time(subscriber.signup_at),
            "signup_source": subscriber.signup_source,
            "signup_ip": subscriber.signup_ip,
            "confirmed_at": _time(subscriber.confirmed_at),
            "confirm_ip": subscriber.confirm_ip,
            "unsubscribed_at": _time(subscriber.unsubscribed_at),
        },
        "newsletters": [
            {
                "slug": slug,
                "name": name,
                "active": active,
                "changed_at": _time(changed_at),
            }
            for slug, name, active, changed_at in db.session.execute(
                select(
                    Newsletter.slug, Newsletter.name, Subscription.active, Subscription.changed_at
                )
                .join(Newsletter, Newsletter.id == Subscription.newsletter_id)
                .where(Subscription.subscriber_id == subscriber.id)
                .order_by(Newsletter.id)
            )
        ],
        "consent_log": [
            {
                "kind": event.kind,
                "at": _time(event.at),
                "source": event.source,
                "ip": event.ip,
                # The newsletter left, for an unsubscribe from one newsletter's email.
                "newsletter": newsletter,
            }
            for event, newsletter in db.session.execute(
                select(ConsentEvent, Newsletter.slug)
                .outerjoin(Newsletter, Newsletter.id == ConsentEvent.newsletter_id)
                .where(ConsentEvent.subscriber_id == subscriber.id)
                .order_by(ConsentEvent.id)
            )
        ],
        "emails": [
            {"kind": job.kind, "status": job.status, "sent_at": _time(job.finished_at)}
            for job in jobs
        ],
        "digests": [
            {"subject": subject, "status": status, "sent_at": _time(sent_at)}
            for subject, status, sent_at in copies
        ],
        # Only from newsletters tracked per subscriber, unless they refused it.
        "opens_and_clicks": [
            {
                "kind": event.kind,
                "at": _time(event.at),
                "digest": event.subject,
                "link": event.url,
                "machine": event.machine,
            }
            for event in figures.subscriber_events(subscriber.id)
        ],
        "exported_at": _time(utcnow()),
    }


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment else None
