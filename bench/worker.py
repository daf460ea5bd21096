"""The Celery app the benchmark's workers run: the service's own app, plus a
count of the database statements each worker process makes, and the tutorial
pattern's task for the baseline.

    celery -A bench.worker worker
"""

import json
import os
from collections import Counter
from pathlib import Path

from celery.signals import task_postrun, worker_ready
from sqlalchemy import event

from newsletter import create_app
from newsletter.extensions import db

flask_app = create_app()
celery = flask_app.extensions["celery"]

import bench.tutorial  # noqa: E402, F401  registers the baseline's task

STATS_DIR = Path(os.environ["BENCH_STATS_DIR"])
counts = Counter()

with flask_app.app_context():
    engine = db.engine


@event.listens_for(engine, "before_cursor_execute")
def count_statement(conn, cursor, statement, parameters, context, executemany):
    counts["statements"] += 1


@event.listens_for(engine, "commit")
def count_commit(conn):
    counts["commits"] += 1


@task_postrun.connect
def save_counts(task=None, **_):
    counts[f"task:{task.name}"] += 1
    path = STATS_DIR / f"{os.getpid()}.json"
    path.with_suffix(".tmp").write_text(json.dumps(counts))
    path.with_suffix(".tmp").replace(path)


@worker_ready.connect
def say_ready(**_):
    (STATS_DIR / "ready").write_text(str(os.getpid()))
