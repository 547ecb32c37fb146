"""Catalogue (项目与产品): categories and items for everyone at the till; changes by HQ (`catalog.manage`);
a store's own prices by its manager or HQ (`catalog.store_price`)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from meiye.api import serializers_catalog as s
from meiye.api.fields import parse_amount
from meiye.api.idempotency import idempotent
from meiye.api.params import bool_param, choice_param
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.catalog.models import Category, Item, ItemKind
from meiye.catalog.selectors import categories, item_by_barcode, item_get, items, store_prices
from meiye.catalog.services import category_save, item_save, store_price_set
from meiye.core.errors import ValidationFailed, not_found
from meiye.core.money import Money
from meiye.org.context import Actor
from meiye.org.selectors import store_get

CATALOG = "catalog"

INCLUDE_INACTIVE = OpenApiParameter(
    "include_inactive", bool, description="Also list inactive (no longer sold) entries. Default false."
)


def _priced(actor: Actor, found: list[Item]) -> list[dict[str, Any]]:
    """Each item with its list price and the acting store's price (one query for the store prices)."""
    store = actor.store
    overrides = store_prices(store, [item.pk for item in found]) if store is not None else {}
    return [
        {
            "item": item,
            "list_price": Money(item.price_fen),
            "store_price": Money(overrides.get(item.pk, item.price_fen)),
            "has_store_price": item.pk in overrides,
            "store_id": store.pk if store is not None else None,
        }
        for item in found
    ]


def _category(actor: Actor, pk: int | str) -> Category:
    found = categories(actor, active_only=False).filter(pk=pk).first() if str(pk).isdigit() else None
    if found is None:
        raise not_found("catalog.category_not_found", "分类", "Category")
    return found


def _category_for_item(actor: Actor, category_id: int) -> Category:
    found = categories(actor, active_only=False).filter(pk=category_id).first()
    if found is None:
        raise ValidationFailed(
            "catalog.invalid_category",
            zh="分类：找不到该分类。",
            en="category_id: no such category.",
            field="category_id",
        )
    return found


class CategoryViewSet(ActorMixin, viewsets.GenericViewSet):
    """Categories (分类): each says how its items earn points and commission."""

    queryset = Category.objects.none()  # only for the schema; reads go through catalog.selectors

    @extend_schema(
        tags=[CATALOG],
        summary="Categories",
        parameters=[INCLUDE_INACTIVE],
        responses={200: s.CategorySerializer(many=True), **problems(400)},
    )
    def list(self, request: Request) -> Response:
        active_only = not bool_param(request, "include_inactive")
        page = self.paginate_queryset(categories(self.actor, active_only=active_only))
        return self.get_paginated_response(s.CategorySerializer(page, many=True).data)

    @extend_schema(tags=[CATALOG], summary="A category", responses={200: s.CategorySerializer, **problems(404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.CategorySerializer(_category(self.actor, pk)).data)

    @extend_schema(
        tags=[CATALOG],
        summary="Create or replace a category (HQ)",
        description="Keyed by `code`: 201 when new, 200 when the category with that code was replaced. "
        "Needs `catalog.manage`.",
        request=s.CategoryWriteSerializer,
        responses={201: s.CategorySerializer, 200: s.CategorySerializer, **problems(400, 403, 409)},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        form = s.CategoryWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        existed = categories(self.actor, active_only=False).filter(code=data["code"]).exists()
        category = category_save(actor=self.actor, **data)
        return Response(
            s.CategorySerializer(category).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        )

    @extend_schema(
        tags=[CATALOG],
        summary="Change a category (HQ)",
        description="Only the fields sent change. Needs `catalog.manage`.",
        request=s.CategoryPatchSerializer,
        responses={200: s.CategorySerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def partial_update(self, request: Request, pk: str) -> Response:
        category = _category(self.actor, pk)
        form = s.CategoryPatchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        current: dict[str, Any] = {
            "name": category.name,
            "kind": category.kind,
            "earning_category": category.earning_category,
            "commission_category": category.commission_category,
            "order": category.order,
            "is_active": category.is_active,
        }
        saved = category_save(actor=self.actor, code=category.code, **(current | dict(form.validated_data)))
        return Response(s.CategorySerializer(saved).data)


class ItemViewSet(ActorMixin, viewsets.GenericViewSet):
    """Services and products (项目与产品) with the acting store's price."""

    queryset = Item.objects.none()  # only for the schema; reads go through catalog.selectors

    @extend_schema(
        tags=[CATALOG],
        summary="Items with the acting store's price",
        parameters=[
            OpenApiParameter("q", str, description="Name (contains), code, SKU or barcode (exact)."),
            OpenApiParameter("kind", str, enum=ItemKind.values, description="service or product."),
            INCLUDE_INACTIVE,
        ],
        responses={200: s.ItemSerializer(many=True), **problems(400)},
    )
    def list(self, request: Request) -> Response:
        found = items(
            self.actor,
            query=request.query_params.get("q", ""),
            kind=choice_param(request, "kind", ItemKind.values),
            active_only=not bool_param(request, "include_inactive"),
        ).order_by("category__order", "category_id", "id")
        page = self.paginate_queryset(found)
        return self.get_paginated_response(s.ItemSerializer(_priced(self.actor, list(page or [])), many=True).data)

    @extend_schema(tags=[CATALOG], summary="An item", responses={200: s.ItemSerializer, **problems(404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.ItemSerializer(_priced(self.actor, [item_get(self.actor, pk)])[0]).data)

    @extend_schema(
        tags=[CATALOG],
        summary="A product by barcode",
        description="Scanning at the till: the active product with this barcode, 404 `catalog.item_not_found`.",
        responses={200: s.ItemSerializer, **problems(404)},
    )
    @action(detail=False, methods=["get"], url_path=r"barcode/(?P<code>[^/]+)")
    def barcode(self, request: Request, code: str) -> Response:
        return Response(s.ItemSerializer(_priced(self.actor, [item_by_barcode(self.actor, code)])[0]).data)

    @extend_schema(
        tags=[CATALOG],
        summary="Create or replace an item (HQ)",
        description="Keyed by `code`: 201 when new, 200 when the item with that code was replaced. "
        "Its kind follows the category. Needs `catalog.manage`.",
        request=s.ItemWriteSerializer,
        responses={201: s.ItemSerializer, 200: s.ItemSerializer, **problems(400, 403, 409)},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        form = s.ItemWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        code = form.validated_data["code"]
        category = _category_for_item(self.actor, form.validated_data["category_id"])
        existed = items(self.actor, active_only=False).filter(code=code).exists()
        item = item_save(actor=self.actor, code=code, category=category, **form.item_kwargs())
        return Response(
            s.ItemSerializer(_priced(self.actor, [item])[0]).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )

    @extend_schema(
        tags=[CATALOG],
        summary="Change an item (HQ)",
        description="Only the fields sent change. Needs `catalog.manage`.",
        request=s.ItemPatchSerializer,
        responses={200: s.ItemSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def partial_update(self, request: Request, pk: str) -> Response:
        item = item_get(self.actor, pk)
        form = s.ItemPatchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        category_id = form.validated_data.get("category_id")
        category = item.category if category_id is None else _category_for_item(self.actor, category_id)
        current: dict[str, Any] = {
            "name": item.name,
            "price": Money(item.price_fen),
            "duration_minutes": item.duration_minutes,
            "sku": item.sku,
            "barcode": item.barcode,
            "unit": item.unit,
            "product_type": item.product_type,
            "is_active": item.is_active,
        }
        saved = item_save(actor=self.actor, code=item.code, category=category, **(current | form.item_kwargs()))
        return Response(s.ItemSerializer(_priced(self.actor, [saved])[0]).data)


class StorePriceView(ActorMixin, APIView):
    """A store's own price for an item (门店价). Needs `catalog.store_price` in a store you may see."""

    def _target(self, store_id: int, item_id: int) -> tuple[Any, Item]:
        return store_get(self.actor, store_id), item_get(self.actor, item_id)

    @extend_schema(
        tags=[CATALOG],
        summary="Set a store's own price for an item",
        request=s.StorePriceWriteSerializer,
        responses={200: s.StorePriceSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def put(self, request: Request, store_id: int, item_id: int) -> Response:
        store, item = self._target(store_id, item_id)
        form = s.StorePriceWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        price = parse_amount(form.validated_data["price"], field="price")
        row = store_price_set(actor=self.actor, store=store, item=item, price=price)
        assert row is not None
        return Response(self._shaped(store.pk, item, Money(row.price_fen)))

    @extend_schema(
        tags=[CATALOG],
        summary="Clear a store's own price (the list price applies again)",
        responses={200: s.StorePriceSerializer, **problems(403, 404, 409)},
    )
    @idempotent
    def delete(self, request: Request, store_id: int, item_id: int) -> Response:
        store, item = self._target(store_id, item_id)
        store_price_set(actor=self.actor, store=store, item=item, price=None)
        return Response(self._shaped(store.pk, item, None))

    @staticmethod
    def _shaped(store_id: int, item: Item, price: Money | None) -> dict[str, Any]:
        list_price = Money(item.price_fen)
        data: dict[str, Any] = s.StorePriceSerializer(
            {
                "store_id": store_id,
                "item_id": item.pk,
                "price": price,
                "list_price": list_price,
                "effective_price": price if price is not None else list_price,
            }
        ).data
        return data
