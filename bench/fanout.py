"""``python -m bench fanout``: one digest to N confirmed subscribers through real
Celery workers, beside the wire and the tutorial pattern on the same sink."""

import itertools
import os
import shutil
import smtplib
import subprocess
import tempfile
import time
from datetime import timedelta

from sqlalchemy import insert, literal, select

from bench import procs
from bench.report import Targets, mib, ratio, table
from bench.sink import Sink
from bench.stack import STACKS, Stack, available, stop
from bench.tutorial import send_one
from config import Config
from newsletter.content import digests, newsletters
from newsletter.content.models import Digest, DigestStatus, Post, Subscription
from newsletter.core import task_names
from newsletter.core.models import new_token_nonce, utcnow
from newsletter.extensions import db
from newsletter.mail.digest import DigestMessages
from newsletter.mail.relay import Envelope, SMTPSender
from newsletter.sending import hints
from newsletter.subscribers.models import Subscriber, SubscriberSnapshot, SubscriberStatus

SENDER = "newsletter@news.example.com"
# Subscribers per step when the time per step is compared, first to last.
STEP = 100_000

PARAGRAPH = (
    "The council voted on Tuesday to extend the harbour path by two kilometres, "
    "after a year of consultation in which more than three thousand residents took part. "
    "Work starts in spring; the path stays open while it goes on. "
)


def seed(subscribers, chunk=5000, tracking="off"):
    """N confirmed subscribers and a digest of six posts (~8 KB per message), for a
    newsletter with this engagement tracking."""
    now = utcnow()
    newsletters.first().tracking = tracking
    for start in range(0, subscribers, chunk):
        db.session.execute(
            insert(Subscriber),
            [
                {
                    "email": f"reader{number}@example{number % 50}.org",
                    "name": f"SubscriberSnapshot {number}",
                    "status": SubscriberStatus.CONFIRMED,
                    "token_nonce": new_token_nonce(),
                    "signup_source": "benchmark",
                    "confirmed_at": now,
                }
                for number in range(start, min(start + chunk, subscribers))
            ],
        )
    # Every one of them a subscriber of the first newsletter, which the digest goes to.
    db.session.execute(
        insert(Subscription).from_select(
            ["subscriber_id", "newsletter_id", "active", "changed_at"],
            select(Subscriber.id, literal(newsletters.first().id), literal(True), literal(now)),
        )
    )
    for number in range(6):
        db.session.add(
            Post(
                guid=f"bench-{number}",
                link=f"https://news.example.com/2026/11/story-{number}",
                title=f"Story {number}: the harbour path grows by two kilometres",
                summary_html=f"<p>{PARAGRAPH * 2}</p>",
                published_at=now - timedelta(hours=number),
            )
        )
    db.session.commit()
    return digests.create_digest("This week in the harbour town", "Our picks of the week.").id


class Run:
    """One measured send: what it is, how many, how long."""

    def __init__(self, label, messages, seconds, peaks=(), stats=None):
        self.label = label
        self.messages = messages
        self.seconds = seconds
        self.peaks = list(peaks)
        self.stats = stats or {}

    @property
    def rate(self):
        return self.messages / self.seconds if self.seconds else 0.0


def prebuilt_messages(stack, digest_id, distinct=1000):
    """Digest copies for the first ``distinct`` subscribers, built once for the baselines."""
    with stack.app.app_context():
        maker = DigestMessages(db.session.get(Digest, digest_id))
        rows = db.session.execute(
            select(Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.token_nonce)
            .order_by(Subscriber.id)
            .limit(distinct)
        ).all()
        return [
            (row.email, maker.build(SubscriberSnapshot(*row, SubscriberStatus.CONFIRMED)))
            for row in rows
        ]


def measure_wire(sink, prebuilt, messages):
    """A bare smtplib loop over one connection, sending prebuilt digest messages."""
    before = sink.count
    started = time.perf_counter()
    smtp = smtplib.SMTP("127.0.0.1", sink.port)
    for number in range(messages):
        email, raw = prebuilt[number % len(prebuilt)]
        smtp.sendmail(SENDER, [email], raw)
    smtp.quit()
    last = sink.wait_for(before + messages, timeout=60)
    return Run("the wire: smtplib, 1 connection, prebuilt", messages, last - started)


def measure_pipelined_wire(sink, prebuilt, messages):
    """The same loop through the service's SMTP sender, which pipelines the envelope."""
    before = sink.count
    started = time.perf_counter()
    sender = SMTPSender(lambda: greeted_session(sink.port), SENDER, sign=lambda raw: raw)
    label = "the wire, pipelined: 1 connection, prebuilt"
    if not sender.pipelining:
        label = "the wire through the service's sender (no PIPELINING offered)"
    for number in range(messages):
        email, raw = prebuilt[number % len(prebuilt)]
        following = prebuilt[(number + 1) % len(prebuilt)][0] if number + 1 < messages else None
        sender.send(
            Envelope(email),
            raw,
            before_commit=lambda: None,
            next_envelope=following and Envelope(following),
        )
    sender.close()
    last = sink.wait_for(before + messages, timeout=60)
    return Run(label, messages, last - started)


def greeted_session(port):
    smtp = smtplib.SMTP("127.0.0.1", port)
    smtp.ehlo()
    return smtp


def measure_smtp_source(sink, prebuilt, messages, sessions=4):
    """Postfix's smtp-source, C, with ``sessions`` connections: this machine's reference."""
    binary = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    if not os.path.exists(binary):
        return None
    with tempfile.NamedTemporaryFile(suffix=".eml") as message:
        message.write(prebuilt[0][1].replace(b"\r\n", b"\n"))
        message.flush()
        before = sink.count
        started = time.perf_counter()
        subprocess.run(
            [binary, "-d", "-s", str(sessions), "-m", str(messages), "-F", message.name,
             "-f", SENDER, "-t", prebuilt[0][0], f"127.0.0.1:{sink.port}"],
            check=True,
        )  # fmt: skip
        last = sink.wait_for(before + messages, timeout=120)
    return Run(f"smtp-source (Postfix, C): {sessions} sessions", messages, last - started)


class Baselines:
    """The wire, the pipelined wire and smtp-source, measured before each stack's send
    and once after the last: on a shared machine one short measurement can be 20% off,
    so each baseline is the median of its measurements, and their range is shown."""

    def __init__(self, sink, messages):
        self.sink = sink
        self.messages = messages
        self.prebuilt = None
        self.measured = {}

    def measure(self):
        if self.prebuilt is None:
            return
        count = self.messages
        runs = [
            measure_wire(self.sink, self.prebuilt, count),
            measure_pipelined_wire(self.sink, self.prebuilt, count),
            measure_smtp_source(self.sink, self.prebuilt, count),
        ]
        for run in filter(None, runs):
            self.measured.setdefault(run.label, []).append(run)

    @property
    def size(self):
        return len(self.prebuilt[0][1]) if self.prebuilt else None

    def medians(self):
        """One Run per baseline, the median by rate, labelled with the range."""
        medians = []
        for label, runs in self.measured.items():
            ordered = sorted(runs, key=lambda run: run.rate)
            middle = ordered[len(ordered) // 2]
            low, high = ordered[0].rate, ordered[-1].rate
            spread = f", median of {len(ordered)} runs ({low:,.0f} to {high:,.0f})"
            medians.append(
                Run(label + (spread if len(ordered) > 1 else ""), middle.messages, middle.seconds)
            )
        return medians


class MeasuredWorker:
    """A real worker for one measured send: its peak RSS is read before it stops,
    and the statement counts its processes wrote, after."""

    def __init__(self, stack, concurrency):
        self.stack, self.concurrency = stack, concurrency

    def __enter__(self):
        self._stats_dir = tempfile.TemporaryDirectory(prefix="bench-worker-")
        self.process = self.stack.start_worker(self._stats_dir.name, self.concurrency)
        return self

    def wait_for(self, sink, count, **timeouts):
        """When the sink holds ``count`` messages (None if it stalled); notes peak RSS."""
        last = sink.wait_for(count, **timeouts)
        self.peaks = procs.tree_peaks("worker", self.process.pid)
        return last

    def __exit__(self, *_):
        stop(self.process)
        self.stats = procs.collected(self._stats_dir.name)
        self._stats_dir.cleanup()


def measure_tutorial(stack, sink, digest_id, messages, concurrency):
    """One Celery task per email, each building its message and opening a connection."""
    with MeasuredWorker(stack, concurrency) as worker:
        with stack.app.app_context():
            ids = db.session.scalars(
                select(Subscriber.id).order_by(Subscriber.id).limit(messages)
            ).all()
        before = sink.count
        started = time.perf_counter()
        with stack.app.app_context():
            for subscriber_id in ids:
                send_one.delay(digest_id, subscriber_id)
        last = worker.wait_for(sink, before + len(ids), timeout=600, idle_timeout=30)
    if last is None:
        raise RuntimeError(f"the tutorial run stalled at {sink.count - before} of {len(ids)}")
    label = "tutorial: 1 task + 1 connection per email"
    return Run(label, len(ids), last - started, worker.peaks, worker.stats)


def measure_digest(stack, sink, digest_id, subscribers, concurrency):
    """The service's own send: what an admin's "send now" sets off."""
    with MeasuredWorker(stack, concurrency) as worker:
        before = sink.count
        started = time.perf_counter()
        sink.mark(STEP)
        with stack.app.app_context():
            digests.schedule(digest_id)
            hints.start_digest_send(digest_id)
        last = worker.wait_for(sink, before + subscribers, timeout=7200, idle_timeout=60)
        steps = _step_seconds(sink, started, subscribers)
        finished = _wait_finished(stack, digest_id)
    if last is None:
        raise RuntimeError(f"the digest stalled at {sink.count - before} of {subscribers}")
    stats = worker.stats
    with stack.app.app_context():
        stats["deliveries"] = digests.progress(digest_id)
        stats["digest finished"] = finished
    time.sleep(0.5)
    stats["extra messages at the sink"] = sink.count - before - subscribers
    stats["seconds per step"] = steps
    stats["exactly once"] = (
        stats["deliveries"]["sent"] == subscribers
        and stats["extra messages at the sink"] == 0
        and finished
    )
    return Run("newsletter digest", subscribers, last - started, worker.peaks, stats)


def _step_seconds(sink, started, subscribers):
    """Seconds from 'send' to the first message, then the seconds each STEP subscribers
    took after it, in order (whole steps only)."""
    moments = [started, sink.marks.get(1)]
    moments += [sink.marks.get(done) for done in range(STEP, subscribers + 1, STEP)]
    moments = moments[: moments.index(None)] if None in moments else moments
    return [later - earlier for earlier, later in itertools.pairwise(moments)]


def _wait_finished(stack, digest_id, timeout=30):
    deadline = time.monotonic() + timeout
    with stack.app.app_context():
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.get(Digest, digest_id).status == DigestStatus.SENT:
                return True
            time.sleep(0.1)
    return False


def run_stack(stack_name, subscribers, sink, args, baselines, tutorial):
    """Seed a fresh stack, measure the baselines, and send one digest; returns its runs."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{stack_name}-") as workdir:
        stack = Stack(stack_name, workdir, sink.port)
        try:
            with stack.app.app_context():
                digest_id = seed(subscribers, tracking=args.tracking)
            if baselines.prebuilt is None:
                baselines.prebuilt = prebuilt_messages(stack, digest_id)
            baselines.measure()
            runs = {}
            if tutorial and args.tutorial_messages:
                runs["tutorial"] = measure_tutorial(
                    stack, sink, digest_id, min(subscribers, args.tutorial_messages), args.workers
                )
            runs["digest"] = measure_digest(stack, sink, digest_id, subscribers, args.workers)
        finally:
            stack.close()
    return runs


def main(args):
    sizes = sorted(int(size) for size in args.subscribers.split(","))
    names = ["embedded", "postgres"] if args.stack == "both" else [args.stack]
    sink = Sink(prefer_smtp_sink=not args.aiosmtpd)
    print(
        f"fanout benchmark: {os.cpu_count()} cores, sink: {sink.kind}, "
        f"{args.workers} worker processes per stack, DKIM off, tracking {args.tracking}, "
        f"batches of {Config.DIGEST_BATCH_SIZE} ({Config.DIGEST_PARALLEL_BATCHES} in flight), "
        "each accepted message recorded before the next is accepted"
    )
    results = {}
    baselines = Baselines(sink, min(sizes[0], args.wire_messages))
    try:
        for name in names:
            reason = available(name)
            if reason:
                print(f"NOTICE: {STACKS[name]} is not available here, skipped: {reason}")
                continue
            for number, subscribers in enumerate(sizes):
                print(f"... {STACKS[name]}: {subscribers:,} subscribers", flush=True)
                results[name, subscribers] = run_stack(
                    name, subscribers, sink, args, baselines, tutorial=number == 0
                )
        baselines.measure()
    finally:
        sink.stop()
    print()
    print_results(results, baselines.medians(), baselines.size, sizes)
    exact = all(runs["digest"].stats["exactly once"] for runs in results.values())
    if not exact:
        print("ERROR: some subscriber did not get the digest exactly once (see above).")
    return 0 if exact else 1


def print_results(results, baselines, size, sizes):
    baselines = baselines or []
    wire = baselines[0] if baselines else None
    reference = next((run for run in baselines if run.label.startswith("smtp-source")), None)
    print_throughput(results, baselines, wire, reference, size, sizes)
    print_database_work(results)
    print_memory(results, sizes)
    print_steps(results)
    for name in dict.fromkeys(name for name, _ in results):
        print_targets(results, name, sizes, wire)


def print_throughput(results, baselines, wire, reference, size, sizes):
    rows = [
        [run.label, f"{run.messages:,}", f"{run.seconds:.1f}", f"{run.rate:,.0f}",
         ratio(run.rate, wire.rate), ratio(run.rate, reference.rate) if reference else "-", "-"]
        for run in baselines
    ]  # fmt: skip
    for (name, _), runs in results.items():
        tutorial = results[name, sizes[0]].get("tutorial")
        for key in ("tutorial", "digest"):
            if key not in runs:
                continue
            run = runs[key]
            rows.append(
                [
                    f"{name}: {run.label}",
                    f"{run.messages:,}",
                    f"{run.seconds:.1f}",
                    f"{run.rate:,.0f}",
                    ratio(run.rate, wire.rate if wire else 0),
                    ratio(run.rate, reference.rate) if reference else "-",
                    ratio(run.rate, tutorial.rate) if tutorial and key == "digest" else "-",
                ]
            )
    print(
        f"Throughput (messages of {(size or 0) / 1024:.1f} KB; seconds from 'send' to the "
        "last message accepted by the sink)"
    )
    headers = ["run", "messages", "seconds", "msg/s", "vs wire", "vs smtp-source", "vs tutorial"]
    table(headers, rows)


def print_database_work(results):
    rows = []
    for (name, subscribers), runs in results.items():
        digest = runs["digest"]
        stats = digest.stats
        batches = stats.get(f"task:{task_names.SEND_DIGEST_BATCH}", 0)
        rows.append(
            [
                f"{name}, {subscribers:,}",
                f"{stats.get('statements', 0):,}",
                f"{stats.get('commits', 0):,}",
                f"{batches:,}",
                f"{stats.get('statements', 0) / digest.messages:.3f}",
                f"{stats.get('statements', 0) * Config.DIGEST_BATCH_SIZE / digest.messages:.1f}",
                " ".join(f"{k}={v}" for k, v in stats["deliveries"].items() if v),
                stats["extra messages at the sink"],
            ]
        )
    print(
        "Database work of the digest send: statements through SQLAlchemy in every worker"
        " process (claims, batch results); each message's own record is one more, pipelined"
    )
    table(
        [
            "stack, subscribers",
            "statements",
            "commits",
            "batch tasks",
            "per message",
            f"per {Config.DIGEST_BATCH_SIZE}-message batch",
            "deliveries",
            "extra at sink",
        ],
        rows,
    )


def print_memory(results, sizes):
    labels = []
    for runs in results.values():
        labels += [label for label, _ in runs["digest"].peaks if label not in labels]
    rows = []
    for name in dict.fromkeys(name for name, _ in results):
        for label in labels:
            peaks = [
                dict(results[name, s]["digest"].peaks).get(label)
                for s in sizes
                if (name, s) in results
            ]
            growth = (
                f"{(peaks[-1] - peaks[0]) / peaks[0]:+.0%}"
                if len(peaks) > 1 and None not in peaks
                else "-"
            )
            rows.append([f"{name}: {label}", *map(mib, peaks), growth])
    print("Peak RSS of each process during the digest send (VmHWM)")
    table(["process", *(f"{s:,}" for s in sizes), "growth"], rows)


def print_steps(results):
    """The time each 100,000 subscribers took, so that a slowdown as the table grows shows."""
    rows = []
    for (name, subscribers), runs in results.items():
        startup, *steps = runs["digest"].stats["seconds per step"] or [0.0]
        if len(steps) > 1:
            growth = (steps[-1] - steps[0]) / steps[0]
            rows.append(
                [f"{name}, {subscribers:,}", f"{startup:.1f}", len(steps), f"{steps[0]:.1f}",
                 f"{max(steps):.1f}", f"{steps[-1]:.1f}", f"{growth:+.0%}"]
            )  # fmt: skip
    if rows:
        print(f"Seconds per {STEP:,} readers after the first message, first to last")
        headers = ["stack, subscribers", "to the first message", "steps", "first", "slowest"]
        table([*headers, "last", "last vs first"], rows)


def print_targets(results, name, sizes, wire):
    largest = max(s for n, s in results if n == name)
    digest = results[name, largest]["digest"]
    tutorial = results[name, sizes[0]].get("tutorial")
    targets = Targets()
    targets.at_least("messages/second", digest.rate, 1700)
    if wire:
        targets.at_least("share of the wire", 100 * digest.rate / wire.rate, 100, "%")
    steps = digest.stats["seconds per step"][1:]
    if len(steps) > 1:
        growth = 100 * (steps[-1] - steps[0]) / steps[0]
        targets.below(f"time per {STEP:,}, last vs first", growth, 15, "%")
    if tutorial:
        targets.at_least("times the tutorial pattern", digest.rate / tutorial.rate, 10, "x")
    runs = [results[name, s]["digest"] for s in sizes if (name, s) in results]
    if len(runs) > 1:
        first, last = dict(runs[0].peaks), dict(runs[-1].peaks)
        worst = max(
            (last[label] - first[label]) / first[label]
            for label in first
            if first.get(label) and last.get(label)
        )
        targets.below(f"peak RSS growth {sizes[0]:,} → {largest:,}", 100 * worst, 10, "%")
    per_message = digest.stats.get("statements", 0) / digest.messages
    targets.below("batch statements per message, besides its own record", per_message, 0.1)
    exact = digest.stats["exactly once"]
    targets.check(
        "each subscriber exactly once, digest marked sent",
        exact,
        "yes" if exact else "NO",
        "yes",
    )
    targets.print(f"Targets, {STACKS[name]}, {largest:,} subscribers")
