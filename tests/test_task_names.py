"""Task names are written once (newsletter/core/task_names.py): the app publishes them
and beat schedules them without importing the workers, so each must be a task a worker
registers."""

import workers.tasks  # noqa: F401  (registers the workers' tasks)
from newsletter.core import task_names


def test_every_task_name_is_a_task_the_worker_registers_and_beat_names_no_other(app):
    celery = app.extensions["celery"]
    names = {value for key, value in vars(task_names).items() if key.isupper()}
    ours = {name for name in celery.tasks if name.startswith("newsletter.")}
    assert ours == names
    scheduled = {entry["task"] for entry in celery.conf.beat_schedule.values()}
    assert scheduled <= names
