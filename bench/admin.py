"""``python -m bench admin``: how fast the admin's subscriber pages and dashboard answer
on a large list, beside the login page (a template, no query) served by the same app in
the same run.

The data is written straight into the database (the sign-up path is ``bench signup``'s
business), shaped as two years of a real list leave it: sign-ups spread over the two
years with their consent log, everyone reading the first newsletter, some subscribers
pending, unsubscribed or bounced, four weekly
digests sent to every confirmed subscriber and a fifth half way through. The database's
statistics are then brought up to date, as autovacuum does after a bulk load. Each page
is fetched through the app's test client, logged in, several times, and the median and
the slowest kept.
"""

import statistics
import tempfile
import time
from datetime import timedelta

from sqlalchemy import case, insert, literal, select

from bench.report import Targets, ratio, table
from bench.stack import STACKS, Stack, available
from harness import log_in
from newsletter.admins import accounts
from newsletter.bounces.models import FeedbackEvent, FeedbackKind
from newsletter.content import digests, newsletters
from newsletter.content.models import Digest, DigestStatus, Subscription
from newsletter.core.models import new_token_nonce, utcnow
from newsletter.extensions import db
from newsletter.sending.models import Delivery, DeliveryStatus
from newsletter.subscribers import admin_actions
from newsletter.subscribers.models import ConsentEvent, ConsentKind, Subscriber, SubscriberStatus

# Where the admin lands with "Older" after as many pages as the OFFSET page it replaced.
DEEP_ROWS = 2_000 * 50
PAGES = [
    ("baseline: the login page (no query)", "/admin/login"),
    ("subscribers, first page", "/admin/subscribers"),
    ("subscribers, 2,000 pages down", "/admin/subscribers?after={deep_id}"),
    ("subscribers, status filter", "/admin/subscribers?status=pending"),
    ("subscribers, one newsletter's", "/admin/subscribers?newsletter=newsletter"),
    ("search, one match", "/admin/subscribers?q=reader123456@"),
    ("search, no match", "/admin/subscribers?q=nobody.here"),
    ("search, many matches", "/admin/subscribers?q=reader1"),
    ("dashboard", "/admin/"),
]
BATCH = 10_000
HISTORY = timedelta(days=730)
SENT_DIGESTS = 4
# The tables the data goes into: their statistics are refreshed after the load.
LOADED = (
    "subscriber",
    "subscriber_tally",
    "subscription",
    "consent_event",
    "feedback_event",
    "delivery",
)
ADMIN = ("bench@example.org", "a bench password, long enough")
# The promise for search and list pages at 200,000 subscribers on PostgreSQL.
GOAL_MS = 100


def status_of(n):
    """One subscriber in ten pending, one in fifty unsubscribed, one in a hundred bounced."""
    if n % 10 == 0:
        return SubscriberStatus.PENDING
    if n % 50 == 1:
        return SubscriberStatus.UNSUBSCRIBED
    if n % 100 == 3:
        return SubscriberStatus.BOUNCED
    return SubscriberStatus.CONFIRMED


def add_subscribers(count):
    """``count`` subscribers who signed up over HISTORY, oldest first, written in batches."""
    now = utcnow()
    step = HISTORY / count
    for start in range(0, count, BATCH):
        rows = []
        for n in range(start, min(start + BATCH, count)):
            status = status_of(n)
            signed_up = now - (count - n) * step
            rows.append(
                {
                    "email": f"reader{n}@example{n % 50}.org",
                    "name": f"Reader {n}",
                    "status": status,
                    "token_nonce": new_token_nonce(),
                    "signup_at": signed_up,
                    "signup_source": "bench",
                    "confirmed_at": None
                    if status == SubscriberStatus.PENDING
                    else signed_up + timedelta(hours=1),
                    "unsubscribed_at": min(now, signed_up + timedelta(days=30))
                    if status == SubscriberStatus.UNSUBSCRIBED
                    else None,
                }
            )
        db.session.execute(insert(Subscriber), rows)
        db.session.commit()


def add_consent_log():
    """Each subscriber's choice of the first newsletter, their sign-up, confirmation and
    unsubscribe, and the bounce that ended the bounced subscribers' mail, when their own
    rows say they happened."""
    db.session.execute(
        insert(Subscription).from_select(
            ["subscriber_id", "newsletter_id", "active", "changed_at"],
            select(
                Subscriber.id, literal(newsletters.first().id), literal(True), Subscriber.signup_at
            ),
        )
    )
    logged = [
        (ConsentKind.SIGNUP, Subscriber.signup_at),
        (ConsentKind.CONFIRM, Subscriber.confirmed_at),
        (ConsentKind.UNSUBSCRIBE, Subscriber.unsubscribed_at),
    ]
    for kind, at in logged:
        db.session.execute(
            insert(ConsentEvent).from_select(
                ["subscriber_id", "kind", "source", "at"],
                select(Subscriber.id, literal(kind.value), literal("bench"), at).where(
                    at.is_not(None)
                ),
            )
        )
    db.session.execute(
        insert(FeedbackEvent).from_select(
            ["subscriber_id", "kind", "source", "reference", "at", "changed_status"],
            select(
                Subscriber.id,
                literal(FeedbackKind.HARD_BOUNCE.value),
                literal("dsn"),
                Subscriber.email,
                Subscriber.confirmed_at + timedelta(days=60),
                literal(True),
            ).where(Subscriber.status == SubscriberStatus.BOUNCED),
        )
    )
    db.session.commit()


def add_digests(count):
    """SENT_DIGESTS weekly digests sent to every confirmed subscriber, and this week's half
    sent: one delivery row per subscriber and digest, and the totals of those sent, as
    sending leaves them."""
    now = utcnow()
    confirmed = select(Subscriber.id).where(Subscriber.status == SubscriberStatus.CONFIRMED)
    for weeks_ago in range(SENT_DIGESTS, -1, -1):
        started = now - timedelta(weeks=weeks_ago, hours=-1)
        sending = weeks_ago == 0
        digest = Digest(
            subject=f"The week {weeks_ago} weeks ago",
            status=DigestStatus.SENDING if sending else DigestStatus.SENT,
            started_at=started,
            finished_at=None if sending else started + timedelta(hours=1),
        )
        db.session.add(digest)
        db.session.flush()
        sent = Subscriber.id < (count // 2 if sending else count + 1)
        db.session.execute(
            insert(Delivery).from_select(
                ["digest_id", "subscriber_id", "status", "due_at", "attempts", "sent_at"],
                select(
                    literal(digest.id),
                    Subscriber.id,
                    case((sent, DeliveryStatus.SENT.value), else_=DeliveryStatus.PENDING.value),
                    literal(started),
                    case((sent, 1), else_=0),
                    case((sent, started), else_=None),
                ).where(Subscriber.id.in_(confirmed)),
            )
        )
        if not sending:
            # As sending does when the last copy goes.
            digests.keep_totals(digest.id)
        db.session.commit()


def refresh_statistics():
    """What autovacuum does after a bulk load: the planner's statistics (a search's
    plan depends on them) and the visibility map (index-only scans)."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for name in LOADED:
                connection.exec_driver_sql(f"VACUUM (ANALYZE) {name}")
    else:
        with db.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")


def load(count):
    """The list, its history and an admin; returns the pages to fetch."""
    add_subscribers(count)
    add_consent_log()
    add_digests(count)
    accounts.create_admin(*ADMIN)
    # The first look at the counts after a bulk load folds the tally it grew (as after
    # an import), before autovacuum passes.
    admin_actions.status_counts()
    refresh_statistics()
    return [(label, path.format(deep_id=deep_id(count))) for label, path in PAGES]


def deep_id(count):
    """The id that "Older" links to after DEEP_ROWS subscribers, newest first."""
    return db.session.scalar(
        select(Subscriber.id).order_by(Subscriber.id.desc()).offset(min(DEEP_ROWS, count - 1))
    )


def timings(client, path, repeats):
    spent = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = client.get(path)
        spent.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"{path} answered {answer.status_code}")
    return statistics.median(spent), max(spent)


def main(args):
    why = available(args.stack)
    if why:
        print(f"NOTICE: the {args.stack} stack is not available here, skipped: {why}")
        return 0
    with tempfile.TemporaryDirectory() as workdir:
        stack = Stack(args.stack, workdir, sink_port=0)
        try:
            with stack.app.app_context():
                pages = load(args.subscribers)
            client = stack.app.test_client()
            log_in(client, *ADMIN)
            # Once each first: caches, prepared plans.
            for _label, path in pages:
                client.get(path)
            measured = [(label, *timings(client, path, args.repeats)) for label, path in pages]
        finally:
            stack.close()
    baseline = measured[0][1]
    print(
        f"admin pages: {STACKS[args.stack]}, {args.subscribers:,} subscribers, "
        f"{args.repeats} fetches each, logged in"
    )
    table(
        ["page", "median ms", "slowest ms", "vs baseline"],
        [
            (label, f"{median:.1f}", f"{slowest:.1f}", ratio(median, baseline))
            for label, median, slowest in measured
        ],
    )
    targets = Targets()
    for label, median, _slowest in measured[1:]:
        targets.below(f"{label}, median", median, GOAL_MS, " ms")
    targets.print(f"Targets, {args.subscribers:,} subscribers")
    return 0
