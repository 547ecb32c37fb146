from __future__ import annotations

import pytest

from meiye.audit.models import AuditLog
from meiye.catalog.models import Item, StorePrice
from meiye.catalog.selectors import item_by_barcode, price_in_store, priced_items
from meiye.catalog.services import category_save, item_save, store_price_set
from meiye.core.errors import NotFound, PermissionDenied, ValidationFailed
from meiye.core.money import Money


@pytest.fixture
def care(hq_admin, actor_for):
    return category_save(
        actor=actor_for(hq_admin),
        code="basic-care",
        name="基础护理",
        kind="service",
        earning_category="basic_care",
        commission_category="service",
    )


@pytest.fixture
def retail(hq_admin, actor_for):
    return category_save(
        actor=actor_for(hq_admin),
        code="retail",
        name="零售产品",
        kind="product",
        earning_category="retail",
        commission_category="product",
    )


def test_service_and_product_with_list_and_store_price(care, retail, hq_admin, manager, actor_for, store1, store2):
    hq = actor_for(hq_admin)
    facial = item_save(
        actor=hq, code="hydra", name="水光补水", category=care, price=Money.parse("680.00"), duration_minutes=60
    )
    serum = item_save(
        actor=hq, code="serum", name="精华液", category=retail, price=Money.parse("260"), barcode="6901234567892"
    )
    assert (facial.kind, facial.price_fen, facial.duration_minutes) == ("service", 68000, 60)
    assert (serum.kind, serum.product_type, serum.duration_minutes) == ("product", "retail", None)

    store_price_set(actor=actor_for(manager, store1), store=store1, item=facial, price=Money.parse("650.00"))

    assert price_in_store(store1, facial) == Money(65000)
    assert price_in_store(store2, facial) == Money(68000)
    priced = {p.item.code: p.store_price for p in priced_items(hq, store1)}
    assert priced == {"hydra": Money(65000), "serum": Money(26000)}
    assert item_by_barcode(hq, "6901234567892") == serum
    assert AuditLog.objects.filter(action="catalog.store_price_set").count() == 1


def test_store_manager_cannot_price_another_store_or_edit_the_catalogue(care, hq_admin, manager, actor_for, store2):
    facial = item_save(
        actor=actor_for(hq_admin), code="hydra", name="水光补水", category=care, price=Money(68000), duration_minutes=60
    )
    with pytest.raises(NotFound):
        store_price_set(actor=actor_for(manager), store=store2, item=facial, price=Money(100))
    with pytest.raises(PermissionDenied):
        item_save(actor=actor_for(manager), code="x", name="x", category=care, price=Money(1), duration_minutes=10)
    assert StorePrice.objects.count() == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"code": "Bad Code"}, "code"),
        ({"name": " "}, "name"),
        ({"price": Money(-1)}, "price"),
        ({"duration_minutes": None}, "duration_minutes"),
        ({"duration_minutes": 0}, "duration_minutes"),
    ],
)
def test_bad_item_input_names_the_field(care, hq_admin, actor_for, kwargs, field):
    args = {"code": "facial", "name": "面部护理", "category": care, "price": Money(29800), "duration_minutes": 60}
    args.update(kwargs)
    with pytest.raises(ValidationFailed) as exc:
        item_save(actor=actor_for(hq_admin), **args)
    assert exc.value.field == field
    assert Item.objects.count() == 0


def test_barcode_is_unique_across_products(retail, hq_admin, actor_for):
    hq = actor_for(hq_admin)
    item_save(actor=hq, code="a", name="A", category=retail, price=Money(100), barcode="123")
    with pytest.raises(ValidationFailed) as exc:
        item_save(actor=hq, code="b", name="B", category=retail, price=Money(100), barcode="123")
    assert exc.value.code == "catalog.barcode_taken"


def test_price_parsed_from_yuan_never_float():
    assert Money.parse("298") == Money(29800)
    with pytest.raises(ValidationFailed):
        Money.parse("2.985")


def test_category_code_longer_than_its_column_is_refused(hq_admin, actor_for):
    with pytest.raises(ValidationFailed) as exc:
        category_save(
            actor=actor_for(hq_admin),
            code="c" * 33,
            name="过长",
            kind="service",
            earning_category="basic_care",
            commission_category="service",
        )
    assert exc.value.field == "code"
