"""Writes for the catalogue. Prices are parsed from yuan strings into integer fen at the edge."""

from __future__ import annotations

import re

from django.db import transaction

from meiye.audit.services import audit_record
from meiye.catalog.models import (
    CatalogVersion,
    Category,
    CommissionCategory,
    EarningCategory,
    Item,
    ItemKind,
    ProductType,
    StorePrice,
)
from meiye.core.errors import ValidationFailed
from meiye.core.money import Money
from meiye.core.stamps import new_stamp
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.org.roles import Perm

_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
CATEGORY_CODE_MAX = 32
ITEM_CODE_MAX = 40


def catalog_changed(organisation_id: int) -> None:
    """Set a new catalogue stamp (``CatalogVersion``) in the caller's transaction: every write of an item, a
    category, a store price or an earning rate calls it, so no checkout prices from a copy older than the write
    once it has committed. A write around these services is priced by the copies when the next write through them
    commits, or when a copy is older than ``sales.services.ITEMS_COPY_SECONDS``.

    Called FIRST in the writer's transaction, before it locks anything else: the stamp row is one per organisation,
    so its catalogue writes queue on it, and in one order (locked after an item or category, it would deadlock
    with a write of that item's category, whose foreign key is checked at COMMIT on PostgreSQL)."""
    CatalogVersion.objects.update_or_create(organisation_id=organisation_id, defaults={"version": new_stamp()})


def _check_choice(value: str, choices: type, field: str) -> str:
    if value not in choices.values:  # type: ignore[attr-defined]
        raise ValidationFailed(
            f"catalog.invalid_{field}",
            zh=f"{field}：{value!r} 不是有效选项。",
            en=f"{field}: {value!r} is not a valid choice.",
            field=field,
        )
    return value


def _check_code(code: str, max_length: int) -> str:
    if not _CODE_RE.match(code or "") or len(code) > max_length:
        raise ValidationFailed(
            "catalog.invalid_code",
            zh=f"编码：小写字母或数字开头，只含小写字母、数字、- 和 _，最多 {max_length} 个字符。",
            en=f"code: lowercase letters, digits, - and _ only, at most {max_length} characters.",
            field="code",
        )
    return code


def _check_price(price: Money, field: str = "price") -> int:
    if price.is_negative:
        raise ValidationFailed(
            "catalog.negative_price", zh="价格：不能为负数。", en=f"{field}: must not be negative.", field=field
        )
    return price.fen


def category_save(
    *,
    actor: Actor,
    code: str,
    name: str,
    kind: str,
    earning_category: str,
    commission_category: str,
    order: int = 0,
    is_active: bool = True,
) -> Category:
    actor.require(Perm.CATALOG_MANAGE)
    _check_code(code, CATEGORY_CODE_MAX)
    _check_choice(kind, ItemKind, "kind")
    _check_choice(earning_category, EarningCategory, "earning_category")
    _check_choice(commission_category, CommissionCategory, "commission_category")
    if not name.strip():
        raise ValidationFailed("input.required", zh="名称：必填。", en="name: required.", field="name")
    with transaction.atomic():
        catalog_changed(actor.organisation.pk)  # first: see catalog_changed
        category, created = Category.objects.update_or_create(
            organisation=actor.organisation,
            code=code,
            defaults={
                "name": name.strip(),
                "kind": kind,
                "earning_category": earning_category,
                "commission_category": commission_category,
                "order": order,
                "is_active": is_active,
            },
        )
        audit_record(actor=actor, action="catalog.category_" + ("create" if created else "update"), obj=category)
    return category


def item_save(
    *,
    actor: Actor,
    code: str,
    name: str,
    category: Category,
    price: Money,
    duration_minutes: int | None = None,
    sku: str = "",
    barcode: str = "",
    unit: str = "",
    product_type: str = "",
    is_active: bool = True,
) -> Item:
    """Create or update (by code) a service or product; its kind follows its category."""
    actor.require(Perm.CATALOG_MANAGE)
    _check_code(code, ITEM_CODE_MAX)
    if category.organisation_id != actor.organisation.pk:
        raise ValidationFailed("catalog.invalid_category", zh="分类无效。", en="category: not found.", field="category")
    if not name.strip():
        raise ValidationFailed("input.required", zh="名称：必填。", en="name: required.", field="name")
    price_fen = _check_price(price)
    if category.kind == ItemKind.SERVICE:
        if not duration_minutes or duration_minutes <= 0 or duration_minutes > 24 * 60:
            raise ValidationFailed(
                "catalog.invalid_duration",
                zh="时长：服务需要 1 到 1440 分钟的时长。",
                en="duration_minutes: a service needs a duration of 1 to 1440 minutes.",
                field="duration_minutes",
            )
        product_type = ""
    elif category.kind == ItemKind.PACKAGE:
        # A package (计次卡/套餐) is sold like a product but holds no stock: no duration, no product type.
        duration_minutes = None
        product_type = ""
    else:
        duration_minutes = None
        _check_choice(product_type or ProductType.RETAIL, ProductType, "product_type")
        product_type = product_type or ProductType.RETAIL
    if barcode and Item.objects.filter(organisation=actor.organisation, barcode=barcode).exclude(code=code).exists():
        raise ValidationFailed(
            "catalog.barcode_taken",
            zh=f"条码：{barcode} 已用于另一个产品。",
            en=f"barcode: {barcode} is already used by another product.",
            field="barcode",
        )
    with transaction.atomic():
        catalog_changed(actor.organisation.pk)  # first: see catalog_changed
        item, created = Item.objects.update_or_create(
            organisation=actor.organisation,
            code=code,
            defaults={
                "category": category,
                "kind": category.kind,
                "name": name.strip(),
                "price_fen": price_fen,
                "duration_minutes": duration_minutes,
                "sku": sku.strip(),
                "barcode": barcode.strip(),
                "unit": unit.strip(),
                "product_type": product_type,
                "is_active": is_active,
            },
        )
        audit_record(
            actor=actor,
            action="catalog.item_" + ("create" if created else "update"),
            obj=item,
            detail={"price_fen": price_fen},
        )
    return item


def store_price_set(*, actor: Actor, store: Store, item: Item, price: Money | None) -> StorePrice | None:
    """Set a store's own price for an item, or remove it (``price=None``) to use the list price."""
    actor.require(Perm.STORE_PRICE_SET)
    from meiye.org.selectors import store_get

    store = store_get(actor, store.pk)
    with transaction.atomic():
        catalog_changed(actor.organisation.pk)  # first: see catalog_changed
        if price is None:
            StorePrice.objects.filter(store=store, item=item).delete()
            audit_record(actor=actor, action="catalog.store_price_clear", obj=item, detail={"store": store.pk})
            return None
        row, _ = StorePrice.objects.update_or_create(
            store=store, item=item, defaults={"price_fen": _check_price(price)}
        )
        audit_record(
            actor=actor, action="catalog.store_price_set", obj=item, detail={"store": store.pk, "price_fen": price.fen}
        )
    return row
