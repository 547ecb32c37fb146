"""Review of 205c317: the one-shot checkout prices from a per-process copy of its items (``sales.services.
_ITEMS_COPY``), keyed by the organisation's catalogue stamp (``catalog.models.CatalogVersion``) that every write of
an item, a category, a store price or an earning rate sets in its transaction (``catalog.services.catalog_changed``).

What these pin: the stamp row is one row per organisation that every catalogue write locks. As first written it
was taken AFTER the written row's own lock (``category_save``, ``item_save``, ``earning_rate_set``) but BEFORE it in
``store_price_set``, and with the foreign keys checked at COMMIT (PostgreSQL: deferred) two catalogue writes that
never waited for each other deadlocked; every writer now takes it first. The rest checks what was found correct: the copy is
keyed by store, refuses other organisations' and unknown items, never serves a stamp it was not read for, leaves
the shared instances untouched by a checkout, and the migration's stamps."""

from __future__ import annotations

import threading
import uuid
from unittest import mock

import pytest
from django.apps import apps as django_apps
from django.db import connection, transaction

from meiye.catalog.models import CatalogVersion, Category, Item
from meiye.catalog.services import catalog_changed, category_save, item_save, store_price_set
from meiye.core.errors import NotFound
from meiye.core.money import Money
from meiye.org.context import Actor
from meiye.sales import services as sales_services
from meiye.sales.services import LineInput, TenderInput, bill_checkout
from tests.factories import OrganisationFactory, StaffFactory, StoreFactory
from tests.reference import reference_categories, reference_items
from tests.review.support import start, wait_for_a_blocked_backend

ON_POSTGRESQL = connection.vendor == "postgresql"
postgresql_only = pytest.mark.skipif(not ON_POSTGRESQL, reason="row locks and deferred foreign keys: PostgreSQL")


@pytest.fixture
def hq(hq_admin, actor_for, store1) -> Actor:
    return actor_for(hq_admin, store1)


@pytest.fixture
def cashier(receptionist, store1, actor_for) -> Actor:
    return actor_for(receptionist, store1)


@pytest.fixture
def cashier2(receptionist2, store2, actor_for) -> Actor:
    return actor_for(receptionist2, store2)


@pytest.fixture
def member(make_member, store1):
    return make_member(store1)


@pytest.fixture
def categories(hq) -> dict[str, Category]:
    return reference_categories(hq)


@pytest.fixture
def items(hq, categories) -> dict[str, Item]:
    return reference_items(hq, categories)


def _cash(actor, member, item_ids, amount: str):
    return bill_checkout(
        actor=actor,
        member=member,
        lines=[LineInput(item_id=pk) for pk in item_ids],
        tenders=[TenderInput(kind="cash", amount=Money.parse(amount))],
        idempotency_key=uuid.uuid4().hex,
    )


def _race(holder, waiter) -> dict[str, str]:
    """``holder`` runs its catalogue write in a transaction held open (as ``api.idempotency.run_atomic`` holds
    every API write's, through its answer and idempotency record) until ``waiter``'s write waits on a lock; then
    both finish. "completed" or the error, by name."""
    held, release = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def hold() -> None:
        with transaction.atomic():
            holder()
            held.set()
            release.wait(10)

    def wait() -> None:
        held.wait(10)
        waiter()

    threads = [start(outcomes, "holder", hold), start(outcomes, "waiter", wait)]
    try:
        assert held.wait(10)
        wait_for_a_blocked_backend(5)
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
    return outcomes


# --- the stamp row: one lock every catalogue write takes, in two orders ----------------------------------------


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_new_item_and_a_change_to_its_category_at_once_both_commit(hq, categories):
    """HQ A creates an item in 基础护理 (its INSERT, then the stamp row locked; the item's category key is checked
    at COMMIT: FOR KEY SHARE on the category); HQ B saves 基础护理 meanwhile (FOR UPDATE on the category, then
    waits for the stamp row). A's COMMIT waits for B's category lock, B waits for A's stamp: deadlock. Before
    205c317 B did not wait for A and both committed."""
    care = categories["basic_care"]

    def new_item() -> None:
        item_save(
            actor=hq,
            code="rv12i-new-facial",
            name="新护理",
            category=care,
            price=Money.parse("300.00"),
            duration_minutes=45,
        )

    def rename_category() -> None:
        category_save(
            actor=hq,
            code=care.code,
            name="基础护理（新）",
            kind=care.kind,
            earning_category=care.earning_category,
            commission_category=care.commission_category,
        )

    outcomes = _race(new_item, rename_category)

    assert outcomes == {"holder": "completed", "waiter": "completed"}


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_first_store_price_and_a_change_to_the_item_at_once_both_commit(hq, items, store1):
    """``store_price_set`` takes the stamp row FIRST, then inserts the store price (its item key checked at COMMIT);
    ``item_save`` of the same item locks the item FIRST, then waits for the stamp: the store price's COMMIT waits
    for the item's lock, the item's save for the stamp: deadlock."""
    care = items["care"]

    def store_price() -> None:
        store_price_set(actor=hq, store=store1, item=care, price=Money.parse("580.00"))

    def new_list_price() -> None:
        item_save(
            actor=hq,
            code=care.code,
            name=care.name,
            category=care.category,
            price=Money.parse("620.00"),
            duration_minutes=60,
        )

    outcomes = _race(store_price, new_list_price)

    assert outcomes == {"holder": "completed", "waiter": "completed"}


# --- the copy: what was checked and found right ---------------------------------------------------------------


@pytest.mark.django_db
def test_each_store_prices_from_its_own_copy_with_its_own_store_price(hq, cashier, cashier2, items, store2):
    care = items["care"]
    store_price_set(actor=hq, store=store2, item=care, price=Money.parse("500.00"))
    assert _cash(cashier, None, [care.pk], "600.00").payable_total_fen == 60_000
    assert _cash(cashier2, None, [care.pk], "500.00").payable_total_fen == 50_000
    # both copied now, each from its own store
    assert _cash(cashier, None, [care.pk], "600.00").payable_total_fen == 60_000
    assert _cash(cashier2, None, [care.pk], "500.00").payable_total_fen == 50_000


@pytest.mark.django_db
def test_duplicate_lines_of_a_copied_item_are_priced_each(cashier, member, items):
    care = items["care"]
    _cash(cashier, member, [care.pk], "600.00")
    bill = _cash(cashier, member, [care.pk, care.pk], "1200.00")
    assert bill.payable_total_fen == 120_000
    assert bill.points_earned == 1_200


@pytest.mark.django_db
def test_another_organisations_item_is_not_found_even_once_its_own_checkout_copied_it(cashier, member, items):
    other = OrganisationFactory(code="rv12i-other", name="别家")
    other_store = StoreFactory(organisation=other, code="o1", name="别家店")
    other_hq = Actor(
        staff=StaffFactory(organisation=other, position="hq_admin", stores=[], username="rv12i-other-hq"),
        organisation=other,
        store=other_store,
        ip="127.0.0.1",
    )
    foreign = reference_items(other_hq, reference_categories(other_hq))["care"]
    # the other organisation's copy holds its facial (keyed by its own organisation and store)
    sales_services._items_by_id(other_hq, [foreign.pk], store=other_store, version=_stamp(other.pk))

    with pytest.raises(NotFound) as refused:
        _cash(cashier, member, [items["care"].pk, foreign.pk], "1200.00")
    assert refused.value.code == "catalog.item_not_found"


def _stamp(organisation_id: int) -> int:
    return CatalogVersion.objects.values_list("version", flat=True).get(organisation_id=organisation_id)


@pytest.mark.django_db
def test_a_copy_of_an_older_stamp_is_never_served_to_a_newer_one(cashier, member, items, org):
    care = items["care"]
    _cash(cashier, member, [care.pk], "600.00")
    Item.objects.filter(pk=care.pk).update(price_fen=61_000)  # around the services…
    catalog_changed(org.pk)  # …then any write through them

    assert _cash(cashier, member, [care.pk], "610.00").payable_total_fen == 61_000


@pytest.mark.django_db
def test_a_copy_is_read_again_at_its_age_limit_not_extended_by_items_added_later(cashier, member, items):
    care, serum = items["care"], items["serum"]
    clock = [1_000.0]
    with mock.patch.object(sales_services.time, "monotonic", lambda: clock[0]):
        _cash(cashier, member, [care.pk], "600.00")
        clock[0] += 59.0
        _cash(cashier, member, [serum.pk], "250.00")  # added to the 59-second-old copy
        Item.objects.filter(pk=care.pk).update(price_fen=61_000)  # around the services
        clock[0] += 1.0  # the copy (from the first read) is 60 s old
        assert _cash(cashier, member, [care.pk], "610.00").payable_total_fen == 61_000


@pytest.mark.django_db
def test_a_checkout_leaves_the_shared_instances_as_copied(cashier, member, items, store1, org):
    """The copied items and their categories are shared by every checkout of the process: a checkout (pricing,
    offers, earning, the bill's rows in memory for the answer) must not set anything on them."""
    care, serum = items["care"], items["serum"]
    _cash(cashier, member, [care.pk, serum.pk], "850.00")
    copied = sales_services._ITEMS_COPY[(org.pk, store1.pk)][2]

    def shape(item: Item) -> tuple:
        return (
            dict(item.__dict__, _state=None),
            set(item._state.fields_cache),
            dict(item.category.__dict__, _state=None),
            set(item.category._state.fields_cache),
            getattr(item, "_prefetched_objects_cache", None),
        )

    before = {pk: shape(item) for pk, item in copied.items()}
    bill = _cash(cashier, member, [care.pk, serum.pk, care.pk], "1450.00")
    [line.item.category.earning_category for line in bill.lines.all()]  # as the answer reads them

    assert sales_services._ITEMS_COPY[(org.pk, store1.pk)][2] is copied  # nothing lacked: the same copy
    assert {pk: shape(item) for pk, item in copied.items()} == before


@pytest.mark.django_db
def test_the_migration_stamps_every_existing_organisation_apart(org):
    from importlib import import_module

    stamp_existing = import_module("meiye.catalog.migrations.0003_catalog_version").stamp_existing
    others = [OrganisationFactory(code=f"rv12i-{n}", name=f"机构{n}") for n in range(3)]
    CatalogVersion.objects.all().delete()

    stamp_existing(django_apps, None)

    stamps = dict(CatalogVersion.objects.values_list("organisation_id", "version"))
    assert set(stamps) >= {org.pk, *(o.pk for o in others)}
    assert 0 not in stamps.values()
    assert len(set(stamps.values())) == len(stamps)
