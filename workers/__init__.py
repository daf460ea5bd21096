"""Celery workers. ``celery -A workers worker`` finds the app in ``workers.celery``."""
