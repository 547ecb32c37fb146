"""Django's SQLite backend, with write transactions queued on an OS file lock.

SQLite lets one writer in at a time. A second ``BEGIN IMMEDIATE`` does not wait in line: it sleeps and
retries in SQLite's busy handler (1, 2, 5, 10 … up to 100 ms at a time), so under several concurrent
cashiers a writer can keep losing the race for seconds while the lock is free most of the time. Here every
write transaction first takes an exclusive ``flock`` on ``<database>.writer-lock``; the kernel hands that
lock to waiters as soon as it is released, one at a time, across threads and gunicorn processes alike. The
database's own lock still guards correctness; the file lock only turns polling into a queue.

Reads outside a transaction and in-memory databases are untouched. See docs/adr/0005-sqlite-writer-queue.md.

Also: the cursor keeps each statement's placeholder conversion (``SQLiteCursorWrapper``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from typing import Any

from django.db import OperationalError
from django.db.backends.sqlite3 import base


def _flock_quietly(fd: int) -> None:
    """Block until the exclusive lock is ours; an fd closed meanwhile (we gave up waiting) is not an error."""
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX)


# Django's SQLite cursor turns every statement's "%s" into "?" with a regular expression, each time it runs
# (5% of a checkout's CPU): the converted text is kept per statement text. Statements are few shapes (the ORM
# and the hot paths bind values as parameters); the cache starts over if it ever grows past the cap.
_QMARK_CACHE: dict[str, str] = {}
_QMARK_CACHE_MAX = 20_000


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    def convert_query(self, query: str, *, param_names: Any = None) -> str:
        if param_names is not None:
            return str(super().convert_query(query, param_names=param_names))
        found = _QMARK_CACHE.get(query)
        if found is None:
            found = str(super().convert_query(query))
            if len(_QMARK_CACHE) >= _QMARK_CACHE_MAX:
                _QMARK_CACHE.clear()
            _QMARK_CACHE[query] = found
        return found


class DatabaseWrapper(base.DatabaseWrapper):
    _writer_fd: int | None = None
    _writer_pid: int | None = None  # the process that opened the fd: a forked child opens its own
    _writer_locked: bool = False

    def create_cursor(self, name: Any = None) -> Any:
        return self.connection.cursor(factory=SQLiteCursorWrapper)

    def _lock_path(self) -> str | None:
        name = str(self.settings_dict.get("NAME") or "")
        if not name or name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
            return None
        return f"{name}.writer-lock"

    def _writer_acquire(self) -> None:
        """Wait for the file lock: first in the kernel's queue, blocking (fair, no polling); a holder that
        does not let go within the busy timeout is reported like SQLite would ("database is locked")."""
        if self._writer_locked:
            return
        if self._writer_fd is None or self._writer_pid != os.getpid():
            path = self._lock_path()
            if path is None:
                return
            self._writer_fd, self._writer_pid = os.open(path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
        try:
            fcntl.flock(self._writer_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._writer_wait(self._writer_fd)
        self._writer_locked = True

    def _writer_wait(self, fd: int) -> None:
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 20))
        waiter = threading.Thread(target=_flock_quietly, args=(fd,), daemon=True)
        waiter.start()  # a blocking flock releases the GIL; the thread lets us give up after the timeout
        waiter.join(timeout)
        if waiter.is_alive():
            # The waiter still queues on this fd; dropping the fd abandons its place (and any lock it gets).
            os.close(fd)
            self._writer_fd = None
            raise OperationalError(f"database is locked (no write lock within {timeout:g} s)")

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
