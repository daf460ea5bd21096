"""``python -m bench admin``: how fast the admin's subscriber pages answer on a large
list, beside the login page (a template, no query) served by the same app in the
same run.

The subscribers are written straight into the database (the sign-up path is
``bench signup``'s business); each page is fetched through the app's test client,
logged in, several times, and the median and the slowest kept.
"""

import statistics
import tempfile
import time

from sqlalchemy import insert

from bench.report import Targets, ratio, table
from bench.stack import STACKS, Stack, available
from harness import log_in
from newsletter import accounts
from newsletter.extensions import db
from newsletter.models import Subscriber, SubscriberStatus, new_token_nonce, utcnow

PAGES = [
    ("baseline: the login page (no query)", "/admin/login"),
    ("subscribers, first page", "/admin/subscribers"),
    ("subscribers, page 2,000", "/admin/subscribers?page=2000"),
    ("subscribers, status filter", "/admin/subscribers?status=pending"),
    ("search, one match", "/admin/subscribers?q=reader123456@"),
    ("search, no match", "/admin/subscribers?q=nobody.here"),
    ("search, many matches", "/admin/subscribers?q=reader1"),
    ("dashboard", "/admin/"),
]
BATCH = 10_000
PENDING, CONFIRMED = SubscriberStatus.PENDING.value, SubscriberStatus.CONFIRMED.value
ADMIN = ("bench@example.org", "a bench password, long enough")
# The promise for search and list pages at 200,000 subscribers on PostgreSQL.
GOAL_MS = 100


def add_subscribers(count):
    """``count`` readers, one in ten pending, written in batches."""
    now = utcnow()
    for start in range(0, count, BATCH):
        db.session.execute(
            insert(Subscriber),
            [
                {
                    "email": f"reader{n}@example{n % 50}.org",
                    "name": f"Reader {n}",
                    "status": SubscriberStatus.PENDING
                    if n % 10 == 0
                    else SubscriberStatus.CONFIRMED,
                    "token_nonce": new_token_nonce(),
                    "signup_at": now,
                    "signup_source": "bench",
                }
                for n in range(start, min(start + BATCH, count))
            ],
        )
        db.session.commit()


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
                add_subscribers(args.subscribers)
                accounts.create_admin(*ADMIN)
                if db.engine.dialect.name == "postgresql":
                    with db.engine.connect() as connection:
                        connection.exec_driver_sql("ANALYZE")
            client = stack.app.test_client()
            log_in(client, *ADMIN)
            # Once each first: caches, prepared plans.
            for _label, path in PAGES:
                client.get(path)
            measured = [(label, *timings(client, path, args.repeats)) for label, path in PAGES]
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
