"""Retention of idempotency records: ``idempotency_purge``, its command and its daily task."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from huey.api import TaskWrapper

from meiye.core import idempotency as core_idempotency
from meiye.core.idempotency import idempotency_cutoff, idempotency_purge
from meiye.core.models import IdempotencyRecord
from meiye.core.tasks import idempotency_purge_task


def _record(org, key: str, created: datetime | None = None) -> IdempotencyRecord:
    core_idempotency.store(
        organisation_id=org.pk, key=key, scope="test", request_hash="h" * 64, status_code=200, response={"k": key}
    )
    record = IdempotencyRecord.objects.get(organisation_id=org.pk, key=key)
    if created is not None:
        IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=created)
    return record


def _at(text: str) -> datetime:
    """A moment in TIME_ZONE (Asia/Shanghai)."""
    return timezone.make_aware(datetime.fromisoformat(text))


def _keys() -> list[str]:
    return list(IdempotencyRecord.objects.order_by("key").values_list("key", flat=True))


def test_default_retention_is_30_days_from_midnight_in_the_time_zone():
    assert idempotency_cutoff(today=date(2026, 12, 31)) == _at("2026-12-01T00:00:00")
    assert idempotency_cutoff(today=date(2026, 12, 31), retention_days=7) == _at("2026-12-24T00:00:00")


@pytest.mark.parametrize("days", [0, -1])
def test_a_retention_below_one_day_is_refused(days):
    with pytest.raises(ValueError, match="MEIYE_IDEMPOTENCY_RETENTION_DAYS"):
        idempotency_cutoff(today=date(2026, 12, 31), retention_days=days)


def test_purge_deletes_what_was_created_before_the_cutoff_only(org):
    _record(org, "a-old", _at("2026-11-30T23:59:59"))
    _record(org, "b-edge", _at("2026-12-01T00:00:00"))
    _record(org, "c-new", _at("2026-12-30T12:00:00"))

    result = idempotency_purge(today=date(2026, 12, 31))

    assert (result.matched, result.deleted, result.dry_run) == (1, 1, False)
    assert result.cutoff == _at("2026-12-01T00:00:00")
    assert _keys() == ["b-edge", "c-new"]


def test_a_record_of_today_goes_on_day_31_not_day_30(org):
    _record(org, "today")
    today = timezone.localdate()

    assert idempotency_purge(today=today + timedelta(days=30)).deleted == 0
    assert idempotency_purge(today=today + timedelta(days=31)).deleted == 1
    assert _keys() == []


@override_settings(MEIYE_IDEMPOTENCY_RETENTION_DAYS=7)
def test_the_retention_setting_is_read(org):
    _record(org, "eight-days", _at("2026-12-23T10:00:00"))
    _record(org, "seven-days", _at("2026-12-24T10:00:00"))

    assert idempotency_purge(today=date(2026, 12, 31)).deleted == 1
    assert _keys() == ["seven-days"]


def test_dry_run_counts_and_deletes_nothing(org):
    for n in range(3):
        _record(org, f"old-{n}", _at("2026-10-01T08:00:00"))

    result = idempotency_purge(today=date(2026, 12, 31), dry_run=True)

    assert (result.matched, result.deleted, result.dry_run) == (3, 0, True)
    assert IdempotencyRecord.objects.count() == 3


def test_purge_works_in_batches_and_reports_each(org):
    for n in range(5):
        _record(org, f"old-{n}", _at("2026-10-01T08:00:00"))
    _record(org, "new", _at("2026-12-30T08:00:00"))
    batches: list[int] = []

    result = idempotency_purge(today=date(2026, 12, 31), batch_size=2, progress=batches.append)

    assert batches == [2, 2, 1]
    assert result.deleted == 5
    assert _keys() == ["new"]


def test_the_table_has_no_append_only_trigger(db):
    """Deleting is a plain DELETE: no trigger to pass (erasure also UPDATEs these rows). The append-only
    tables keep their triggers: nothing here touches them."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'core_idempotencyrecord'"
            )
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'core_idempotencyrecord'::regclass AND NOT tgisinternal"
            )
        assert cursor.fetchall() == []
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_auditlog'")
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_auditlog'::regclass AND NOT tgisinternal"
            )
        assert cursor.fetchall() != []


# --- the command and the task -------------------------------------------------------------------------------------------


def test_command_with_a_date(org):
    _record(org, "old", _at("2026-11-15T09:00:00"))
    _record(org, "new", _at("2026-12-15T09:00:00"))
    out = io.StringIO()

    call_command("idempotency_purge", "--date", "2026-12-31", stdout=out, stderr=io.StringIO())

    assert out.getvalue().strip() == (
        "idempotency_purge 2026-12-31: 1 record(s) created before 2026-12-01T00:00:00+08:00 deleted"
    )
    assert _keys() == ["new"]


def test_command_dry_run_deletes_nothing(org):
    _record(org, "old", _at("2026-11-15T09:00:00"))
    out = io.StringIO()

    call_command("idempotency_purge", "--date", "2026-12-31", "--dry-run", stdout=out, stderr=io.StringIO())

    assert "1 record(s) created before 2026-12-01T00:00:00+08:00 would be deleted (dry run)" in out.getvalue()
    assert _keys() == ["old"]


@pytest.mark.parametrize("args", [["--date", "2026-13-01"], ["--batch-size", "0"]])
def test_command_refuses_bad_arguments(db, args):
    with pytest.raises(CommandError):
        call_command("idempotency_purge", *args, stdout=io.StringIO(), stderr=io.StringIO())


def test_daily_task_runs_the_same_purge(org):
    _record(org, "old", timezone.now() - timedelta(days=40))
    _record(org, "new")

    assert isinstance(idempotency_purge_task, TaskWrapper)
    assert idempotency_purge_task.call_local() == 1
    assert _keys() == ["new"]
    # scheduled once a day, at 03:15
    task = idempotency_purge_task.task_class()
    runs = [
        datetime(2026, 12, 31, 0, 0) + timedelta(minutes=m)
        for m in range(24 * 60)
        if task.validate_datetime(datetime(2026, 12, 31, 0, 0) + timedelta(minutes=m))
    ]
    assert runs == [datetime(2026, 12, 31, 3, 15)]
