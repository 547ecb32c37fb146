"""Writes whose answer nobody waits for, sent to PostgreSQL together with the next statement that is waited for.

Every statement normally costs a round trip: the client sends it, the server wakes, runs it, answers, and the
client wakes. On this project's checkout the round trip — the socket calls and the two processes' wake-ups —
cost more CPU than most of the statements' own work (``docs/performance.md``, seventh pass). psycopg's
pipeline mode lets a client send statements without waiting for each answer; ``pipelined()`` uses it for the
writes whose result nobody reads at once, and for nothing else:

- Inside ``pipelined()``, every statement runs exactly as outside it — sent, answered, its rows and row
  count read, its error raised by the statement itself — **unless** it was sent by ``later(...)``: the
  hot paths' own writes (``meiye.core.db.fastwrite``, the ledger's balance update) whose answer is only a
  key to read back or a row count to check. Those are queued: they reach the server with the next statement
  that is waited for (or with ``settle()``), in the same network write, and the server runs them one after the
  other without waiting for the client.
- ``settle()`` (also at the end of the block) waits for every queued answer and hands each to its
  callback: the keys ``RETURNING`` gave are set on their objects then, the row count checked then. Code
  that reads such a key before ``settle()`` sees ``None``: only writes whose keys nobody reads before the
  block ends are queued with their keys (``insert_rows(..., keys_later=True)``).
- A queued write that fails raises its error at the next statement waited for, or at ``settle()``: later
  than it would outside the block, but inside it, so the transaction around it rolls back as before. The
  queued writes are the rows a checkout has already checked (a journal's entries, a balance the lock has
  read, the bill's lines and tenders): an error there is a broken invariant, not an answer a caller expects.
- After an error the pipeline is brought back in step before the next statement (as psycopg's own rollback
  does), so a caller that catches an error and rolls back to a savepoint works as it does outside the block;
  the callbacks of the writes that failed or were skipped with it do not run.
- psycopg has no server-side cursors in pipeline mode: in the block ``QuerySet.iterator()`` reads with a
  client-side cursor (``DISABLE_SERVER_SIDE_CURSORS`` for the block's duration), all rows at once.

On SQLite, outside a transaction, with ``MEIYE_PG_PIPELINE=0`` and outside any ``pipelined()`` block, ``later``
runs each write at once: the same statements, in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

_STATE = "_meiye_pipeline"


@dataclass
class _Pipeline:
    raw: Any  # psycopg's Pipeline
    connection: Any  # Django's connection
    # (cursor, callback, whether the callback must run before COMMIT: a check that may raise)
    waiting: list[tuple[Any, Callable[[Any], None] | None, bool]] = field(default_factory=list)
    queue_next: bool = False  # set by ``later`` for the one statement it sends


def _active(connection: Any) -> _Pipeline | None:
    return getattr(connection, _STATE, None)


@contextmanager
def pipelined(using: str = DEFAULT_DB_ALIAS, *, commit: bool = False) -> Iterator[None]:
    """Queue the ``later`` writes of the block (see the module doc); their answers are in, and their callbacks
    have run, when it ends. Only inside a transaction (outside one each statement commits on its own, and the
    queued writes would not be part of anything); a nested block is part of the outer one, which settles.

    ``commit``: the block ends its transaction — ``with transaction.atomic(), pipelined(commit=True):``, with
    nothing after the block inside the ``atomic``. When the block ends without an error, in the outermost
    ``atomic`` and with no rollback asked for, the COMMIT is queued behind the block's last writes, so they and
    the COMMIT reach the server in one round trip, and the locks the transaction holds are released without
    waiting for this process again. Callbacks that check an answer (``later(..., before_commit=True)``) run
    before: if one is still waiting, the block syncs first. Callbacks that only set keys run after the COMMIT.
    The ``atomic`` then finds the transaction committed and runs its ``on_commit`` hooks as usual; an error of
    a queued write or of the COMMIT is raised by the block, and the ``atomic`` rolls back."""
    connection = connections[using]
    if (
        connection.vendor != "postgresql"
        or not connection.in_atomic_block
        or _active(connection) is not None
        or getattr(settings, "MEIYE_PG_PIPELINE", "1") != "1"
    ):
        yield
        return
    state: _Pipeline | None = None
    # psycopg has no server-side (named) cursors in pipeline mode: ``QuerySet.iterator()`` reads its rows with a
    # client-side cursor in the block (all at once, as on SQLite), instead of failing.
    server_side = connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True
    try:
        with connection.wrap_database_errors:
            with connection.connection.pipeline() as raw:  # its end syncs: every answer is in after it
                state = _Pipeline(raw=raw, connection=connection)
                setattr(connection, _STATE, state)
                with connection.execute_wrapper(_in_step):
                    yield
                    if commit:
                        _queue_commit(state)
                setattr(connection, _STATE, None)
            _settle(state, answered=True)
    finally:
        setattr(connection, _STATE, None)
        connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = server_side
        if state is not None:
            for cursor, _, _ in state.waiting:
                cursor.close()


def _queue_commit(state: _Pipeline) -> None:
    """``pipelined(commit=True)``'s end: queue the COMMIT behind the last writes, if this block may end the
    transaction (the outermost ``atomic``, no rollback asked for), after the checks still waiting have run."""
    connection = state.connection
    if connection.needs_rollback or len(connection.atomic_blocks) != 1 or connection.savepoint_ids:
        return
    if any(then is not None and before_commit for _, then, before_commit in state.waiting):
        _settle(state)
    later(connection, connection.cursor(), "COMMIT", None, before_commit=False)


def later(
    connection: Any,
    cursor: Any,
    sql: str,
    params: Any,
    then: Callable[[Any], None] | None = None,
    *,
    before_commit: bool = True,
) -> None:
    """Run ``sql`` on ``cursor`` (a cursor of ``connection`` the caller hands over: it is closed here), and
    ``then(cursor)`` once its answer is in: at once outside a pipeline, at ``settle()`` inside one.
    ``before_commit=False``: ``then`` only sets keys (it never raises), so it may run after a COMMIT that
    ``pipelined(commit=True)`` queued behind this write; a check must run before (the default)."""
    state = _active(connection)
    if state is None:
        try:
            cursor.execute(sql, params)
            if then is not None:
                then(cursor)
        finally:
            cursor.close()
        return
    state.queue_next = True
    try:
        cursor.execute(sql, params)
    except BaseException:
        cursor.close()
        raise
    finally:
        state.queue_next = False
    state.waiting.append((cursor, then, before_commit))


def settle(using: str = DEFAULT_DB_ALIAS) -> None:
    """Wait for every queued write's answer and run its callback (keys, row counts). No round trip when the
    answers have come with a statement waited for since; nothing to do outside a pipeline."""
    state = _active(connections[using])
    if state is not None:
        with state.connection.wrap_database_errors:
            _settle(state)


def _settle(state: _Pipeline, *, answered: bool = False) -> None:
    """Run the callbacks of the queued writes, syncing first unless every answer is in (``answered``: the
    pipeline has ended, which syncs)."""
    if not state.waiting:
        return
    if not answered and any(cursor.cursor.pgresult is None for cursor, _, _ in state.waiting):
        state.raw.sync()
    waiting, state.waiting = state.waiting, []
    try:
        for cursor, then, _ in waiting:
            # No answer: the write failed, or the server skipped it after another's failure. That error has been
            # raised already; a caller that caught it has rolled back to a savepoint, and this write with it.
            if then is not None and cursor.cursor.pgresult is not None:
                then(cursor)
    finally:
        for cursor, _, _ in waiting:
            cursor.close()


def _in_step(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """The execute wrapper of a pipelined block: a statement not sent by ``later`` is waited for (its rows,
    row count and error are there when ``execute`` returns, as outside a pipeline)."""
    state = _active(context["connection"])
    if state is None:  # the wrapper outlived its block (a cursor kept past it): nothing to keep in step
        return execute(sql, params, many, context)
    queued, state.queue_next = state.queue_next, False
    if not queued:
        _recover(state)
    result = execute(sql, params, many, context)
    if not queued:
        with state.connection.wrap_database_errors:
            state.raw.sync()
    return result


def _recover(state: _Pipeline) -> None:
    """After an error the server skips every statement until the client syncs: sync first (the error was
    raised already), so a rollback to a savepoint, or the statements after it, run."""
    from psycopg import pq

    if state.connection.connection.pgconn.pipeline_status == pq.PipelineStatus.ABORTED:
        with suppress(Exception):  # the error this reports was raised to the caller already
            state.raw.sync()
