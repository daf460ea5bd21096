"""``python -m bench clicks``: a tracked digest's links, ``/r/<token>``, under load, beside
a bare redirect endpoint of the same app in the same server (the ceiling).

gunicorn serves the app with sync workers, as ``scripts/run.sh`` does; wrk drives the
load, each request a click on another subscriber's copy of a sent digest (its links spread
over every subscriber), with a browser's user agent, so that each click is a person's and
takes the whole path: the token read, the link looked up, one event written.
"""

import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from bench import procs
from bench.fanout import seed
from bench.report import Targets, ratio, table
from bench.signup import run_wrk, start_web
from bench.stack import STACKS, Stack, available, stop
from bench.web import BARE_REDIRECT_PATH
from newsletter.content.models import Digest, DigestStatus
from newsletter.core import tokens
from newsletter.core.models import utcnow
from newsletter.engagement import links
from newsletter.engagement.models import EngagementEvent
from newsletter.extensions import db
from newsletter.mail.digest import DigestMessages
from newsletter.sending.models import Delivery, DeliveryStatus
from newsletter.subscribers.models import Subscriber

WRK_SCRIPT = Path(__file__).with_name("clicks.lua")
GOALS = {"rate": 2000, "p99_ms": 20, "share of bare": 0.5}


def seed_sent_digest(subscribers, tracking):
    """A tracked digest of six posts, sent an hour ago to ``subscribers`` confirmed subscribers;
    returns every subscriber's click paths, one per link of their copy."""
    digest = db.session.get(Digest, seed(subscribers, tracking=tracking))
    DigestMessages(digest, track_links=lambda urls: links.positions_for(digest.id, urls))
    an_hour_ago = utcnow() - timedelta(hours=1)
    db.session.execute(
        insert(Delivery).from_select(
            ["digest_id", "subscriber_id", "status", "due_at", "sent_at"],
            select(
                db.literal(digest.id),
                Subscriber.id,
                db.literal(DeliveryStatus.SENT),
                db.literal(an_hour_ago),
                db.literal(an_hour_ago),
            ),
        )
    )
    digest.status, digest.finished_at = DigestStatus.SENT, an_hour_ago
    db.session.commit()
    positions = sorted(links.positions_for(digest.id, []).values())
    paths = []
    for nonce in db.session.scalars(select(Subscriber.token_nonce).order_by(Subscriber.id)):
        clicks, _open = tokens.make_tracking_tokens(
            digest.id, positions, nonce, digest.newsletter_id
        )
        paths += [f"/r/{token}" for token in clicks.values()]
    return paths


def clicks_recorded(stack):
    with stack.app.app_context():
        return db.session.scalar(select(func.count()).select_from(EngagementEvent))


def run(stack, args, workdir):
    """The bare redirect, then the tracked one, each under the same load, with the CPU
    the web server used."""
    with stack.app.app_context():
        paths = seed_sent_digest(args.subscribers, args.tracking)
    tracked_paths = workdir / "tracked.txt"
    tracked_paths.write_text("\n".join(paths) + "\n")
    # The bare endpoint gets as many distinct paths, so that both requests are alike.
    bare_paths = workdir / "bare.txt"
    bare_paths.write_text(
        "\n".join(f"{BARE_REDIRECT_PATH}/{path.removeprefix('/r/')}" for path in paths) + "\n"
    )
    web, base = start_web(stack, args.web_workers, workdir / "gunicorn.log")
    try:
        groups = {"web (gunicorn)": web.pid}
        loads = []
        for label, path_file in (
            (f"bare: GET {BARE_REDIRECT_PATH}/<token>", bare_paths),
            ("tracked: GET /r/<token>", tracked_paths),
        ):
            print(f"... {label}, {args.seconds} s", flush=True)
            with procs.CpuMeter(groups) as meter:
                load = run_wrk(label, base + "/", args, str(path_file), script=WRK_SCRIPT)
            load.cpu = meter.used
            loads.append(load)
    finally:
        stop(web)
    return loads, clicks_recorded(stack)


def main(args):
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk (Debian), then run this again.")
        return 1
    names = ["embedded", "postgres"] if args.stack == "both" else [args.stack]
    print(
        f"clicks benchmark: {os.cpu_count()} cores, gunicorn: {args.web_workers} sync workers, "
        f"wrk: {args.clients} connections for {args.seconds} s, {args.subscribers:,} readers' "
        f"copies, tracking {args.tracking}"
    )
    results = {}
    for name in names:
        reason = available(name)
        if reason:
            print(f"NOTICE: {STACKS[name]} is not available here, skipped: {reason}")
            continue
        with tempfile.TemporaryDirectory(prefix="bench-clicks-") as workdir:
            stack = Stack(name, workdir, sink_port=0)
            try:
                results[name] = run(stack, args, Path(workdir))
            finally:
                stack.close()
    if not results:
        return 1
    print()
    return 0 if print_results(results, args) else 1


def print_results(results, args):
    rows = []
    for name, ((bare, tracked), _recorded) in results.items():
        for load in (bare, tracked):
            rows.append(
                [
                    f"{STACKS[name]}, {load.label}",
                    f"{load.requests:,}",
                    f"{load.rate:,.0f}",
                    ratio(load.rate, bare.rate),
                    f"{load.p50_ms:.1f}",
                    f"{load.p99_ms:.1f}",
                    f"{load.max_ms:.1f}",
                    f"{1000 * load.cpu['web (gunicorn)'] / load.requests:.3f}"
                    if load.requests
                    else "-",
                    f"{sum(n for s, n in load.statuses.items() if s != 302):,}",
                    f"{load.socket_errors:,}",
                ]
            )
    print(f"Load: {args.clients} connections for {args.seconds} s each (wrk)")
    table(
        [
            "stack, endpoint",
            "requests",
            "redirects/s",
            "vs bare",
            "p50 ms",
            "p99 ms",
            "max ms",
            "web CPU ms/req",
            "non-302",
            "socket errors",
        ],
        rows,
    )
    correct = True
    for name, ((bare, tracked), recorded) in results.items():
        targets = Targets()
        targets.at_least("redirects/s", tracked.rate, GOALS["rate"])
        targets.below("p99 latency", tracked.p99_ms, GOALS["p99_ms"], " ms")
        targets.at_least(
            "share of the bare redirect", tracked.rate / bare.rate, GOALS["share of bare"], "x"
        )
        answered = tracked.statuses[302]
        all_redirected = answered == tracked.requests and not tracked.socket_errors
        targets.check(
            "every click redirected (302)",
            all_redirected,
            f"{answered:,} of {tracked.requests:,}",
            "all",
        )
        # wrk stops with a few requests still in the server: those are recorded too.
        all_recorded = answered <= recorded <= answered + args.clients
        targets.check(
            "every redirect recorded one event",
            all_recorded,
            f"{recorded:,} events",
            f"{answered:,} (+ up to {args.clients} in flight)",
        )
        targets.print(f"Targets, {STACKS[name]}")
        correct = correct and all_redirected and all_recorded
    if not correct:
        print("ERROR: some click was not redirected, or not recorded exactly once (see above).")
    # Speed is reported, not asserted: the exit status says only whether clicks worked.
    return correct
