#!/usr/bin/env bash
# Installs and runs the service on the embedded default: the web app on
# http://127.0.0.1:${PORT:-5000} and a Celery worker (with the beat scheduler),
# SQLite and a SQLite broker in instance/, and mail in the outbox at /outbox/.
# Environment variables (docs/configuration.md) switch any part to a real server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh requirements.txt
export PATH="$PWD/.venv/bin:$PATH"
export BASE_URL=${BASE_URL:-http://127.0.0.1:${PORT:-5000}}
mkdir -p instance

flask --app newsletter db upgrade
celery -A workers worker --beat --schedule instance/celerybeat-schedule \
    --loglevel "${LOG_LEVEL:-info}" &
worker=$!
trap 'kill -TERM "$worker" 2>/dev/null; wait "$worker" 2>/dev/null' EXIT
trap 'exit 130' INT TERM

echo "Service on http://127.0.0.1:${PORT:-5000}/ (outbox: /outbox/). Ctrl-C stops web and worker."
gunicorn --bind "127.0.0.1:${PORT:-5000}" --workers "${WEB_WORKERS:-2}" \
    --access-logfile - 'newsletter:create_app()'
