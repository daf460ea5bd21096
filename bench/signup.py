"""``python -m bench signup``: sign-ups through the JSON API under load, beside an
endpoint that does nothing in the same server (the ceiling), then the time from a
form post to its confirmation email at the sink.

gunicorn runs the app with sync workers, as ``scripts/run.sh`` does; wrk drives the
load; a real Celery worker sends the confirmations while the load goes on.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from sqlalchemy import func, select

from bench import procs
from bench.report import Targets, mib, ratio, table
from bench.sink import Sink
from bench.stack import PROJECT_ROOT, STACKS, Stack, available, log_tail, stop
from bench.web import NOOP_PATH
from harness import free_port
from newsletter.extensions import db
from newsletter.sending.models import EmailJob, EmailKind
from newsletter.subscribers.models import Subscriber

WRK_SCRIPT = Path(__file__).with_name("signup.lua")
RESULT_MARKER = "bench-result "
# One wrk thread keeps thousands of requests a second in flight; a second thread would
# only take CPU from the server on a 2-core machine.
WRK_THREADS = 1
# As scripts/run.sh starts it: Celery's default of one process per core, here 2.
WORKER_CONCURRENCY = 2
API_SOURCE = "api"


@dataclass
class Load:
    """One wrk run against one endpoint."""

    label: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    statuses: Counter = field(default_factory=Counter)
    # CPU seconds per group of processes during the load (see procs.CpuMeter).
    cpu: dict = field(default_factory=dict)

    def cpu_ms_per_request(self, group):
        return 1000 * self.cpu[group] / self.requests if self.requests else 0.0

    @property
    def rate(self):
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def non_2xx(self):
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)


@dataclass
class Confirmations:
    """The confirmation emails owed by the sign-ups of the load, and what arrived."""

    accepted: int
    recorded: int
    delivered_during_load: int
    delivered: int
    jobs: Counter
    drain_seconds: float | None

    @property
    def complete(self):
        return self.drain_seconds is not None and self.delivered == self.recorded >= self.accepted


def run_wrk(label, url, args, script_argument, script=WRK_SCRIPT):
    """wrk with ``args.clients`` connections for ``args.seconds``, running ``script``
    (which prints its result line) with one argument."""
    command = ["wrk", "--threads", str(min(WRK_THREADS, args.clients))]
    command += ["--connections", str(args.clients), "--duration", f"{args.seconds}s"]
    # Long enough that a slow answer counts in the latency instead of as an error.
    command += ["--timeout", "10s", "--script", str(script), url, "--", script_argument]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    lines = [line for line in output.splitlines() if line.startswith(RESULT_MARKER)]
    if not lines:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    result = json.loads(lines[-1].removeprefix(RESULT_MARKER))
    return Load(
        label,
        requests=result["requests"],
        seconds=result["duration_us"] / 1e6,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        max_ms=result["max_us"] / 1000,
        socket_errors=result["socket_errors"],
        statuses=Counter({int(status): count for status, count in result["statuses"].items()}),
    )


def start_web(stack, workers, log):
    """gunicorn serving bench.web with the stack's configuration; returns (process, base URL)."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "bench.web:create_app()"]
    command += ["--workers", str(workers), "--worker-class", "sync"]
    command += ["--bind", f"127.0.0.1:{port}"]
    # The per-address sign-up limit would refuse nearly all of the load: it all comes
    # from 127.0.0.1.
    env = stack.process_env(SIGNUP_RATE_LIMIT="1000000/second")
    with open(log, "wb") as output:
        web = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urlopen(Request(base + NOOP_PATH, data=b"{}"), timeout=5):
                return web, base
        except OSError:  # not listening yet, or still booting its workers
            if web.poll() is not None or time.monotonic() > deadline:
                stop(web)
                raise RuntimeError(f"gunicorn did not start:\n{log_tail(log)}") from None
            time.sleep(0.1)


def signups_recorded(stack):
    with stack.app.app_context():
        return db.session.scalar(
            select(func.count())
            .select_from(Subscriber)
            .where(Subscriber.signup_source == API_SOURCE)
        )


def confirmation_jobs(stack):
    with stack.app.app_context():
        rows = db.session.execute(
            select(EmailJob.status, func.count())
            .where(EmailJob.kind == EmailKind.CONFIRMATION)
            .group_by(EmailJob.status)
        ).all()
    return Counter({str(status): count for status, count in rows})


def await_confirmations(stack, sink, before, load):
    """Wait until every sign-up of the load has its email at the sink."""
    load_ended = time.perf_counter()
    delivered_during_load = sink.count - before
    accepted = load.statuses[202]
    # A few requests were still in the server when wrk stopped: count the sign-ups
    # once the count stands still.
    recorded = signups_recorded(stack)
    while True:
        time.sleep(0.5)
        settled, recorded = recorded, signups_recorded(stack)
        if settled == recorded:
            break
    arrived = sink.wait_for(before + recorded, timeout=900, idle_timeout=30)
    # Anything that arrives in the next second is a second email for one sign-up.
    time.sleep(1)
    return Confirmations(
        accepted=accepted,
        recorded=recorded,
        delivered_during_load=delivered_during_load,
        delivered=sink.count - before,
        jobs=confirmation_jobs(stack),
        drain_seconds=None if arrived is None else max(arrived - load_ended, 0.0),
    )


def measure_latency(base, sink, samples):
    """Seconds from each form post to its email at the sink, one sign-up at a time."""
    latencies = []
    for number in range(samples):
        before = sink.count
        body = urlencode({"email": f"latency-{number}@example.org"}).encode()
        started = time.perf_counter()
        with urlopen(Request(base + "/subscribe", data=body), timeout=10) as response:
            response.read()
        arrived = sink.wait_for(before + 1, timeout=30)
        if arrived is None:
            raise RuntimeError(f"no confirmation email for latency sample {number}")
        latencies.append(arrived - started)
    return latencies


def percentile(values, share):
    return statistics.quantiles(values, n=100, method="inclusive")[share - 1]


def run(stack, sink, args, workdir):
    stats_dir = workdir / "worker-stats"
    stats_dir.mkdir()
    worker = stack.start_worker(stats_dir, WORKER_CONCURRENCY)
    try:
        web, base = start_web(stack, args.web_workers, workdir / "gunicorn.log")
        try:
            groups = {"web (gunicorn)": web.pid, "Celery worker": worker.pid}
            groups["SMTP sink"] = sink.process.pid
            ceiling, signup = measure_loads(base, sink, args, groups)
            print("... waiting for every confirmation email", flush=True)
            confirmations = await_confirmations(stack, sink, signup.before, signup)
            print(f"... confirmation latency: {args.latency_samples} form posts", flush=True)
            latencies = measure_latency(base, sink, args.latency_samples)
            peaks = procs.tree_peaks("gunicorn", web.pid)
        finally:
            stop(web)
    finally:
        stop(worker)
    return ceiling, signup, confirmations, latencies, peaks


def measure_loads(base, sink, args, groups):
    """The bare endpoint's ceiling, then sign-ups, each with the CPU every group used."""
    print(f"... ceiling: POST {NOOP_PATH}, {args.seconds} s", flush=True)
    with procs.CpuMeter(groups) as meter:
        ceiling = run_wrk(f"ceiling: POST {NOOP_PATH}", base + NOOP_PATH, args, "noop")
    ceiling.cpu = meter.used
    print(f"... sign-ups: POST /api/subscribe, {args.seconds} s", flush=True)
    before = sink.count
    with procs.CpuMeter(groups) as meter:
        signup = run_wrk("sign-up: POST /api/subscribe", base + "/api/subscribe", args, "load")
    signup.cpu = meter.used
    signup.before = before
    return ceiling, signup


def main(args):
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk (Debian), then run this again.")
        return 1
    reason = available(args.stack)
    if reason:
        print(f"NOTICE: {STACKS[args.stack]} is not available here: {reason}")
        return 1
    sink = Sink()
    print(
        f"signup benchmark: {os.cpu_count()} cores, {STACKS[args.stack]}, sink: {sink.kind}, "
        f"gunicorn: {args.web_workers} sync workers, wrk: {args.clients} connections, "
        f"Celery worker: {WORKER_CONCURRENCY} processes"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bench-signup-") as workdir:
            stack = Stack(args.stack, workdir, sink.port)
            try:
                results = run(stack, sink, args, Path(workdir))
            finally:
                stack.close()
    finally:
        sink.stop()
    print()
    return 0 if print_results(*results, args) else 1


def print_results(ceiling, signup, confirmations, latencies, peaks, args):
    rows = [
        [
            load.label,
            f"{load.requests:,}",
            f"{load.rate:,.0f}",
            ratio(load.rate, ceiling.rate),
            f"{load.p50_ms:.1f}",
            f"{load.p99_ms:.1f}",
            f"{load.max_ms:.1f}",
            f"{load.non_2xx:,}",
            f"{load.socket_errors:,}",
        ]
        for load in (ceiling, signup)
    ]
    print(f"Load: {args.clients} connections for {args.seconds} s each (wrk)")
    table(
        [
            "endpoint",
            "requests",
            "req/s",
            "vs ceiling",
            "p50 ms",
            "p99 ms",
            "max ms",
            "non-2xx",
            "socket errors",
        ],
        rows,
    )

    cores = os.cpu_count()
    print("CPU per request, in ms, by process (the machine's total includes wrk and the kernel)")
    table(
        ["process", "ceiling", "sign-up"],
        [
            [
                group,
                f"{ceiling.cpu_ms_per_request(group):.3f}",
                f"{signup.cpu_ms_per_request(group):.3f}",
            ]
            for group in signup.cpu
        ]
        + [
            [
                f"machine busy (of {cores} cores)",
                f"{100 * ceiling.cpu['machine'] / (cores * ceiling.seconds):.0f}%",
                f"{100 * signup.cpu['machine'] / (cores * signup.seconds):.0f}%",
            ]
        ],
    )
    email = sum(signup.cpu_ms_per_request(group) for group in ("Celery worker", "SMTP sink"))
    ceiling_ms = ceiling.cpu_ms_per_request("machine")
    print(
        "With the CPU the only limit, sign-ups could reach "
        f"{100 * ceiling_ms / signup.cpu_ms_per_request('machine'):.0f}% of the ceiling; "
        "and if recording a sign-up cost nothing beyond the bare request, the confirmation "
        f"email it owes ({email:.3f} ms in the worker and the sink) would still hold it to "
        f"{100 * ceiling_ms / (ceiling_ms + email):.0f}%.\n"
    )

    drain = confirmations.drain_seconds
    print("Confirmation emails for the sign-ups of the load")
    table(
        [
            "answered 202",
            "sign-ups recorded",
            "delivered during load",
            "delivered in all",
            "jobs",
            "all in after load",
        ],
        [
            [
                f"{confirmations.accepted:,}",
                f"{confirmations.recorded:,}",
                f"{confirmations.delivered_during_load:,}",
                f"{confirmations.delivered:,}",
                " ".join(f"{status}={count}" for status, count in confirmations.jobs.items()),
                "NOT ALL" if drain is None else f"{drain:.1f} s",
            ]
        ],
    )

    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print("Confirmation latency: form post to the email at the sink, one sign-up at a time")
    table(
        ["samples", "p50 s", "p99 s", "max s"],
        [[len(latencies), f"{p50:.3f}", f"{p99:.3f}", f"{max(latencies):.3f}"]],
    )

    print("Peak RSS of the web server's processes (VmHWM)")
    table(["process", "peak"], [[label, mib(kib)] for label, kib in peaks])

    targets = Targets()
    targets.at_least(
        "sign-up req/s, share of the ceiling", 100 * signup.rate / ceiling.rate, 40, "%"
    )
    targets.below("sign-up p99 latency", signup.p99_ms, 100, " ms")
    accepted = signup.statuses[202]
    lost = f", {signup.socket_errors:,} socket errors" if signup.socket_errors else ""
    targets.check(
        "every sign-up answered 202",
        accepted == signup.requests and not signup.socket_errors,
        f"{accepted:,} of {signup.requests:,}{lost}",
        "all",
    )
    targets.check(
        "every accepted sign-up gets one confirmation",
        confirmations.complete,
        f"{confirmations.delivered:,} of {confirmations.recorded:,}",
        "all, once",
    )
    targets.below("confirmation latency p99", p99, 1, " s")
    return targets.print(f"Targets, {STACKS[args.stack]}")
