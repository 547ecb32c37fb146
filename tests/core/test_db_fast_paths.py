"""meiye.core.db.prepared and meiye.core.db.fastwrite: the hot path's compiled-once reads and writes give the
same rows as the ORM calls they replace."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models import Count, OuterRef, Subquery
from django.test.utils import CaptureQueriesContext

from meiye.audit.models import AuditLog
from meiye.core.db.fastwrite import insert_rows, insert_rows_or_skip, update_row
from meiye.core.db.prepared import PreparedQuery
from meiye.core.models import IdempotencyRecord
from meiye.members.models import Member
from meiye.org.models import Staff, Store


def _fields(obj: Any) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


STAFF_WITH_STORE_COUNT: PreparedQuery[Staff] = PreparedQuery(
    lambda organisation_id, username: (
        Staff.objects.filter(organisation_id=organisation_id, username=username)
        .select_related("organisation")
        .annotate(store_count=Count("stores"))
        .order_by("pk")
    ),
    [int, str],
)
STORES_BY_ID: PreparedQuery[Store] = PreparedQuery(
    lambda organisation_id, *ids: Store.objects.filter(organisation_id=organisation_id, pk__in=ids).order_by("pk"),
    [int, int],
    variadic=True,
)
STORE_CODES: PreparedQuery[Any] = PreparedQuery(
    lambda organisation_id: (
        Store.objects.filter(organisation_id=organisation_id).order_by("code").values_list("code", "name")
    ),
    [int],
)


def test_a_prepared_query_gives_the_rows_the_orm_gives_with_related_rows_and_annotations(org, receptionist, hq_admin):
    orm = (
        Staff.objects.filter(organisation_id=org.pk, username="reception1")
        .select_related("organisation")
        .annotate(store_count=Count("stores"))
        .get()
    )

    (found,) = STAFF_WITH_STORE_COUNT.all(org.pk, "reception1")

    assert _fields(found) == _fields(orm)
    assert found.store_count == orm.store_count == 1  # type: ignore[attr-defined]
    assert found.organisation == org  # select_related: no query
    assert not found._state.adding
    assert STAFF_WITH_STORE_COUNT.first(org.pk, "nobody") is None


def test_a_prepared_query_is_compiled_once_per_connection(org, receptionist, hq_admin):
    STAFF_WITH_STORE_COUNT.first(org.pk, "reception1")
    compiled = getattr(connection, STAFF_WITH_STORE_COUNT.name)

    with CaptureQueriesContext(connection) as ctx:
        again = STAFF_WITH_STORE_COUNT.first(org.pk, hq_admin.username)

    assert again.pk == hq_admin.pk
    assert getattr(connection, STAFF_WITH_STORE_COUNT.name) is compiled
    assert len(ctx.captured_queries) == 1


def test_a_variadic_query_is_compiled_per_number_of_arguments(org, store1, store2):
    assert [s.pk for s in STORES_BY_ID.all(org.pk, store1.pk)] == [store1.pk]
    assert [s.pk for s in STORES_BY_ID.all(org.pk, store1.pk, store2.pk)] == [store1.pk, store2.pk]
    assert STORES_BY_ID.all(org.pk + 1, store1.pk) == []


def test_a_values_list_query_gives_tuples(org, store1, store2):
    assert STORE_CODES.all(org.pk) == [("s1", "静安店"), ("s2", "徐汇店")]


def test_an_argument_that_does_not_reach_the_sql_unchanged_is_refused(org):
    dropped: PreparedQuery[Store] = PreparedQuery(lambda code: Store.objects.filter(code=code.upper()), [str])

    with pytest.raises(ValueError, match="do not reach the SQL"):
        dropped.all("s1")


def test_a_prepared_query_rejects_a_wrong_number_of_arguments(org):
    with pytest.raises(TypeError):
        STAFF_WITH_STORE_COUNT.all(org.pk)


def test_a_subquery_argument_is_a_parameter_too(org, store1, receptionist):
    query: PreparedQuery[Store] = PreparedQuery(
        lambda organisation_id, staff_id: Store.objects.filter(organisation_id=organisation_id).annotate(
            first_staff=Subquery(Staff.objects.filter(stores=OuterRef("pk"), pk=staff_id).values("username")[:1])
        ),
        [int, int],
    )

    (row,) = [s for s in query.all(org.pk, receptionist.pk) if s.pk == store1.pk]

    assert row.first_staff == "reception1"  # type: ignore[attr-defined]


def test_a_datetime_argument_selects_what_the_orm_selects(org):
    """Aware datetimes reach the SQL as the backend adapts them (a UTC string on SQLite): the prepared query
    finds its sentinel in that form and adapts each real value the same way, in any time zone."""
    base = datetime(2026, 3, 1, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    rows = []
    for index in range(3):  # 09:30, 10:30 and 11:30 in Shanghai
        row = IdempotencyRecord.objects.create(
            organisation_id=org.pk, key=f"when-{index}", scope="t.when", request_hash="0" * 64, response={}
        )
        IdempotencyRecord.objects.filter(pk=row.pk).update(created_at=base + timedelta(hours=index))
        rows.append(row)
    between: PreparedQuery[Any] = PreparedQuery(
        lambda organisation_id, start, end: (
            IdempotencyRecord.objects.filter(
                organisation_id=organisation_id, scope="t.when", created_at__gte=start, created_at__lt=end
            )
            .order_by("pk")
            .values_list("pk")
        ),
        [int, datetime, datetime],
    )
    utc = ZoneInfo("UTC")

    for start, end in [
        (base, base + timedelta(hours=2)),
        (base + timedelta(minutes=1), base + timedelta(hours=3)),
        (datetime(2026, 3, 1, 1, 30, tzinfo=utc), datetime(2026, 3, 1, 2, 30, tzinfo=utc)),  # 09:30–10:30 local
        (base + timedelta(days=1), base + timedelta(days=2)),
    ]:
        orm = list(
            IdempotencyRecord.objects.filter(
                organisation_id=org.pk, scope="t.when", created_at__gte=start, created_at__lt=end
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        assert [pk for (pk,) in between.all(org.pk, start, end)] == orm
    assert [pk for (pk,) in between.all(org.pk, base, base + timedelta(hours=2))] == [rows[0].pk, rows[1].pk]


def test_insert_rows_writes_what_bulk_create_writes(org, store1, receptionist):
    ours = [
        AuditLog(organisation=org, staff=receptionist, store=store1, action="t.fast", detail={"n": n, "名": "张"})
        for n in range(3)
    ]
    theirs = [
        AuditLog(organisation=org, staff=receptionist, store=store1, action="t.orm", detail={"n": n, "名": "张"})
        for n in range(3)
    ]

    insert_rows(ours)
    AuditLog.objects.bulk_create(theirs)

    assert all(row.pk is not None and not row._state.adding for row in ours)
    assert len({row.pk for row in ours}) == 3
    stored = {row.pk: row for row in AuditLog.objects.filter(action__in=["t.fast", "t.orm"])}
    for fast, orm in zip(ours, theirs, strict=True):
        a, b = _fields(stored[fast.pk]), _fields(stored[orm.pk])
        for name in ("id", "action", "at"):
            a.pop(name), b.pop(name)
        assert a == b
        assert stored[fast.pk].at is not None  # auto_now_add, through pre_save
        assert stored[fast.pk].at == fast.at


def test_insert_rows_encrypts_personal_data_as_the_orm_does(org, store1):
    member = Member(organisation=org, home_store=store1, member_no="F0001", name="王芳", phone="13800138000")

    insert_rows([member])

    again = Member.objects.get(pk=member.pk)
    assert (again.name, again.phone) == ("王芳", "13800138000")
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone FROM members_member WHERE id = %s", [member.pk])
        (raw,) = cursor.fetchone()
    assert "13800138000" not in str(raw)


def test_only_values_a_field_would_pass_unchanged_skip_its_preparation(org, store1, receptionist):
    from meiye.core.db.fastwrite import _plain_type, _prepared
    from meiye.ledger.models import Entry, Journal

    def plain(model: Any, name: str) -> Any:
        return _plain_type(model._meta.get_field(name), connection)

    assert (plain(Entry, "amount"), plain(Entry, "account")) == (int, int)
    assert plain(Journal, "code") is str
    # time zones: psycopg takes an aware datetime as it is; SQLite's backend writes text
    assert plain(Journal, "created_at") is (datetime if connection.vendor == "postgresql" else None)
    assert plain(Member, "phone") is None  # a TextField subclass: encrypted
    assert plain(AuditLog, "detail") is None  # JSON

    # a value of another type still goes through the field: a bool in an integer column is written as 1
    amount = Entry._meta.get_field("amount")
    assert _prepared([amount], Entry(amount=True), [int], connection, add=True) == [1]
    assert _prepared([amount], Entry(amount=7), [int], connection, add=True) == [7]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite's datetimes always take the field's way")
@pytest.mark.django_db
def test_only_an_aware_datetime_skips_its_fields_preparation():
    from meiye.core.db.fastwrite import _prepared
    from meiye.ledger.models import Journal

    created_at = Journal._meta.get_field("created_at")
    aware = datetime(2026, 11, 24, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    naive = datetime(2026, 11, 24, 9, 30)

    [kept] = _prepared([created_at], Journal(created_at=aware), [datetime], connection, add=False)
    assert kept is aware
    with pytest.warns(RuntimeWarning, match="naive datetime"):  # Django's way: warned, then taken as UTC
        [made] = _prepared([created_at], Journal(created_at=naive), [datetime], connection, add=False)
        expected = created_at.get_db_prep_save(naive, connection=connection)
    assert made == expected
    assert made.utcoffset() is not None


@pytest.mark.django_db
def test_a_choices_member_is_written_as_the_plain_string_it_equals():
    from meiye.core.db.fastwrite import _prepared
    from meiye.sales.models import Bill, BillStatus

    status = Bill._meta.get_field("status")
    [value] = _prepared([status], Bill(status=BillStatus.COMPLETED), [str], connection, add=False)

    assert type(value) is str and value == BillStatus.COMPLETED.value


def test_insert_rows_refuses_rows_that_already_have_a_key(org, store1, receptionist):
    row = AuditLog(organisation=org, action="t.x")
    insert_rows([row])

    with pytest.raises(ValueError):
        insert_rows([row])
    assert insert_rows([]) == []


def _record(org: Any, key: str, status_code: int = 201) -> IdempotencyRecord:
    return IdempotencyRecord(
        organisation_id=org.pk, key=key, scope="t", request_hash="h", status_code=status_code, response={}
    )


def test_insert_rows_or_skip_leaves_out_a_row_a_unique_key_holds_and_the_transaction_goes_on(org):
    # given: a record under "k-1" (unique per organisation and key)
    insert_rows([_record(org, "k-1")])

    # when: three rows, the second under the taken key
    rows = [_record(org, "k-0", 200), _record(org, "k-1", 202), _record(org, "k-2", 204)]
    written = insert_rows_or_skip(rows, match="key")

    # then: the other two are written with their keys; the clash is left out, with no error, and the
    # transaction can still read (on PostgreSQL an error would have aborted it)
    assert written == [rows[0], rows[2]]
    assert rows[1].pk is None and rows[1]._state.adding
    stored = dict(IdempotencyRecord.objects.filter(organisation_id=org.pk).values_list("key", "status_code"))
    assert stored == {"k-0": 200, "k-1": 201, "k-2": 204}
    assert {row.pk for row in written} == set(IdempotencyRecord.objects.exclude(key="k-1").values_list("pk", flat=True))


def test_insert_rows_or_skip_needs_a_distinct_value_to_match_each_row(org):
    with pytest.raises(ValueError, match="its own key"):
        insert_rows_or_skip([_record(org, "same"), _record(org, "same")], match="key")
    assert insert_rows_or_skip([], match="key") == []


def test_update_row_updates_only_the_named_fields(org, store1):
    store1.name = "新名字"
    store1.address = "not saved"

    update_row(store1, ["name"])

    again = Store.objects.get(pk=store1.pk)
    assert again.name == "新名字"
    assert again.address != "not saved"


def test_update_row_of_a_missing_row_raises(org, store1):
    ghost = Store(pk=store1.pk + 1000, organisation=org, code="zz", name="ghost")

    with pytest.raises(Store.DoesNotExist):
        update_row(ghost, ["name"])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL prepared statements")
def test_the_hot_statements_are_prepared_on_postgresql_and_still_counted(org, store1, store2, settings):
    settings.MEIYE_PG_PREPARED = "hot"
    with CaptureQueriesContext(connection) as ctx:
        first = STORES_BY_ID.all(org.pk, store1.pk, store2.pk)
        again = STORES_BY_ID.all(org.pk, store2.pk, store1.pk)

    assert [s.pk for s in first] == [s.pk for s in again] == sorted([store1.pk, store2.pk])
    assert len(ctx.captured_queries) == 2  # logged and counted like any other statement
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ['%"org_store"%IN ($2, $3)%']
        )
        assert cursor.fetchone()[0] == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL prepared statements")
def test_nothing_is_prepared_with_the_setting_off(org, store1, settings):
    settings.MEIYE_PG_PREPARED = "0"
    STORES_BY_ID.all(org.pk, store1.pk)
    STORES_BY_ID.all(org.pk, store1.pk)

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] == 0


def test_an_unknown_prepared_statements_setting_stops_the_process_naming_it():
    env = {**os.environ, "MEIYE_PG_PREPARED": "yes", "DJANGO_SETTINGS_MODULE": "config.settings.base"}
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, check=False
    )

    assert done.returncode != 0
    assert "MEIYE_PG_PREPARED: must be hot, 1 or 0, got 'yes'" in done.stderr
    assert "只能是 hot、1 或 0" in done.stderr


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite cursor")
@pytest.mark.django_db
def test_the_sqlite_cursor_converts_placeholders_as_django_does_and_keeps_them():
    from django.db.backends.sqlite3.base import SQLiteCursorWrapper as DjangoCursor

    from meiye.core.db.sqlite3 import base as sqlite_base

    connection.ensure_connection()
    ours = connection.connection.cursor(factory=sqlite_base.SQLiteCursorWrapper)
    django = connection.connection.cursor(factory=DjangoCursor)
    for sql in ("SELECT %s, '%%s' WHERE a = %s", "SELECT 1", "UPDATE t SET x = %s WHERE y LIKE '50%%'"):
        assert ours.convert_query(sql) == django.convert_query(sql)
        assert sql in sqlite_base._QMARK_CACHE
    assert ours.convert_query("SELECT %(a)s", param_names=["a"]) == "SELECT :a"
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s || '%%'", ["50"])
        assert cursor.fetchone()[0] == "50%"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL prepared statements")
@pytest.mark.django_db
def test_a_long_hot_statement_is_converted_once_and_still_binds_each_executions_values(monkeypatch):
    from meiye.core.db import cursors

    monkeypatch.setattr(cursors, "_hot_converted", {})
    values = list(range(60))  # past psycopg's own cache: 50 parameters, 4,096 bytes
    sql = "SELECT " + ", ".join(["%s::int"] * 60) + " -- " + "x" * 4_100
    for shift in (0, 1):
        with cursors.hot_cursor(connection, 60) as cursor:
            cursor.execute(sql, [v + shift for v in values])
            assert list(cursor.fetchone()) == [v + shift for v in values]

    assert list(cursors._hot_converted) == [(sql, "utf-8")]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL prepared statements")
@pytest.mark.django_db
def test_the_hot_statements_cache_of_conversions_is_bounded(monkeypatch):
    from meiye.core.db import cursors

    monkeypatch.setattr(cursors, "_hot_converted", {})
    monkeypatch.setattr(cursors, "HOT_CONVERTED_MAX", 3)
    for n in range(1, 6):
        with cursors.hot_cursor(connection, 1) as cursor:
            cursor.execute(f"SELECT %s::int + {n}", [1])
            assert cursor.fetchone()[0] == 1 + n

    assert len(cursors._hot_converted) <= 3


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL plan cache")
@pytest.mark.django_db
def test_prepared_statements_keep_their_generic_plan_on_postgresql():
    # The hot statements are prepared to be planned once (see config/settings/base.py).
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_generic_plan"


@pytest.mark.parametrize(
    ("prepared", "expected"), [("hot", "-c plan_cache_mode=force_generic_plan"), ("0", None), ("1", None)]
)
def test_only_the_hot_mode_forces_generic_plans(prepared, expected):
    env = {
        **os.environ,
        "MEIYE_PG_PREPARED": prepared,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/unused",
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.DATABASES['default'].get('OPTIONS', {}).get('options'))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert done.stdout.strip() == str(expected)
