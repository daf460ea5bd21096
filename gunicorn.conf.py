"""gunicorn's settings, read from the directory it starts in (scripts/run.sh starts it here).

Rate-limit counters kept in memory, the embedded default, belong to one process: with
two processes every limit would be doubled. So on that default one process serves,
with threads; with a shared store (a Redis broker or RATELIMIT_STORAGE_URI) there are
WEB_WORKERS processes, each with WEB_THREADS threads.
"""

import os

from config import rate_limit_storage

counters_shared = not rate_limit_storage().startswith("memory://")
workers = int(os.environ.get("WEB_WORKERS", "2")) if counters_shared else 1
threads = int(os.environ.get("WEB_THREADS", "8"))
worker_class = "gthread"
