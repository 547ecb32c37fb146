# ruff: noqa: F811 - the API fixtures are imported into this module
"""Review of a461817 (ADR 0010: writes nobody waits for go to PostgreSQL in psycopg's pipeline mode,
``meiye.core.db.pipeline``).

The first tests reproduce defects (they fail on PostgreSQL with the pipeline on; on SQLite and with
``MEIYE_PG_PIPELINE=0`` they pass, which is the behaviour the pipeline promises to keep). The others pin
behaviour that holds: errors, rollbacks, savepoints, keys, statement counts and concurrent checkouts."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from meiye.audit.models import AuditLog
from meiye.core import idempotency as core_idempotency
from meiye.core.db import pipeline
from meiye.core.db.fastwrite import insert_rows, insert_values, update_row
from meiye.core.db.pipeline import pipelined, settle
from meiye.core.errors import Conflict
from meiye.core.models import IdempotencyRecord
from meiye.core.money import Money
from meiye.ledger.models import Journal
from meiye.org.models import Store
from meiye.packages.models import MemberPackage
from meiye.packages.services import ProductItemInput, package_product_save
from meiye.sales import services as sales_services
from meiye.sales.models import Bill, BillLine, Tender
from meiye.sales.services import TenderInput, bill_add_line, bill_complete, bill_open
from tests.api.conftest import client_for, token_for  # noqa: F401 - fixtures
from tests.api.conftest_sales import (  # noqa: F401 - fixtures
    care,
    cashier_actor,
    hq_actor,
    ref_categories,
    ref_items,
    serum,
    setup_keys,
    shopper,
    top_up,
)
from tests.review.support import wait_for_a_blocked_backend
from tests.sales.support import balances, sales_state

pytestmark = pytest.mark.usefixtures("fresh_rules_cache")

ON_POSTGRESQL = connection.vendor == "postgresql"
ONE_SHOT = "/api/v1/bills/checkout/"


def _record(org, key: str, *, request_hash: str = "h", response=None) -> IdempotencyRecord:
    return IdempotencyRecord(
        organisation_id=org.pk, key=key, scope="t", request_hash=request_hash, status_code=200, response=response or {}
    )


def _now():
    return timezone.now()


def _body(member, *items, tenders):
    return {"member_id": member.pk, "lines": [{"item_id": item.pk} for item in items], "tenders": tenders}


# --- defects ------------------------------------------------------------------------------------------------


def test_defect_a_queued_insert_whose_error_was_caught_and_rolled_back_does_not_break_the_block_end(org):
    """pipeline.py, ``_settle``: the callbacks of queued writes run even when their statement failed (or was
    skipped in the aborted pipeline) and the caller caught the error and rolled its savepoint back — as the
    module doc says a caller may. ``set_keys`` then fetches from a cursor with no result: the block's end
    raises ``ProgrammingError: no result available`` although nothing is wrong any more."""
    insert_rows([_record(org, "k-taken")])
    after = AuditLog(organisation=org, action="t.after")

    with pipelined():
        try:
            with transaction.atomic():
                insert_rows([_record(org, "k-taken")], keys_later=True)  # fails: the key is taken
                AuditLog.objects.count()  # a statement waited for: the error is raised here
        except IntegrityError:
            pass  # handled, the savepoint rolled back: as outside a pipeline, the block goes on
        insert_rows([after], keys_later=True)

    assert after.pk is not None
    assert AuditLog.objects.filter(pk=after.pk).exists()


def test_defect_a_queued_update_skipped_after_a_caught_error_does_not_raise_does_not_exist_at_the_block_end(
    org, store1
):
    """Same cause: an ``update_row`` queued after the failing write (skipped by the aborted pipeline, rolled
    back with the savepoint) has its one-row check run at the block's end on a cursor with no answer."""
    insert_rows([_record(org, "k-taken")])

    with pipelined():
        try:
            with transaction.atomic():
                insert_values(
                    IdempotencyRecord,
                    ["organisation_id", "key", "scope", "request_hash", "status_code", "response", "created_at"],
                    [(org.pk, "k-taken", "t", "h", 200, "{}", connection.ops.adapt_datetimefield_value(_now()))],
                )
                store1.name = "改名"
                update_row(store1, ["name"])
                AuditLog.objects.count()
        except IntegrityError:
            pass
        Store.objects.filter(pk=store1.pk).update(name="再改")

    assert Store.objects.get(pk=store1.pk).name == "再改"


def test_defect_core_run_idempotent_replays_a_lost_race_inside_a_pipelined_block(org, monkeypatch):
    """meiye/core/idempotency.py ``store`` now queues its record (``keys_later=True``). ``core.idempotency.
    run_idempotent`` catches the IntegrityError of a lost race and answers with the winner's result — inside
    any pipelined block (every idempotent API write) the block's end then raises ``ProgrammingError`` instead.
    The race is simulated: the first look-up misses the twin's record, which is there when the INSERT runs."""
    payload = {"a": 1}
    insert_rows([_record(org, "k-race", request_hash=core_idempotency.canonical_hash(payload), response={"x": 1})])
    real_lookup = core_idempotency.lookup
    looked: list[int] = []

    def lookup(**kwargs):  # type: ignore[no-untyped-def]
        looked.append(1)
        return None if len(looked) == 1 else real_lookup(**kwargs)

    monkeypatch.setattr(core_idempotency, "lookup", lookup)

    with transaction.atomic(), pipelined():
        result = core_idempotency.run_idempotent(
            organisation_id=org.pk, key="k-race", scope="t", payload=payload, operation=lambda: {"x": 2}
        )

    assert result == ({"x": 1}, True)


def test_defect_a_server_side_cursor_works_in_a_pipelined_block_as_outside_it(org):
    """pipeline.py promises every statement not sent by ``later`` runs exactly as outside the block. A
    ``QuerySet.iterator()`` (a server-side cursor on PostgreSQL) raises ``NotSupportedError: server-side
    cursors not supported in pipeline mode`` — in every idempotent API write. (No API write path calls
    ``iterator()`` today: a trap for the next one, not a failure of a current endpoint.)"""
    AuditLog.objects.create(organisation=org, action="t.iter")

    with pipelined():
        actions = [row.action for row in AuditLog.objects.filter(action="t.iter").iterator(chunk_size=10)]

    assert actions == ["t.iter"]


# --- behaviour that holds: errors, rollbacks, savepoints ----------------------------------------------------


def test_a_python_error_in_a_savepoint_rolls_back_the_writes_queued_in_it_and_the_block_goes_on(org):
    kept, dropped = AuditLog(organisation=org, action="t.kept"), AuditLog(organisation=org, action="t.dropped")

    with pipelined():
        insert_rows([kept], keys_later=True)
        with pytest.raises(Conflict), transaction.atomic():
            insert_rows([dropped], keys_later=True)
            insert_rows([_record(org, "k-dropped")], keys_later=True)
            raise Conflict("t.refused", zh="拒绝", en="refused")  # Python, while the writes are queued
        after = AuditLog(organisation=org, action="t.after")
        insert_rows([after], keys_later=True)

    assert set(AuditLog.objects.filter(action__startswith="t.").values_list("action", flat=True)) == {
        "t.kept",
        "t.after",
    }
    assert not IdempotencyRecord.objects.filter(key="k-dropped").exists()
    assert kept.pk is not None and after.pk is not None


def test_a_python_error_leaving_the_block_rolls_back_its_queued_writes_with_the_transaction(org):
    with pytest.raises(Conflict), transaction.atomic(), pipelined():
        insert_rows([AuditLog(organisation=org, action="t.gone")], keys_later=True)
        insert_rows([_record(org, "k-gone")], keys_later=True)
        raise Conflict("t.refused", zh="拒绝", en="refused")

    assert not AuditLog.objects.filter(action="t.gone").exists()
    assert not IdempotencyRecord.objects.filter(key="k-gone").exists()
    assert pipeline._active(connection) is None
    assert AuditLog.objects.count() >= 0  # the connection is usable


def test_a_queued_write_that_fails_with_a_python_error_pending_still_rolls_everything_back(org):
    """A queued write fails AND Python raises before any statement is waited for: psycopg logs the database
    error, the Python error leaves the block, and the transaction around it rolls back whole."""
    insert_rows([_record(org, "k-taken")])

    # (on SQLite, and with the pipeline off, the INSERT itself raises first)
    with pytest.raises(Conflict if _queued() else IntegrityError), transaction.atomic(), pipelined():
        insert_rows([AuditLog(organisation=org, action="t.partial")], keys_later=True)
        insert_rows([_record(org, "k-taken")], keys_later=True)
        raise Conflict("t.refused", zh="拒绝", en="refused")

    assert not AuditLog.objects.filter(action="t.partial").exists()
    assert IdempotencyRecord.objects.filter(key="k-taken").count() == 1


def _queued() -> bool:
    from django.conf import settings

    return ON_POSTGRESQL and settings.MEIYE_PG_PIPELINE == "1"


def test_executemany_in_a_pipelined_block_gives_its_row_count(org):
    rows = [
        (org.pk, f"t.many{n}", "", "", "", "{}", connection.ops.adapt_datetimefield_value(_now())) for n in range(3)
    ]
    table = connection.ops.quote_name(AuditLog._meta.db_table)

    with pipelined(), connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (organisation_id, action, object_type, object_id, object_repr, detail, at) "  # noqa: S608
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        count = cursor.rowcount

    assert count == 3
    assert AuditLog.objects.filter(action__startswith="t.many").count() == 3


def test_on_commit_in_a_pipelined_block_runs_once_after_the_commit(org, django_capture_on_commit_callbacks):
    ran: list[int] = []
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic(), pipelined():
        insert_rows([AuditLog(organisation=org, action="t.commit")], keys_later=True)
        transaction.on_commit(lambda: ran.append(1))
        assert ran == []

    assert ran == [1] and len(callbacks) == 1


# --- behaviour that holds: the API checkout and the front desk's completion ----------------------------------


def _statements(api, body, key):
    with CaptureQueriesContext(connection) as captured:
        response = api.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    return response, [_shape(q["sql"]) for q in captured.captured_queries]


def _shape(sql: str) -> str:
    """A statement without its values (quoted strings and numbers), cut to its verb and table."""
    return re.sub(r"\d+", "N", re.sub(r"'(?:[^']|'')*'", "?", sql))[:90]


def test_the_api_checkout_sends_the_same_statements_with_the_pipeline_on_and_off(
    client_for, receptionist, store1, shopper, care, serum, top_up
):
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))
    top_up(shopper, "2000.00")
    tenders = [{"kind": "stored_value", "amount": "500.00"}, {"kind": "wechat", "amount": "350.00"}]
    assert (
        api.post(
            ONE_SHOT,
            # both items: the process copies them (sales.services._ITEMS_COPY), so neither run below reads them
            _body(shopper, care, serum, tenders=[{"kind": "cash", "amount": "850.00"}]),
            format="json",
            HTTP_IDEMPOTENCY_KEY="warm",
        ).status_code
        == 201
    )

    on, statements_on = _statements(api, _body(shopper, care, serum, tenders=tenders), "on")
    with override_settings(MEIYE_PG_PIPELINE="0"):
        off, statements_off = _statements(api, _body(shopper, care, serum, tenders=tenders), "off")

    assert (on.status_code, off.status_code) == (201, 201), (on.json(), off.json())
    assert statements_on == statements_off
    for response in (on, off):
        bill = Bill.objects.get(number=response.json()["number"])
        assert sorted(line["id"] for line in response.json()["lines"]) == sorted(
            bill.lines.values_list("pk", flat=True)
        )
        assert sorted(t["id"] for t in response.json()["tenders"]) == sorted(bill.tenders.values_list("pk", flat=True))
    assert balances(shopper)["principal"] == 200_000 - 2 * 50_000


def test_a_package_sold_by_the_api_checkout_points_at_its_settled_line(
    client_for, receptionist, store1, hq_actor, shopper, care
):
    product = package_product_save(
        actor=hq_actor,
        code="care-5",
        name="基础护理5次卡",
        price=Money.parse("2500.00"),
        kind="count",
        items=[ProductItemInput(service_id=care.pk, count=5, validity_value=6)],
    )
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))

    response = api.post(
        ONE_SHOT,
        {
            "member_id": shopper.pk,
            "lines": [{"item_id": product.item_id}],
            "tenders": [{"kind": "cash", "amount": "2500.00"}],
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="pkg",
    )

    assert response.status_code == 201, response.json()
    (line,) = response.json()["lines"]
    package = MemberPackage.objects.get(member=shopper)
    assert package.bill_line_id == line["id"] == BillLine.objects.get(bill__number=response.json()["number"]).pk


def test_the_front_desk_completion_sets_the_keys_of_its_tenders_and_its_audit_rows(cashier_actor, shopper, care, serum):
    bill = bill_open(actor=cashier_actor, member=shopper)
    bill_add_line(actor=cashier_actor, bill=bill, item=care)
    bill_add_line(actor=cashier_actor, bill=bill, item=serum)

    paid = bill_complete(
        actor=cashier_actor,
        bill=bill,
        tenders=[TenderInput(kind="cash", amount=Money.parse("850.00"))],
        idempotency_key="desk-1",
    )

    (tender,) = paid.tenders.all()  # the rows _complete left in the cache
    assert tender.pk is not None and Tender.objects.filter(pk=tender.pk, bill=paid).exists()
    assert Bill.objects.get(pk=paid.pk).status == "completed"
    assert AuditLog.objects.filter(action="sales.bill_complete", object_id=str(paid.pk)).count() == 1


def test_a_late_refusal_in_the_api_checkout_after_queued_writes_leaves_nothing(
    monkeypatch, client_for, receptionist, store1, shopper, care, top_up
):
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))
    top_up(shopper, "1000.00")
    before = sales_state()

    def refuse(**kwargs):  # type: ignore[no-untyped-def]
        raise Conflict("t.late", zh="晚拒", en="refused late")  # after the journals, lines and tenders are queued

    monkeypatch.setattr(sales_services, "coupons_mark_used", refuse)
    response = api.post(
        ONE_SHOT,
        _body(shopper, care, tenders=[{"kind": "stored_value", "amount": "600.00"}]),
        format="json",
        HTTP_IDEMPOTENCY_KEY="late",
    )

    assert response.status_code == 409, response.json()
    assert sales_state() == before
    assert not IdempotencyRecord.objects.filter(key="late").exists()


def test_a_queued_write_failing_in_the_api_checkout_is_an_integrity_error_and_leaves_nothing(
    monkeypatch, client_for, receptionist, store1, shopper, care, top_up
):
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))
    top_up(shopper, "1000.00")
    before = sales_state()
    real_audit = sales_services.audit_record

    def audit_then_break(**kwargs):  # type: ignore[no-untyped-def]
        row = real_audit(**kwargs)
        insert_rows([AuditLog(organisation_id=row.organisation_id, action=None)], keys_later=True)  # NOT NULL
        return row

    monkeypatch.setattr(sales_services, "audit_record", audit_then_break)

    with pytest.raises(IntegrityError):
        api.post(
            ONE_SHOT,
            _body(shopper, care, tenders=[{"kind": "stored_value", "amount": "600.00"}]),
            format="json",
            HTTP_IDEMPOTENCY_KEY="broken",
        )

    assert sales_state() == before
    assert balances(shopper)["principal"] == 100_000


# --- concurrency (PostgreSQL) -------------------------------------------------------------------------------


def _two_checkouts_at_once(monkeypatch, apis, bodies):
    """The first checkout stops after its accounts are locked until the second waits on that lock, then goes
    on; returns both responses."""
    real_lock = sales_services.accounts_lock
    locked = threading.Event()

    def lock(**kwargs):  # type: ignore[no-untyped-def]
        result = real_lock(**kwargs)
        if threading.current_thread().name == "first":
            locked.set()
            assert wait_for_a_blocked_backend(), "the second checkout never waited on the first's locks"
        return result

    monkeypatch.setattr(sales_services, "accounts_lock", lock)
    responses: dict[str, object] = {}

    def post(name, api, body, key):  # type: ignore[no-untyped-def]
        def run() -> None:
            try:
                if name == "second":
                    assert locked.wait(10)
                responses[name] = api.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
            except Exception as error:
                responses[name] = error
            finally:
                connection.close()

        return threading.Thread(target=run, name=name)

    threads = [post("first", apis[0], bodies[0], "k-first"), post("second", apis[1], bodies[1], "k-second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return responses["first"], responses["second"]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_stored_value_checkouts_of_one_member_both_charge_her_once_each(
    monkeypatch, client_for, receptionist, store1, shopper, serum, top_up
):
    if not ON_POSTGRESQL:
        pytest.skip("two transactions at once: PostgreSQL only")
    top_up(shopper, "1000.00")
    apis = [client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk)) for _ in range(2)]
    body = _body(shopper, serum, tenders=[{"kind": "stored_value", "amount": "250.00"}])

    first, second = _two_checkouts_at_once(monkeypatch, apis, [body, body])

    assert (first.status_code, second.status_code) == (201, 201), (first, second)
    assert balances(shopper)["principal"] == 50_000  # no lost update: the second read the first's balance
    assert Journal.objects.filter(code="sales.bill").count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_checkouts_that_together_overdraw_her_stored_value_charge_only_the_first(
    monkeypatch, client_for, receptionist, store1, shopper, care, top_up
):
    if not ON_POSTGRESQL:
        pytest.skip("two transactions at once: PostgreSQL only")
    top_up(shopper, "1000.00")
    apis = [client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk)) for _ in range(2)]
    body = _body(shopper, care, tenders=[{"kind": "stored_value", "amount": "600.00"}])

    first, second = _two_checkouts_at_once(monkeypatch, apis, [body, body])

    assert first.status_code == 201, first
    assert second.status_code in (400, 409), second.json()
    assert balances(shopper)["principal"] == 40_000
    assert Bill.objects.filter(status="completed").count() == 1
    assert not IdempotencyRecord.objects.filter(key="k-second").exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_patches_with_one_key_write_once_and_the_second_replays_from_its_queued_record_clash(
    monkeypatch, client_for, receptionist, make_member, store1
):
    """The only clash of the second request is its idempotency record, now queued: it fails at the pipelined
    block's end, as an IntegrityError inside the transaction, and the layer answers with the first's record."""
    if not ON_POSTGRESQL:
        pytest.skip("two transactions at once: PostgreSQL only")
    from meiye.members import services as member_services

    member = make_member(store1)
    real_audit = member_services.audit_record
    locked = threading.Event()

    def audit(**kwargs):  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "first":  # the member row is locked by now
            locked.set()
            assert wait_for_a_blocked_backend(), "the second PATCH never waited on the member's row"
        return real_audit(**kwargs)

    monkeypatch.setattr(member_services, "audit_record", audit)
    apis = [client_for(receptionist) for _ in range(2)]
    responses: dict[str, object] = {}

    def patch(name, api):  # type: ignore[no-untyped-def]
        def run() -> None:
            try:
                if name == "second":
                    assert locked.wait(10)
                responses[name] = api.patch(
                    f"/api/v1/members/{member.pk}/", {"notes": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="p-race"
                )
            except Exception as error:
                responses[name] = error
            finally:
                connection.close()

        return threading.Thread(target=run, name=name)

    threads = [patch("first", apis[0]), patch("second", apis[1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    first, second = responses["first"], responses["second"]

    assert (first.status_code, second.status_code) == (200, 200), (first, second)
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert AuditLog.objects.filter(action="member.update").count() == 1
    assert IdempotencyRecord.objects.filter(key="p-race").count() == 1


# --- SQLite and the setting off: nothing queued -------------------------------------------------------------


def test_with_the_setting_off_a_caught_error_in_a_block_is_harmless(org, settings):
    """The first defect's scenario with ``MEIYE_PG_PIPELINE=0``: what the pipeline must keep."""
    settings.MEIYE_PG_PIPELINE = "0"
    insert_rows([_record(org, "k-taken")])
    after = AuditLog(organisation=org, action="t.after")

    with pipelined():
        try:
            with transaction.atomic():
                insert_rows([_record(org, "k-taken")], keys_later=True)
        except IntegrityError:
            pass
        insert_rows([after], keys_later=True)
        settle()

    assert after.pk is not None
