#!/usr/bin/env bash
# Installs and runs every test: lint, types, the docs site built strictly, then the suite on the embedded default
# (SQLite + SQLite broker), then again on PostgreSQL + Redis, browser tests
# (headless Chromium) included. Those two are
# started if they are installed but down; on a machine without them that half is
# skipped with a notice, except under CI (CI=true), where it must run.
# Extra arguments go to pytest, e.g. scripts/test.sh -k unsubscribe
#
# scripts/test.sh --fast: ruff, then only the tests marked neither browser, worker nor
# slow (see pyproject's markers), on SQLite, spread over the CPUs: the loop to run
# while working (under a minute). The full run stays the one that counts.
set -euo pipefail
cd "$(dirname "$0")/.."
FAST=false
if [ "${1:-}" = "--fast" ]; then
    FAST=true
    shift
fi
scripts/install.sh requirements-dev.txt
export PATH="$PWD/.venv/bin:$PATH"

if [ "$FAST" = true ]; then
    echo "== ruff"
    ruff check .
    ruff format --check .
    echo "== fast tests: SQLite, no browser, no worker, nothing slow"
    exec pytest -n auto -q -m "not browser and not worker and not slow" "$@"
fi

POSTGRES_URL=${TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/newsletter_test}
REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}

# The browser tests drive Debian's Chromium (Playwright cannot download its own
# here). Under CI it is installed when missing; elsewhere those tests skip.
if [ "${CI:-}" = "true" ] && ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] \
        && command -v apt-get >/dev/null; then
    echo "== installing Chromium for the browser tests"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq chromium >/dev/null || echo "NOTICE: Chromium could not be installed."
fi

# Postfix brings smtp-sink (a pipelining SMTP sink in C) for one test and for the
# benchmark smoke run. Under CI it is installed when missing; elsewhere that test skips.
if [ "${CI:-}" = "true" ] && [ ! -x /usr/sbin/smtp-sink ] && [ "$(id -u)" = 0 ] \
        && command -v apt-get >/dev/null; then
    echo "== installing Postfix for smtp-sink"
    apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null \
        || echo "NOTICE: Postfix could not be installed."
fi

echo "== ruff"
ruff check .
ruff format --check .

# pyproject's [tool.mypy]: strict on sending, mail and bounces, the default elsewhere.
echo "== mypy"
mypy

# Any broken link, missing page or setting without its why-comment fails the build.
echo "== docs: mkdocs build --strict"
docs_site=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet --site-dir "$docs_site"
rm -rf "$docs_site"

# Each stack's tests are spread over pytest-xdist workers: every test still runs on
# both. Each worker has its own databases, broker queues, ports and PostgreSQL schema.
# The tests mostly wait (on SMTP servers, Celery workers, the broker), so four keep two
# CPUs busy: 4 min 26 s for the SQLite half here, against 7 min 42 s with two.
# TEST_WORKERS=0 runs them in one process.
WORKERS=(-n "${TEST_WORKERS:-4}")

echo "== tests on the embedded default: SQLite, SQLite broker"
pytest "${WORKERS[@]}" "$@"

echo "== tests on PostgreSQL + Redis"
if python scripts/services.py "$POSTGRES_URL" "$REDIS_URL"; then
    TEST_DATABASE_URL=$POSTGRES_URL TEST_BROKER_URL=$REDIS_URL pytest "${WORKERS[@]}" "$@"
elif [ "${CI:-}" = "true" ]; then
    echo "ERROR: PostgreSQL and Redis are required under CI and could not be reached." >&2
    exit 1
else
    echo
    echo "NOTICE: PostgreSQL + Redis not available here: that half of the suite was SKIPPED."
    echo "        Set TEST_POSTGRES_URL / TEST_REDIS_URL, or install both, to run it."
fi

# Proves the benchmark still runs, end to end; figures this small mean little, and no
# speed is asserted. It skips PostgreSQL + Redis by itself, with a notice, where they are missing.
echo "== benchmark smoke run: 1,000 subscribers"
python -m bench fanout --subscribers 1000 --wire-messages 1000 --tutorial-messages 100
