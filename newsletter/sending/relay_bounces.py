"""The relay's refusals of subscribers' addresses, and what they do to the subscribers.

A refusal of the address itself (5xx to RCPT, or an enhanced code 5.1.x / 5.2.x)
is a hard bounce reported in the session: it counts towards ``BOUNCE_LIMIT``, and a
confirmed subscriber who reaches it is marked bounced, with the event that did it. A
message that gets through clears the count. Refusals of the message itself never
count against the subscriber.
"""

from flask import current_app
from sqlalchemy import insert, update

from newsletter.bounces.models import FeedbackEvent, FeedbackKind
from newsletter.extensions import db
from newsletter.sending import leases
from newsletter.sending.outcomes import Outcome, cut
from newsletter.subscribers.models import Subscriber, SubscriberStatus


def count(refused: list[Outcome], reached: list[Outcome]) -> None:
    """Count the ``refused`` subscribers' refusals, mark those past the limit bounced, and
    clear the count of ``reached`` subscribers who had one. In the batch's transaction."""
    if refused:
        _count_refusals(refused)
    cleared = [
        outcome.claim.subscriber.id for outcome in reached if outcome.claim.subscriber.hard_bounces
    ]
    if cleared:
        db.session.execute(
            update(Subscriber)
            .where(leases.among(Subscriber.id, cleared), Subscriber.hard_bounces > 0)
            .values(hard_bounces=0)
        )


def _count_refusals(refused: list[Outcome]) -> None:
    subscriber_ids = [outcome.claim.subscriber.id for outcome in refused]
    db.session.execute(
        update(Subscriber)
        .where(Subscriber.id.in_(subscriber_ids))
        .values(hard_bounces=Subscriber.hard_bounces + 1)
    )
    bounced = set(
        db.session.scalars(
            update(Subscriber)
            .where(
                Subscriber.id.in_(subscriber_ids),
                Subscriber.hard_bounces >= current_app.config["BOUNCE_LIMIT"],
                Subscriber.status == SubscriberStatus.CONFIRMED,
            )
            .values(status=SubscriberStatus.BOUNCED)
            .returning(Subscriber.id)
        ).all()
    )
    _log_bounces([outcome for outcome in refused if outcome.claim.subscriber.id in bounced])


def _log_bounces(outcomes: list[Outcome]) -> None:
    """Subscribers the relay's refusals just marked bounced: the event that did it, for
    their admin page and their digest's figures."""
    if outcomes:
        db.session.execute(
            insert(FeedbackEvent),
            [
                {
                    "subscriber_id": outcome.claim.subscriber.id,
                    "digest_id": outcome.claim.digest_id,
                    "kind": FeedbackKind.HARD_BOUNCE,
                    "source": "relay",
                    "detail": cut(outcome.error),
                    "changed_status": True,
                }
                for outcome in outcomes
            ],
        )
