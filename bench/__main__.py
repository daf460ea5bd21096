"""The benchmark: ``python -m bench fanout``, ``signup``, ``admin`` and ``clicks``.

Prints tables, and each result as a ratio against baselines measured in the
same run on the same machine. Not part of the test suite's timing.
"""

import argparse
import sys


def add_fanout(commands):
    fanout = commands.add_parser("fanout", help="one digest to N subscribers, beside baselines")
    fanout.add_argument(
        "--subscribers",
        default="100000",
        help="how many; a comma-separated list (e.g. 10000,100000) also compares memory",
    )
    fanout.add_argument(
        "--stack",
        choices=["embedded", "postgres", "both"],
        default="both",
        help="embedded default (SQLite), PostgreSQL + Redis, or both (default)",
    )
    fanout.add_argument(
        "--workers", type=int, default=4, help="worker processes (prefork; each waits on the relay)"
    )
    fanout.add_argument("--wire-messages", type=int, default=20000, help="the wire's sample")
    fanout.add_argument(
        "--tutorial-messages", type=int, default=2000, help="the tutorial's sample (0: skip)"
    )
    fanout.add_argument(
        "--tracking",
        choices=["off", "counts", "per-reader"],
        default="off",
        help="the newsletter's engagement tracking: its digest's links and pixel signed per copy",
    )
    fanout.add_argument(
        "--aiosmtpd", action="store_true", help="use the aiosmtpd sink even if smtp-sink exists"
    )


def add_clicks(commands):
    clicks = commands.add_parser(
        "clicks", help="a tracked digest's links under load, beside a bare redirect"
    )
    clicks.add_argument("--seconds", type=int, default=20)
    clicks.add_argument("--clients", type=int, default=16, help="concurrent connections")
    clicks.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    clicks.add_argument(
        "--readers",
        dest="subscribers",
        type=int,
        default=5000,
        help="copies the clicks spread over",
    )
    clicks.add_argument(
        "--tracking",
        choices=["counts", "per-reader"],
        default="counts",
        help="the newsletter's engagement tracking",
    )
    clicks.add_argument("--stack", choices=["embedded", "postgres", "both"], default="both")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    add_fanout(commands)

    signup = commands.add_parser("signup", help="sign-ups under load, and confirmation latency")
    signup.add_argument("--seconds", type=int, default=20)
    signup.add_argument("--clients", type=int, default=16, help="concurrent connections")
    signup.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    signup.add_argument("--latency-samples", type=int, default=100)
    signup.add_argument("--stack", choices=["embedded", "postgres"], default="embedded")

    admin = commands.add_parser("admin", help="the admin's subscriber pages on a large list")
    admin.add_argument("--subscribers", type=int, default=200_000)
    admin.add_argument("--repeats", type=int, default=9, help="fetches of each page")
    admin.add_argument("--stack", choices=["embedded", "postgres"], default="postgres")

    add_clicks(commands)

    args = parser.parse_args(argv)
    if args.command == "fanout":
        from bench import fanout

        return fanout.main(args)
    if args.command == "clicks":
        from bench import clicks

        return clicks.main(args)
    if args.command == "admin":
        from bench import admin

        return admin.main(args)
    from bench import signup

    return signup.main(args)


if __name__ == "__main__":
    sys.exit(main())
