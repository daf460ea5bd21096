"""The one Celery app, made from the Flask app (Flask's "Background Tasks with Celery")."""

from celery import Celery, Task
from celery import current_app as current_celery
from celery.signals import worker_process_init
from flask import has_app_context

from newsletter.core import task_names
from newsletter.extensions import db

SWEEP_INTERVAL_SECONDS = 30.0


def celery_init_app(flask_app):
    class FlaskTask(Task):
        """Runs each call in an app context of its own, whose teardown removes the session."""

        def __call__(self, *args, **kwargs):
            if has_app_context():
                return self.run(*args, **kwargs)
            with flask_app.app_context():
                return self.run(*args, **kwargs)

    # The worker side's tasks register when a worker imports them; the web side
    # publishes them by name and never imports them.
    celery = Celery(flask_app.name, task_cls=FlaskTask, include=["workers.tasks"])
    celery.config_from_object(celery_settings(flask_app.config))
    celery.flask_app = flask_app
    celery.set_default()
    flask_app.extensions["celery"] = celery
    return celery


@worker_process_init.connect
def dispose_inherited_engine(**_):
    """A forked child must not share its parent's database connections."""
    with current_celery.flask_app.app_context():
        db.engine.dispose(close=False)


def celery_settings(config):
    settings = {
        "broker_url": config["CELERY_BROKER_URL"],
        "broker_transport": config.get("CELERY_BROKER_TRANSPORT"),
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 3,
        # A request that publishes a hint must not hang on a dead broker.
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "beat_schedule": {
            "sweep": {
                "task": task_names.SWEEP,
                "schedule": SWEEP_INTERVAL_SECONDS,
            },
            "periodic-digest": {
                "task": task_names.RUN_PERIODIC_DIGEST,
                "schedule": 300.0,
            },
            "fold-old-deliveries": {
                "task": task_names.FOLD_OLD_DELIVERIES,
                "schedule": 3600.0,
            },
            # Anonymous events go within the hour of being made (engagement/figures.py).
            "fold-engagement": {
                "task": task_names.FOLD_ENGAGEMENT,
                "schedule": 600.0,
            },
            "drop-old-ips": {
                "task": task_names.DROP_OLD_IPS,
                "schedule": 3600.0,
            },
            "drop-old-audit": {
                "task": task_names.DROP_OLD_AUDIT,
                "schedule": 3600.0,
            },
            "drop-old-inbound": {
                "task": task_names.DROP_OLD_INBOUND,
                "schedule": 3600.0,
            },
            "import-feed": {
                "task": task_names.IMPORT_FEED,
                "schedule": float(config["FEED_POLL_SECONDS"]),
            },
        },
    }
    if config.get("CELERY_TASK_DEFAULT_QUEUE"):
        settings["task_default_queue"] = config["CELERY_TASK_DEFAULT_QUEUE"]
    return settings
