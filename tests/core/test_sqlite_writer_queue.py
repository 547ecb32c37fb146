"""The SQLite engine queues write transactions on a file lock (docs/adr/0005-sqlite-writer-queue.md)."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import pytest
from django.db import connection, connections, transaction

from meiye.core.models import IdempotencyRecord

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only")


@pytest.mark.django_db(transaction=True)
def test_writers_queue_one_after_another_and_none_fails():
    # given: 8 threads, each holding a write transaction open for 50 ms (longer than SQLite's first retries)
    spans: list[tuple[float, float]] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with transaction.atomic():
                started = time.perf_counter()
                IdempotencyRecord.objects.create(
                    organisation_id=0, key=uuid.uuid4().hex, scope="t", request_hash="0" * 64, response={}
                )
                time.sleep(0.05)
                spans.append((started, time.perf_counter()))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then: every writer committed, and no two write transactions overlapped
    assert errors == []
    assert IdempotencyRecord.objects.filter(scope="t").count() == 8
    spans.sort()
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(spans))


@pytest.mark.django_db(transaction=True)
def test_the_file_lock_is_released_by_commit_and_by_rollback():
    with transaction.atomic():
        assert connection._writer_locked  # type: ignore[attr-defined]
    assert not connection._writer_locked  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError), transaction.atomic():
        raise RuntimeError("rolled back")
    assert not connection._writer_locked  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)
def test_a_writer_that_never_lets_go_is_reported_after_the_timeout(settings):
    # given: another process-like holder of the file lock (an fd of its own) and a 0.3 s timeout
    import fcntl
    import os

    from django.db import OperationalError

    path = f"{connection.settings_dict['NAME']}.writer-lock"
    holder = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)
    options = connection.settings_dict.setdefault("OPTIONS", {})
    before = options.get("timeout")
    options["timeout"] = 0.3
    try:
        # when / then: the write transaction gives up like SQLite's busy timeout would
        with pytest.raises(OperationalError, match="database is locked"), transaction.atomic():
            pass
        assert not connection._writer_locked  # type: ignore[attr-defined]
    finally:
        options["timeout"] = before
        fcntl.flock(holder, fcntl.LOCK_UN)
        os.close(holder)
    # and once the holder is gone, writing works again
    with transaction.atomic():
        IdempotencyRecord.objects.create(organisation_id=0, key="after", scope="t", request_hash="0" * 64, response={})
