"""The embedded task queue's SQLite storage with ``synchronous=NORMAL``, as the main database runs.

Huey's ``SqliteStorage`` keeps SQLite's default ``synchronous=FULL``: in WAL mode every enqueue then waits for
an fsync of the queue file (0.37 ms against 0.04 ms, measured on the benchmark machine), and the checkout
enqueues the member's charge message after every stored-value payment. NORMAL is what the main database uses
(config/settings/base.py): the file stays consistent after a power cut, and at most the last transactions
before it are lost — for the queue, a message not yet sent, which the member can still read in her history.
Huey's own switch (``fsync``) offers only FULL or OFF.
"""

from __future__ import annotations

import sqlite3

from huey import Huey
from huey.storage import SqliteStorage


class NormalSyncSqliteStorage(SqliteStorage):
    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn


class SqliteHuey(Huey):
    """``huey.SqliteHuey`` with ``NormalSyncSqliteStorage`` (settings: ``HUEY["huey_class"]``)."""

    storage_class = NormalSyncSqliteStorage
