"""Reads of the catalogue, with the price that applies in a store."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, Q, QuerySet, Subquery

from meiye.catalog.models import CatalogVersion, Category, Item, ItemKind, StorePrice
from meiye.core.errors import not_found
from meiye.core.money import Money
from meiye.org.context import Actor
from meiye.org.models import Store


def categories(actor: Actor, *, active_only: bool = True) -> QuerySet[Category]:
    qs = Category.objects.filter(organisation=actor.organisation)
    return qs.filter(is_active=True) if active_only else qs


def items(actor: Actor, *, query: str = "", kind: str = "", active_only: bool = True) -> QuerySet[Item]:
    qs = Item.objects.filter(organisation=actor.organisation).select_related("category")
    if active_only:
        qs = qs.filter(is_active=True)
    if kind:
        qs = qs.filter(kind=kind)
    query = query.strip()
    if query:
        qs = qs.filter(Q(name__icontains=query) | Q(code__iexact=query) | Q(barcode=query) | Q(sku__iexact=query))
    return qs


def item_get(actor: Actor, item_id: int | str) -> Item:
    try:
        return Item.objects.select_related("category").get(organisation=actor.organisation, pk=int(item_id))
    except (Item.DoesNotExist, ValueError, TypeError):
        raise not_found("catalog.item_not_found", "项目或产品", "Item") from None


def item_by_barcode(actor: Actor, barcode: str) -> Item:
    item = items(actor, kind=ItemKind.PRODUCT).filter(barcode=barcode.strip()).first()
    if item is None:
        raise not_found("catalog.item_not_found", f"条码为 {barcode} 的产品", f"Product with barcode {barcode}")
    return item


def store_prices(store: Store, item_ids: list[int]) -> dict[int, int]:
    """Store overrides, in one query: item id -> price in fen."""
    rows = StorePrice.objects.filter(store=store, item_id__in=item_ids).values_list("item_id", "price_fen")
    return dict(rows)


def price_in_store(store: Store | None, item: Item) -> Money:
    """The price a store charges before any member price, promotion or adjustment."""
    if store is not None:
        override = StorePrice.objects.filter(store=store, item=item).values_list("price_fen", flat=True).first()
        if override is not None:
            return Money(override)
    return Money(item.price_fen)


@dataclass(frozen=True)
class PricedItem:
    item: Item
    list_price: Money
    store_price: Money


def priced_items(actor: Actor, store: Store, *, query: str = "", kind: str = "", limit: int = 50) -> list[PricedItem]:
    found = list(items(actor, query=query, kind=kind)[:limit])
    overrides = store_prices(store, [i.pk for i in found])
    return [PricedItem(i, Money(i.price_fen), Money(overrides.get(i.pk, i.price_fen))) for i in found]


def catalog_version_subquery(organisation_ref: str = "organisation_id") -> Subquery:
    """The organisation's catalogue stamp (``CatalogVersion``; NULL: none yet, so the items are read), as an
    expression read with a checkout's store row."""
    return Subquery(CatalogVersion.objects.filter(organisation_id=OuterRef(organisation_ref)).values("version")[:1])
