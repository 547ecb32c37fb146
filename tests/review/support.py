"""Helpers of the review tests that race two transactions on PostgreSQL (fixtures are in conftest.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.db import connection

from meiye.core.money import Money
from meiye.sales.services import TenderInput

WECHAT_600 = [TenderInput(kind="wechat", amount=Money.parse("600.00"))]


def wait_for_a_blocked_backend(seconds: float = 5.0) -> bool:
    """Until another transaction waits on a lock (pg_locks is live, not a per-transaction snapshot); False if
    none did within ``seconds``."""
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


def at_once(**jobs: Callable[[], object]) -> dict[str, str]:
    """Run each job in its own thread (named as its key), all at once: "completed" or the error, by key."""
    outcomes: dict[str, str] = {}

    def run(name: str, job: Callable[[], object]) -> None:
        try:
            job()
            outcomes[name] = "completed"
        except Exception as error:
            outcomes[name] = repr(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item, name=item[0]) for item in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes
