"""meiye.core.db.pipeline: writes queued in a pipelined block reach the database with the next statement waited for,
their keys and row counts are checked when the block settles, and every other statement behaves as outside it.

On SQLite (and with ``MEIYE_PG_PIPELINE=0``) nothing is queued: the same tests check that the same calls give the
same rows at once."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from meiye.audit.models import AuditLog
from meiye.core.db import pipeline
from meiye.core.db.fastwrite import insert_rows, insert_values, update_row
from meiye.core.db.pipeline import pipelined, settle
from meiye.core.models import IdempotencyRecord
from meiye.org.models import Store
from tests.other_connection import committed_values

ON_POSTGRESQL = connection.vendor == "postgresql"


def _record(org: Any, key: str) -> IdempotencyRecord:
    return IdempotencyRecord(organisation_id=org.pk, key=key, scope="t", request_hash="h", status_code=201, response={})


def test_queued_rows_are_written_and_get_their_keys_when_the_block_settles(org):
    rows = [AuditLog(organisation=org, action="t.pipelined", detail={"n": n}) for n in range(3)]

    with pipelined():
        insert_rows(rows, keys_later=True)
        # then: on PostgreSQL the INSERT is queued, so its keys are not there yet
        assert all(row.pk is None for row in rows) is ON_POSTGRESQL
        settle()
        assert all(row.pk is not None for row in rows)

    assert sorted(AuditLog.objects.filter(action="t.pipelined").values_list("pk", flat=True)) == sorted(
        row.pk for row in rows
    )
    assert all(not row._state.adding for row in rows)


_AUDIT_COLUMNS = ["organisation_id", "action", "object_type", "object_id", "object_repr", "detail", "at"]


def test_a_statement_waited_for_sees_the_writes_queued_before_it_and_gets_its_own_row_count(org, store1):
    with pipelined():
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        insert_values(AuditLog, _AUDIT_COLUMNS, [(org.pk, "t.q", "", "", "", "{}", now)])
        # when: the ORM reads and updates in the same block
        seen = AuditLog.objects.filter(action="t.q").count()
        updated = Store.objects.filter(pk=store1.pk).update(name="改名")
        missed = Store.objects.filter(pk=-1).update(name="none")

    # then: each answer is the one it would be outside a pipeline
    assert (seen, updated, missed) == (1, 1, 0)
    assert Store.objects.get(pk=store1.pk).name == "改名"


def test_the_keys_of_the_rows_queued_in_several_statements_follow_their_rows(org):
    rows = [AuditLog(organisation=org, action=f"t.{n}") for n in range(5)]

    with pipelined():
        insert_rows(rows[:2], keys_later=True)
        insert_rows(rows[2:], keys_later=True)

    assert {row.pk: row.action for row in rows} == dict(
        AuditLog.objects.filter(pk__in=[row.pk for row in rows]).values_list("pk", "action")
    )


def test_an_update_of_a_missing_row_raises_by_the_end_of_the_block(org, store1):
    gone = Store(pk=store1.pk + 10_000, organisation=org, code="gone", name="gone")

    with pytest.raises(Store.DoesNotExist), pipelined():
        update_row(gone, ["name"])


def test_a_queued_write_that_fails_raises_the_database_error_in_the_block(org):
    insert_rows([_record(org, "k-taken")])

    # when: the same key is queued again (unique per organisation and key)
    with pytest.raises(IntegrityError), transaction.atomic(), pipelined():
        insert_rows([_record(org, "k-new")], keys_later=True)
        insert_rows([_record(org, "k-taken")], keys_later=True)

    # then: the savepoint rolled back the whole block, and the connection is usable
    assert list(IdempotencyRecord.objects.filter(organisation_id=org.pk).values_list("key", flat=True)) == ["k-taken"]


def test_an_error_caught_inside_the_block_leaves_a_savepoint_rollback_and_later_statements_working(org):
    insert_rows([_record(org, "k-1")])

    with pipelined():
        queued = AuditLog(organisation=org, action="t.kept")
        insert_rows([queued], keys_later=True)
        try:
            with transaction.atomic():
                IdempotencyRecord.objects.create(
                    organisation_id=org.pk, key="k-1", scope="t", request_hash="h", status_code=201, response={}
                )
        except IntegrityError:
            found = IdempotencyRecord.objects.filter(organisation_id=org.pk, key="k-1").count()
        insert_rows([_record(org, "k-2")], keys_later=True)

    assert found == 1
    assert AuditLog.objects.filter(pk=queued.pk, action="t.kept").exists()
    assert IdempotencyRecord.objects.filter(organisation_id=org.pk, key="k-2").exists()


def test_nothing_is_queued_with_the_setting_off(org, settings):
    settings.MEIYE_PG_PIPELINE = "0"
    row = AuditLog(organisation=org, action="t.now")

    with pipelined():
        insert_rows([row], keys_later=True)
        assert row.pk is not None
        assert pipeline._active(connection) is None


def test_nested_blocks_are_one_block_settled_by_the_outer_one(org):
    rows = [AuditLog(organisation=org, action="t.outer"), AuditLog(organisation=org, action="t.inner")]

    with pipelined():
        insert_rows(rows[:1], keys_later=True)
        with pipelined():
            insert_rows(rows[1:], keys_later=True)
        assert (rows[1].pk is None) is ON_POSTGRESQL

    assert all(row.pk is not None for row in rows)


def test_an_unknown_pipeline_setting_stops_the_process_naming_it():
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "MEIYE_PG_PIPELINE": "yes"},
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0
    assert "MEIYE_PG_PIPELINE" in result.stderr and "只能是 1 或 0" in result.stderr


# --- pipelined(commit=True): the COMMIT queued behind the last writes -------------------------------------------


def _committed_keys(keys: list[str]) -> set[str]:
    """The keys of the records another connection sees (what is committed)."""
    return committed_values(IdempotencyRecord, "key", keys)


@pytest.mark.django_db(transaction=True)
def test_the_commit_travels_with_the_last_writes_and_the_atomic_block_ends_as_usual(org):
    rows = [_record(org, "c-1"), _record(org, "c-2")]
    hooks: list[str] = []

    with transaction.atomic(), pipelined(commit=True):
        insert_rows(rows, keys_later=True)
        transaction.on_commit(lambda: hooks.append("ran"))
        if ON_POSTGRESQL:
            assert pipeline._active(connection) is not None

    # then: committed (another connection sees the rows), the keys are set, the on_commit hook ran once, and the
    # connection is back in autocommit, out of pipeline mode
    assert _committed_keys(["c-1", "c-2"]) == {"c-1", "c-2"}
    assert all(row.pk is not None for row in rows)
    assert hooks == ["ran"]
    assert connection.get_autocommit()
    assert pipeline._active(connection) is None
    assert IdempotencyRecord.objects.filter(key__in=["c-1", "c-2"]).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_queued_write_that_fails_at_the_commit_raises_and_commits_nothing(org):
    IdempotencyRecord.objects.create(
        organisation_id=org.pk, key="taken", scope="t", request_hash="h", status_code=201, response={}
    )
    hooks: list[str] = []

    with pytest.raises(IntegrityError), transaction.atomic(), pipelined(commit=True):
        insert_rows([_record(org, "fresh")], keys_later=True)
        insert_rows([_record(org, "taken")], keys_later=True)  # the same (organisation, key)
        transaction.on_commit(lambda: hooks.append("ran"))

    assert _committed_keys(["fresh", "taken"]) == {"taken"}
    assert hooks == []
    assert connection.get_autocommit()
    assert IdempotencyRecord.objects.count() == 1  # the connection works again


@pytest.mark.django_db(transaction=True)
def test_a_check_still_waiting_runs_before_the_commit(org, store1):
    gone = Store(pk=store1.pk + 10_000, organisation=org, code="gone", name="gone")  # update_row's check fails

    with pytest.raises(Store.DoesNotExist), transaction.atomic(), pipelined(commit=True):
        insert_rows([_record(org, "before-check")], keys_later=True)
        update_row(gone, ["name"])

    assert _committed_keys(["before-check"]) == set()


@pytest.mark.django_db(transaction=True)
def test_a_rollback_asked_for_in_the_block_is_not_committed(org):
    with transaction.atomic(), pipelined(commit=True):
        insert_rows([_record(org, "rolled-back")], keys_later=True)
        transaction.set_rollback(True)

    assert _committed_keys(["rolled-back"]) == set()
    assert connection.get_autocommit()


@pytest.mark.django_db(transaction=True)
def test_inside_an_outer_transaction_the_block_commits_nothing(org):
    with pytest.raises(RuntimeError), transaction.atomic():
        with transaction.atomic(), pipelined(commit=True):
            insert_rows([_record(org, "inner")], keys_later=True)
        assert _committed_keys(["inner"]) == set()  # the outer transaction is still open
        raise RuntimeError("the outer transaction rolls back")

    assert not IdempotencyRecord.objects.filter(key="inner").exists()
