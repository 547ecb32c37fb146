"""Helpers of the review tests that race two transactions on PostgreSQL (fixtures are in conftest.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.db import connection

from meiye.core.money import Money
from meiye.sales.services import TenderInput

WECHAT_600 = [TenderInput(kind="wechat", amount=Money.parse("600.00"))]


def wait_for_a_blocked_backend(seconds: float = 5.0, *, backends: int = 1) -> bool:
    """Until ``backends`` other transactions wait on a lock (pg_locks is live, not a per-transaction snapshot);
    False if they did not within ``seconds``."""
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0] >= backends:
                return True
            time.sleep(0.02)
    return False


def start(outcomes: dict[str, str], name: str, job: Callable[[], object]) -> threading.Thread:
    """Run ``job`` in a new thread named ``name``; ``outcomes[name]`` becomes "completed" or the error."""

    def run() -> None:
        try:
            job()
            outcomes[name] = "completed"
        except Exception as error:
            outcomes[name] = repr(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def at_once(**jobs: Callable[[], object]) -> dict[str, str]:
    """Run each job in its own thread (named as its key), all at once: "completed" or the error, by key."""
    outcomes: dict[str, str] = {}
    threads = [start(outcomes, name, job) for name, job in jobs.items()]
    for thread in threads:
        thread.join(30)
    return outcomes
