"""The checkout prices from its process's copy of the items, keyed by the organisation's catalogue stamp (read with
its store row): no items read per checkout, and every write through the catalogue's services — an item, a
category, a store price, an earning rate — is priced by the next checkout. A write around them is priced once the
copy is older than ``ITEMS_COPY_SECONDS``."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from meiye.catalog.models import CatalogVersion, Item
from meiye.catalog.services import category_save, item_save, store_price_set
from meiye.core.errors import NotFound, ValidationFailed
from meiye.core.money import Money
from meiye.loyalty.services import earning_rate_set
from meiye.sales import services as sales_services
from meiye.sales.services import LineInput, TenderInput, bill_checkout


def _cash(cashier, member, item, amount: str):
    return bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=item.pk)],
        tenders=[TenderInput(kind="cash", amount=Money.parse(amount))],
        idempotency_key=uuid.uuid4().hex,
    )


def _resave(hq, item, price: str, *, is_active: bool = True) -> None:
    """The facial saved again through ``item_save`` with a new price (or deactivated)."""
    item_save(
        actor=hq,
        code=item.code,
        name=item.name,
        category=item.category,
        price=Money.parse(price),
        duration_minutes=item.duration_minutes,
        is_active=is_active,
    )


def _item_reads(ctx: CaptureQueriesContext) -> int:
    return sum(1 for q in ctx.captured_queries if q["sql"].lstrip().startswith('SELECT "catalog_item"."id"'))


def _version(org) -> int | None:
    return CatalogVersion.objects.filter(organisation=org).values_list("version", flat=True).first()


def test_every_write_through_the_catalogue_sets_a_new_stamp(hq, org, categories, care, store1):
    seen = {_version(org)}
    _resave(hq, care, "620.00")
    seen.add(_version(org))
    store_price_set(actor=hq, store=store1, item=care, price=Money.parse("580.00"))
    seen.add(_version(org))
    earning_rate_set(actor=hq, earning_category="basic_care", points_per_yuan=2)
    seen.add(_version(org))
    category_save(
        actor=hq,
        code="basic-care",
        name="基础护理",
        kind="service",
        earning_category="basic_care",
        commission_category="service",
        order=3,
    )
    seen.add(_version(org))

    assert None not in seen
    assert len(seen) == 5


def test_a_checkout_reads_no_item_once_copied_and_prices_each_change(hq, cashier, member, care, store1):
    _cash(cashier, member, care, "600.00")  # the process copies the item

    with CaptureQueriesContext(connection) as ctx:
        bill = _cash(cashier, member, care, "600.00")
    assert _item_reads(ctx) == 0
    assert bill.points_earned == 600  # basic care: 1 point per 元

    # a new list price, then a store's own price, then a new rate: each priced by the very next checkout
    _resave(hq, care, "650.00")
    with CaptureQueriesContext(connection) as ctx:
        assert _cash(cashier, member, care, "650.00").payable_total_fen == 65_000
    assert _item_reads(ctx) == 1
    store_price_set(actor=hq, store=store1, item=care, price=Money.parse("520.00"))
    assert _cash(cashier, member, care, "520.00").payable_total_fen == 52_000
    earning_rate_set(actor=hq, earning_category="basic_care", points_per_yuan=3)
    assert _cash(cashier, member, care, "520.00").points_earned == 1_560
    with CaptureQueriesContext(connection) as ctx:
        _cash(cashier, member, care, "520.00")
    assert _item_reads(ctx) == 0


def test_a_category_moved_to_another_earning_category_earns_by_it_at_once(hq, cashier, member, care):
    _cash(cashier, member, care, "600.00")
    category_save(
        actor=hq,
        code="basic-care",
        name="基础护理",
        kind="service",
        earning_category="anti_ageing",
        commission_category="service",
    )

    assert _cash(cashier, member, care, "600.00").points_earned == 1_800  # anti-ageing: 3 points per 元


def test_an_item_deactivated_is_refused_by_the_next_checkout(hq, cashier, member, care):
    _cash(cashier, member, care, "600.00")
    _resave(hq, care, "600.00", is_active=False)

    with pytest.raises(ValidationFailed):
        _cash(cashier, member, care, "600.00")


def test_an_item_the_copy_lacks_is_read_alone_and_an_unknown_one_is_not_found(cashier, member, care, serum, org):
    _cash(cashier, member, care, "600.00")
    real_all = sales_services._ITEMS_PRICED.all
    asked: list[tuple] = []

    def spy(*args, **kwargs):
        asked.append(args)
        return real_all(*args, **kwargs)

    with mock.patch.object(sales_services._ITEMS_PRICED, "all", spy):
        bill = bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk), LineInput(item_id=serum.pk)],
            tenders=[TenderInput(kind="cash", amount=Money.parse("850.00"))],
            idempotency_key=uuid.uuid4().hex,
        )
    assert bill.payable_total_fen == 85_000
    assert asked == [(org.pk, cashier.store.pk, serum.pk)]  # the serum only: the facial was copied

    with pytest.raises(NotFound):
        bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk), LineInput(item_id=999_999)],
            tenders=[TenderInput(kind="cash", amount=Money.parse("600.00"))],
            idempotency_key=uuid.uuid4().hex,
        )


def test_a_write_around_the_services_is_priced_once_the_copy_is_old(cashier, member, care, monkeypatch):
    _cash(cashier, member, care, "600.00")
    Item.objects.filter(pk=care.pk).update(price_fen=61_000)  # a data fix in SQL: no new stamp

    assert _cash(cashier, member, care, "600.00").payable_total_fen == 60_000  # the copy, still young

    monkeypatch.setattr(sales_services, "ITEMS_COPY_SECONDS", 0.0)
    assert _cash(cashier, member, care, "610.00").payable_total_fen == 61_000


def test_without_a_stamp_the_items_are_read_each_time(cashier, member, care, org):
    CatalogVersion.objects.filter(organisation=org).delete()  # as before the stamp existed
    _cash(cashier, member, care, "600.00")

    with CaptureQueriesContext(connection) as ctx:
        _cash(cashier, member, care, "600.00")
    assert _item_reads(ctx) == 1
