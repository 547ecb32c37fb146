# ruff: noqa: F811 - the API fixtures are imported into this module
"""Review of 863c912..HEAD (session 9): the tier ladder's per-process copy keyed by ``tiers_version``, the held
tier read with the checkout's store row, the one-shot checkout's queued bill INSERT, the bill number taken and
written by one statement on PostgreSQL, and the COMMIT queued behind the last writes of an idempotent API write
(``pipelined(commit=True)``).

Tests marked ``# DEFECT:`` fail on the code under review; the others pin behaviour that held up."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connection, transaction

from meiye.core.db.prepared import PreparedQuery
from meiye.core.models import IdempotencyRecord
from meiye.core.money import Money
from meiye.ledger.models import Entry
from meiye.loyalty.models import MemberTier, Tier
from meiye.loyalty.tiers import tier_save
from meiye.org.context import Actor
from meiye.sales import services as sales_services
from meiye.sales.models import Bill, BillSequence
from meiye.sales.services import LineInput, TenderInput, bill_checkout, checkout_store_get
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
from tests.factories import OrganisationFactory, StaffFactory, StoreFactory
from tests.loyalty.tiers_reference import grant, reference_tiers
from tests.other_connection import committed_values
from tests.reference import reference_categories, reference_items
from tests.review.support import wait_for_a_blocked_backend
from tests.sales.support import balances, sales_state

pytestmark = pytest.mark.usefixtures("fresh_rules_cache")

ON_POSTGRESQL = connection.vendor == "postgresql"
ONE_SHOT = "/api/v1/bills/checkout/"


def _cash(cashier: Actor, member, item, amount: str, key: str | None = None) -> Bill:  # type: ignore[no-untyped-def]
    return bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=item.pk)],
        tenders=[TenderInput(kind="cash", amount=Money.parse(amount))],
        idempotency_key=key or uuid.uuid4().hex,
    )


def _body(member, *items, tenders):  # type: ignore[no-untyped-def]
    return {"member_id": member.pk, "lines": [{"item_id": item.pk} for item in items], "tenders": tenders}


def _silver_discount(hq: Actor, bp: int) -> None:
    tier_save(
        actor=hq,
        code="silver",
        name_zh="银卡",
        name_en="Silver",
        threshold=Money.parse("3000"),
        discounts_bp={"service": bp},
        points_multiplier_bp=10_000,
        points_per_yuan_offset=100,
        points_lifetime_months=12,
    )


# --- the tier ladder's copy ------------------------------------------------------------------------------------


def test_a_tier_change_rolled_back_after_a_checkout_priced_it_is_not_priced_afterwards(
    hq_actor, cashier_actor, shopper, care
):
    tiers = reference_tiers(hq_actor)
    grant(hq_actor, shopper, tiers["silver"])
    assert _cash(cashier_actor, shopper, care, "540.00").payable_total_fen == 54_000  # Silver: 10% off

    # when: Silver's discount goes to 30% and a checkout prices it, then the whole change rolls back
    with transaction.atomic():
        _silver_discount(hq_actor, 3_000)
        assert _cash(cashier_actor, shopper, care, "420.00").payable_total_fen == 42_000
        transaction.set_rollback(True)

    # then: the committed ladder prices again (the copy made inside the rolled-back change is not used)
    assert _cash(cashier_actor, shopper, care, "540.00").payable_total_fen == 54_000


def test_each_organisation_prices_with_its_own_ladder(hq_actor, cashier_actor, shopper, care, make_member):
    tiers = reference_tiers(hq_actor)
    grant(hq_actor, shopper, tiers["silver"])
    assert _cash(cashier_actor, shopper, care, "540.00").payable_total_fen == 54_000

    other = OrganisationFactory(code="other", name="别家")
    other_store = StoreFactory(organisation=other, code="o1", name="别家店")
    other_hq = Actor(
        staff=StaffFactory(organisation=other, position="hq_admin", stores=[], username="other-hq"),
        organisation=other,
        store=other_store,
        ip="127.0.0.1",
    )
    other_items = reference_items(other_hq, reference_categories(other_hq))
    tier_save(actor=other_hq, code="all", name_zh="会员", threshold=Money.parse("0"), discounts_bp={"service": 5_000})
    theirs = make_member(other_store, actor=other_hq, phone="13700001111")

    assert _cash(other_hq, theirs, other_items["care"], "300.00").payable_total_fen == 30_000  # their 50%
    assert _cash(cashier_actor, shopper, care, "540.00").payable_total_fen == 54_000  # ours, still 10%


def test_a_store_read_for_one_member_does_not_price_another(hq_actor, cashier_actor, shopper, care, make_member):
    tiers = reference_tiers(hq_actor)
    grant(hq_actor, shopper, tiers["gold"])  # 15%
    other = make_member(cashier_actor.store, phone="13800007777")  # Regular
    actor = Actor(
        staff=cashier_actor.staff,
        organisation=cashier_actor.organisation,
        store=checkout_store_get(cashier_actor, cashier_actor.store.pk, shopper.pk),  # her held tier on the row
        ip="127.0.0.1",
    )

    bill = _cash(actor, other, care, "600.00")

    assert bill.payable_total_fen == 60_000
    assert bill.member_snapshot["tier"] == "regular"


def test_a_held_tier_the_copy_does_not_know_is_read_and_priced(hq_actor, cashier_actor, shopper, care, org):
    tiers = reference_tiers(hq_actor)
    assert _cash(cashier_actor, shopper, care, "600.00").payable_total_fen == 60_000  # the copy is made
    # a tier written around the services (no new version), then held by her
    vip = Tier.objects.create(
        organisation=org, code="vip", name_zh="贵宾", threshold_fen=9_000_000, discounts_bp={"service": 5_000}
    )
    grant(hq_actor, shopper, vip)
    assert MemberTier.objects.get(member=shopper).tier_id == vip.pk
    assert set(tiers) == {"regular", "silver", "gold", "diamond"}  # the version copied is unchanged

    bill = _cash(cashier_actor, shopper, care, "300.00")

    assert bill.member_snapshot["tier"] == "vip"
    assert bill.payable_total_fen == 30_000


# --- the datetime sentinel --------------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", [None, "Asia/Shanghai", "America/New_York"])
def test_a_datetime_argument_selects_what_the_orm_selects_whatever_the_database_time_zone(org, zone):
    if ON_POSTGRESQL:
        pytest.skip("the database's TIME_ZONE changes how SQLite stores datetimes")
    saved = connection.settings_dict.get("TIME_ZONE")
    connection.settings_dict["TIME_ZONE"] = zone
    connection.__dict__.pop("timezone", None)
    connection.__dict__.pop("timezone_name", None)
    try:
        base = datetime(2026, 3, 1, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
        for index in range(4):
            row = IdempotencyRecord.objects.create(
                organisation_id=org.pk, key=f"tz-{index}", scope="t.tz", request_hash="0" * 64, response={}
            )
            IdempotencyRecord.objects.filter(pk=row.pk).update(created_at=base + timedelta(hours=index))
        between: PreparedQuery[Any] = PreparedQuery(
            lambda organisation_id, start, end: (
                IdempotencyRecord.objects.filter(
                    organisation_id=organisation_id, scope="t.tz", created_at__gte=start, created_at__lt=end
                )
                .order_by("pk")
                .values_list("pk")
            ),
            [int, datetime, datetime],
        )
        for start, end in [
            (base, base + timedelta(hours=2)),
            (base + timedelta(hours=1), base + timedelta(hours=1, microseconds=1)),
            (datetime(2026, 3, 1, 2, 30, tzinfo=ZoneInfo("UTC")), datetime(2026, 3, 2, tzinfo=ZoneInfo("UTC"))),
        ]:
            orm = list(
                IdempotencyRecord.objects.filter(
                    organisation_id=org.pk, scope="t.tz", created_at__gte=start, created_at__lt=end
                )
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            assert [pk for (pk,) in between.all(org.pk, start, end)] == orm
    finally:
        connection.settings_dict["TIME_ZONE"] = saved
        connection.__dict__.pop("timezone", None)
        connection.__dict__.pop("timezone_name", None)


# --- the bill number ------------------------------------------------------------------------------------------


def test_the_first_bill_of_a_store_and_the_millionth_are_numbered_alike_on_both_databases(
    cashier_actor, shopper, care, store1
):
    assert not BillSequence.objects.filter(store=store1).exists()
    first = _cash(cashier_actor, shopper, care, "600.00")
    second = _cash(cashier_actor, shopper, care, "600.00")
    BillSequence.objects.filter(store=store1).update(next_value=1_234_567)
    big = _cash(cashier_actor, shopper, care, "600.00")

    prefix = store1.code.upper()
    assert [first.number, second.number, big.number] == [f"{prefix}-000001", f"{prefix}-000002", f"{prefix}-1234567"]
    assert list(Bill.objects.order_by("pk").values_list("number", flat=True)) == [
        f"{prefix}-000001",
        f"{prefix}-000002",
        f"{prefix}-1234567",
    ]
    assert BillSequence.objects.get(store=store1).next_value == 1_234_568


# --- the API checkout on PostgreSQL: the queued bill INSERT, the queued COMMIT -----------------------------------


def _two_at_once(monkeypatch, calls: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Run ``calls["first"]`` and ``calls["second"]`` in two threads: the first stops once its balance rows are
    locked until the second waits on a lock, then goes on. Returns what each returned (or raised)."""
    real_lock = sales_services.accounts_lock
    locked = threading.Event()

    def lock(**kwargs):  # type: ignore[no-untyped-def]
        result = real_lock(**kwargs)
        if threading.current_thread().name == "first" and not locked.is_set():
            locked.set()
            assert wait_for_a_blocked_backend(), "the second never waited on the first"
        return result

    monkeypatch.setattr(sales_services, "accounts_lock", lock)
    results: dict[str, Any] = {}

    def thread(name: str) -> threading.Thread:
        def run() -> None:
            try:
                if name == "second":
                    assert locked.wait(10)
                results[name] = calls[name]()
            except Exception as error:
                results[name] = error
            finally:
                connection.close()

        return threading.Thread(target=run, name=name)

    threads = [thread("first"), thread("second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_api_checkouts_with_one_key_charge_once_and_answer_alike(
    monkeypatch, client_for, receptionist, store1, shopper, care, top_up
):
    if not ON_POSTGRESQL:
        pytest.skip("two transactions at once: PostgreSQL only")
    top_up(shopper, "1000.00")
    apis = [client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk)) for _ in range(2)]
    body = _body(shopper, care, tenders=[{"kind": "stored_value", "amount": "600.00"}])
    real_complete = sales_services._complete
    completed: dict[str, Any] = {}

    def complete(*args, **kwargs):  # type: ignore[no-untyped-def]
        completed[threading.current_thread().name] = result = real_complete(*args, **kwargs)
        return result

    monkeypatch.setattr(sales_services, "_complete", complete)

    results = _two_at_once(
        monkeypatch,
        {
            name: (lambda api=api: api.post(ONE_SHOT, body, format="json", HTTP_IDEMPOTENCY_KEY="same-key"))
            for name, api in zip(("first", "second"), apis, strict=True)
        },
    )
    first, second = results["first"], results["second"]

    assert not isinstance(first, Exception) and not isinstance(second, Exception), results
    assert (first.status_code, second.status_code) == (201, 201), (first.json(), second.json())
    assert second.json()["number"] == first.json()["number"]
    assert Bill.objects.count() == 1
    assert balances(shopper)["principal"] == 40_000
    assert IdempotencyRecord.objects.filter(key="same-key").count() == 1
    assert completed == {"first": True, "second": False}  # the second's queued INSERT was skipped


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_service_checkouts_with_one_key_write_one_bill(
    monkeypatch, cashier_actor, shopper, care, top_up
):
    if not ON_POSTGRESQL:
        pytest.skip("two transactions at once: PostgreSQL only")
    top_up(shopper, "1000.00")

    def checkout() -> Bill:
        return bill_checkout(
            actor=cashier_actor,
            member=shopper,
            lines=[LineInput(item_id=care.pk)],
            tenders=[TenderInput(kind="stored_value", amount=Money.parse("600.00"))],
            idempotency_key="svc-key",
        )

    results = _two_at_once(monkeypatch, {"first": checkout, "second": checkout})

    assert all(isinstance(r, Bill) for r in results.values()), results
    assert results["first"].pk == results["second"].pk
    assert Bill.objects.count() == 1
    assert balances(shopper)["principal"] == 40_000


@pytest.mark.django_db(transaction=True)
def test_a_deferred_constraint_failing_at_the_queued_commit_leaves_nothing_and_runs_no_hook(
    monkeypatch, client_for, receptionist, store1, shopper, care, top_up
):
    """The ledger's nets-to-zero trigger runs at COMMIT: an unbalanced journal fails the queued COMMIT itself."""
    if not ON_POSTGRESQL:
        pytest.skip("deferred constraint triggers: PostgreSQL only")
    top_up(shopper, "1000.00")
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))
    before = sales_state()
    real_audit = sales_services.audit_record
    notified: list[int] = []
    monkeypatch.setattr(sales_services, "bill_notify_member", lambda bill_id, charge: notified.append(bill_id))

    def audit_then_unbalance(**kwargs):  # type: ignore[no-untyped-def]
        row = real_audit(**kwargs)
        bill = kwargs.get("obj")
        if isinstance(bill, Bill) and bill.cny_journal_id is not None:
            entry = Entry.objects.filter(journal_id=bill.cny_journal_id).first()
            assert entry is not None
            Entry.objects.create(journal_id=entry.journal_id, account_id=entry.account_id, asset=entry.asset, amount=1)
        return row

    monkeypatch.setattr(sales_services, "audit_record", audit_then_unbalance)

    with pytest.raises(IntegrityError):
        api.post(
            ONE_SHOT,
            _body(shopper, care, tenders=[{"kind": "stored_value", "amount": "600.00"}]),
            format="json",
            HTTP_IDEMPOTENCY_KEY="unbalanced",
        )

    assert notified == []
    assert connection.get_autocommit()
    assert sales_state() == before
    assert balances(shopper)["principal"] == 100_000
    assert not IdempotencyRecord.objects.filter(key="unbalanced").exists()
    # and the next checkout on this connection works and commits
    monkeypatch.setattr(sales_services, "audit_record", real_audit)
    ok = api.post(
        ONE_SHOT,
        _body(shopper, care, tenders=[{"kind": "stored_value", "amount": "600.00"}]),
        format="json",
        HTTP_IDEMPOTENCY_KEY="balanced",
    )
    assert ok.status_code == 201, ok.json()
    assert notified == [Bill.objects.get().pk]


@pytest.mark.django_db(transaction=True)
def test_the_api_checkout_commits_and_its_on_commit_notice_sees_the_committed_bill(
    monkeypatch, client_for, receptionist, store1, shopper, care, top_up
):
    top_up(shopper, "1000.00")
    api = client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk))
    seen: list[tuple[str, int]] = []

    def notify(bill_id: int, charge: Any) -> None:
        from django.db import connections

        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute(f"SELECT number FROM {Bill._meta.db_table} WHERE id = %s", [bill_id])  # noqa: S608
                seen.append((cursor.fetchone()[0], charge[0]))
        finally:
            other.close()

    monkeypatch.setattr(sales_services, "bill_notify_member", notify)

    response = api.post(
        ONE_SHOT,
        _body(shopper, care, tenders=[{"kind": "stored_value", "amount": "600.00"}]),
        format="json",
        HTTP_IDEMPOTENCY_KEY="notice",
    )

    assert response.status_code == 201, response.json()
    assert seen == [(response.json()["number"], 60_000)]
    assert connection.get_autocommit()
    replay = api.post(
        ONE_SHOT,
        _body(shopper, care, tenders=[{"kind": "stored_value", "amount": "600.00"}]),
        format="json",
        HTTP_IDEMPOTENCY_KEY="notice",
    )
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert len(seen) == 1
    assert balances(shopper)["principal"] == 40_000


# --- the upgrade check after a bill, with and without the ladder's copy ----------------------------------------


def test_a_bill_crossing_silver_upgrades_her_on_the_checkout_and_on_the_front_desk(
    hq_actor, cashier_actor, shopper, care, make_member
):
    from meiye.sales.services import bill_add_line, bill_complete, bill_open

    reference_tiers(hq_actor)
    # one-shot checkout (the ladder from the copy, her earned tier and growth read after the bill): 5 × 600.00
    many = bill_checkout(
        actor=cashier_actor,
        member=shopper,
        lines=[LineInput(item_id=care.pk, quantity=5)],
        tenders=[TenderInput(kind="cash", amount=Money.parse("3000.00"))],
        idempotency_key="up-1",
    )
    assert many.member_snapshot["tier"] == "regular"
    assert MemberTier.objects.get(member=shopper).tier.code == "silver"

    # the front desk's completion (the ladder read with her earned tier and growth)
    other = make_member(cashier_actor.store, phone="13800005555")
    bill = bill_open(actor=cashier_actor, member=other)
    bill_add_line(actor=cashier_actor, bill=bill, item=care, quantity=5)
    bill_complete(
        actor=cashier_actor,
        bill=bill,
        tenders=[TenderInput(kind="cash", amount=Money.parse("3000.00"))],
        idempotency_key="up-2",
    )
    assert MemberTier.objects.get(member=other).tier.code == "silver"

    # and the next checkout prices her new tier
    assert _cash(cashier_actor, shopper, care, "540.00").member_snapshot["tier"] == "silver"


# --- run_idempotent: what is committed -------------------------------------------------------------------------


def _idempotent_request(staff, key: str):  # type: ignore[no-untyped-def]
    from rest_framework.parsers import JSONParser
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    raw = APIRequestFactory().post("/api/v1/t/", {"a": 1}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    request = Request(raw, parsers=[JSONParser()])
    request.user = staff
    return request


def _committed_actions(actions: list[str]) -> set[str]:
    from meiye.audit.models import AuditLog

    return committed_values(AuditLog, "action", actions)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("status", "committed"), [(201, True), (200, True), (409, False), (400, False)])
def test_run_idempotent_commits_a_success_and_nothing_else(org, receptionist, status, committed):
    from rest_framework.response import Response

    from meiye.api.idempotency import run_idempotent
    from meiye.audit.models import AuditLog
    from meiye.core.db.fastwrite import insert_rows

    hooks: list[int] = []
    action = f"t.status{status}"

    def call() -> Response:
        insert_rows([AuditLog(organisation=org, action=action)], keys_later=True)
        transaction.on_commit(lambda: hooks.append(status))
        return Response({"ok": status}, status=status)

    response = run_idempotent(request=_idempotent_request(receptionist, f"k-{status}"), call=call, required=True)

    assert response.status_code == status
    assert _committed_actions([action]) == ({action} if committed else set())
    assert hooks == ([status] if committed else [])
    assert IdempotencyRecord.objects.filter(key=f"k-{status}").exists() is committed
    assert connection.get_autocommit()


@pytest.mark.django_db(transaction=True)
def test_run_idempotent_inside_an_outer_transaction_commits_with_it_only(org, receptionist):
    from rest_framework.response import Response

    from meiye.api.idempotency import run_idempotent
    from meiye.audit.models import AuditLog
    from meiye.core.db.fastwrite import insert_rows

    def call() -> Response:
        insert_rows([AuditLog(organisation=org, action="t.nested")], keys_later=True)
        return Response({}, status=201)

    with pytest.raises(RuntimeError), transaction.atomic():
        run_idempotent(request=_idempotent_request(receptionist, "k-nested"), call=call, required=True)
        assert _committed_actions(["t.nested"]) == set()
        raise RuntimeError("the outer transaction rolls back")

    assert _committed_actions(["t.nested"]) == set()
    assert not IdempotencyRecord.objects.filter(key="k-nested").exists()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_first_bills_of_a_store_get_numbers_one_and_two(
    monkeypatch, client_for, receptionist, store1, shopper, make_member, care
):
    """No sequence row yet: the number's one statement finds nothing and the store's row is created; the second
    checkout waits on the first's new row and takes the next number."""
    if not ON_POSTGRESQL:
        pytest.skip("two transactions at once: PostgreSQL only")
    other = make_member(store1, phone="13800006666")
    real_next_number = sales_services._next_number
    created = threading.Event()

    def next_number(store):  # type: ignore[no-untyped-def]
        number = real_next_number(store)
        if threading.current_thread().name == "first" and not created.is_set():
            created.set()  # the store's sequence row is written, not committed
            assert wait_for_a_blocked_backend(), "the second never waited on the new sequence row"
        return number

    monkeypatch.setattr(sales_services, "_next_number", next_number)
    apis = [client_for(receptionist, HTTP_X_STORE_ID=str(store1.pk)) for _ in range(2)]
    results: dict[str, Any] = {}

    def post(name: str, api, member) -> threading.Thread:  # type: ignore[no-untyped-def]
        def run() -> None:
            try:
                if name == "second":
                    assert created.wait(10)
                results[name] = api.post(
                    ONE_SHOT,
                    _body(member, care, tenders=[{"kind": "cash", "amount": "600.00"}]),
                    format="json",
                    HTTP_IDEMPOTENCY_KEY=f"first-bill-{name}",
                )
            except Exception as error:
                results[name] = error
            finally:
                connection.close()

        return threading.Thread(target=run, name=name)

    threads = [post("first", apis[0], shopper), post("second", apis[1], other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    first, second = results["first"], results["second"]
    assert not isinstance(first, Exception) and not isinstance(second, Exception), results
    assert (first.status_code, second.status_code) == (201, 201), (first.json(), second.json())
    prefix = store1.code.upper()
    assert sorted([first.json()["number"], second.json()["number"]]) == [f"{prefix}-000001", f"{prefix}-000002"]
    assert BillSequence.objects.get(store=store1).next_value == 3
