"""Huey tasks: deliver one message after the caller's transaction commits, and every minute the sweep
that releases quiet-hour holds and retries due messages (the same service as ``manage.py notify_send_due``)."""

from __future__ import annotations

from datetime import datetime

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from meiye.notify.services import message_deliver, notify_send_due


@db_task()
def message_deliver_task(message_id: int, now: datetime | None = None) -> None:
    message_deliver(message_id=message_id, now=now)


@db_periodic_task(crontab(minute="*"))
def notify_send_due_task() -> None:
    notify_send_due()
