"""Django's SQLite backend, with write transactions queued on an OS file lock.

SQLite lets one writer in at a time. A second ``BEGIN IMMEDIATE`` does not wait in line: it sleeps and
retries in SQLite's busy handler (1, 2, 5, 10 … up to 100 ms at a time), so under several concurrent
cashiers a writer can keep losing the race for seconds while the lock is free most of the time. Here every
write transaction first takes an exclusive ``flock`` on ``<database>.writer-lock``; the kernel hands that
lock to waiters as soon as it is released, one at a time, across threads and gunicorn processes alike. The
database's own lock still guards correctness; the file lock only turns polling into a queue.

Reads outside a transaction and in-memory databases are untouched. See docs/adr/0005-sqlite-writer-queue.md.
"""

from __future__ import annotations

import fcntl
import os
from typing import Any

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    _writer_fd: int | None = None
    _writer_locked: bool = False

    def _lock_path(self) -> str | None:
        name = str(self.settings_dict.get("NAME") or "")
        if not name or name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
            return None
        return f"{name}.writer-lock"

    def _writer_acquire(self) -> None:
        if self._writer_locked:
            return
        if self._writer_fd is None:
            path = self._lock_path()
            if path is None:
                return
            self._writer_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._writer_fd, fcntl.LOCK_EX)  # releases the GIL while it waits
        self._writer_locked = True

    def _writer_release(self) -> None:
        if self._writer_locked and self._writer_fd is not None:
            fcntl.flock(self._writer_fd, fcntl.LOCK_UN)
        self._writer_locked = False

    def _start_transaction_under_autocommit(self) -> None:
        self._writer_acquire()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # django-stubs leaves the private hooks out
        except BaseException:
            self._writer_release()
            raise

    def _commit(self) -> Any:
        try:
            return super()._commit()  # type: ignore[misc]  # django-stubs leaves the private hooks out
        finally:
            self._writer_release()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()  # type: ignore[misc]  # django-stubs leaves the private hooks out
        finally:
            self._writer_release()

    def _close(self) -> Any:
        try:
            return super()._close()  # type: ignore[misc]  # django-stubs leaves the private hooks out
        finally:
            self._writer_release()
            if self._writer_fd is not None:
                os.close(self._writer_fd)
                self._writer_fd = None
