"""A recipient domain that asks us to slow down (421, or a 4.7.x about rate) is sent to
more slowly by every worker, step by step back to full speed; other domains never wait."""

import itertools

import pytest
from sqlalchemy import select

from newsletter.content import digests, posts
from newsletter.content.models import Subscription
from newsletter.extensions import db
from newsletter.mail import relay
from newsletter.sending import domain_pacing
from newsletter.sending.models import DomainPace
from newsletter.subscribers.models import Subscriber, SubscriberStatus
from tests.helpers import wait_until_sent
from workers.tasks import start_digest


def add_subscribers_at(app, domain, count):
    with app.app_context():
        subscribers = [
            Subscriber(
                email=f"reader{n}@{domain}", status=SubscriberStatus.CONFIRMED, signup_source="test"
            )
            for n in range(count)
        ]
        db.session.add_all(subscribers)
        db.session.flush()
        db.session.add_all(Subscription(subscriber_id=r.id, newsletter_id=1) for r in subscribers)
        db.session.commit()


def test_a_domain_that_asks_is_slowed_for_everyone_and_recovers_step_by_step(app):
    with app.app_context():
        domain_pacing.slow_down(["slow.example"], now=1000.0)
        db.session.commit()
        assert domain_pacing.paced_domains() == {"slow.example"}
        pace = db.session.get(DomainPace, "slow.example")
        assert (pace.interval_seconds, pace.next_at) == (1.0, 1001.0)

        # Its turn is ahead: come back then. Once it has come, one worker takes it.
        assert domain_pacing.take_turn("slow.example", now=1000.5) == 1001.0
        assert domain_pacing.take_turn("slow.example", now=1001.0) is None
        assert domain_pacing.take_turn("slow.example", now=1001.5) == 1002.0
        assert domain_pacing.take_turn("fast.example", now=1001.5) is None

        for _ in range(12):
            domain_pacing.slow_down(["slow.example"], now=2000.0)
        db.session.commit()
        assert db.session.get(DomainPace, "slow.example").interval_seconds == 300.0

        domain_pacing.went_through({"slow.example": 60})
        db.session.commit()
        assert db.session.get(DomainPace, "slow.example").interval_seconds == pytest.approx(
            300 * 0.9**60
        )
        domain_pacing.went_through({"slow.example": 30})
        db.session.commit()
        assert domain_pacing.paced_domains() == set()


@pytest.mark.parametrize(
    "reply",
    ["451 4.7.0 Too many messages, please slow down", "421 4.7.28 Unusual rate of mail"],
)
def test_the_digest_slows_down_for_the_domain_that_asked_and_no_other(app, smtp, worker, reply):
    add_subscribers_at(app, "slow.example", 6)
    add_subscribers_at(app, "fast.example", 12)
    smtp.rcpt_replies["reader0@slow.example"] = [reply]
    with app.app_context():
        posts.save_post(None, "News", "https://news.example/1", "")
        digest_id = digests.create_digest("Weekly").id
        digests.schedule(digest_id)
    start_digest.delay(digest_id)
    assert wait_until_sent(app, digest_id, timeout=60)["sent"] == 18

    assert sorted(smtp.recipients) == sorted(
        [f"reader{n}@slow.example" for n in range(6)]
        + [f"reader{n}@fast.example" for n in range(12)]
    )
    slow = [at for at, to in zip(smtp.arrived, smtp.recipients, strict=True) if "slow" in to]
    fast = [at for at, to in zip(smtp.arrived, smtp.recipients, strict=True) if "fast" in to]
    # After the request, one message a turn: about a second apart at first.
    gaps = [later - earlier for earlier, later in itertools.pairwise(slow)]
    assert all(gap >= 0.4 for gap in gaps), gaps
    # The other domain never waited for it.
    assert max(fast) < slow[-1]
    with app.app_context():
        pace = db.session.scalar(select(DomainPace))
        assert pace.domain == "slow.example"
        assert pace.interval_seconds < 1.0


def test_greylisting_is_a_retry_not_a_request_to_slow_down():
    assert type(relay._refusal(451, b"4.7.1 Greylisted, try again later", "RCPT")) is (
        relay.TemporaryFailure
    )
