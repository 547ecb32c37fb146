"""Catalogue settings: categories, services and products (HQ, ``catalog.manage``) and the current store's
own prices (store managers and HQ, ``catalog.store_price``)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from meiye.catalog.models import Category, Item
from meiye.catalog.selectors import categories, item_get, items, priced_items
from meiye.catalog.services import category_save, item_save, store_price_set
from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.frontdesk.forms_sales import CategoryForm, ItemFilterForm, ItemForm, StorePriceForm, add_sales_error
from meiye.frontdesk.views.common import get_actor, safe_next, staff_view
from meiye.org.roles import Perm

PRICE_ROWS = 200


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """Render a catalogue page with what its tabs need."""
    actor = get_actor(request)
    context = {
        **context,
        "catalog_manage": actor.can(Perm.CATALOG_MANAGE),
        "store_price": actor.can(Perm.STORE_PRICE_SET),
    }
    return render(request, template, context, status=status)


@staff_view()
@require_GET
def catalog_index(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    if actor.can(Perm.CATALOG_MANAGE):
        return redirect("frontdesk:catalog_items")
    if actor.can(Perm.STORE_PRICE_SET):
        return redirect("frontdesk:catalog_prices")
    raise DjangoPermissionDenied("catalog")


# --- Categories -------------------------------------------------------------------------------------------------


@staff_view(Perm.CATALOG_MANAGE)
@require_GET
def catalog_categories(request: HttpRequest) -> HttpResponse:
    rows = categories(get_actor(request), active_only=False)
    return _render(request, "frontdesk/catalog/categories.html", {"categories": rows, "tab": "categories"})


def _category_of(request: HttpRequest, pk: int | None) -> Category | None:
    if pk is None:
        return None
    found = categories(get_actor(request), active_only=False).filter(pk=pk).first()
    if found is None:
        raise Http404("category")
    return found


@staff_view(Perm.CATALOG_MANAGE)
@require_http_methods(["GET", "POST"])
def catalog_category_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    actor = get_actor(request)
    existing = _category_of(request, pk)
    initial: dict[str, Any] = {}
    if existing is not None:
        initial = {
            f: getattr(existing, f)
            for f in ("code", "name", "kind", "earning_category", "commission_category", "order", "is_active")
        }
    form = CategoryForm(request.POST or None, initial=initial, editing=existing is not None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            saved = category_save(
                actor=actor,
                code=existing.code if existing is not None else d["code"],
                name=d["name"],
                kind=d["kind"],
                earning_category=d["earning_category"],
                commission_category=d["commission_category"],
                order=d["order"],
                is_active=d["is_active"],
            )
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(request, _("分类 %(name)s 已保存。") % {"name": saved.name})
            return redirect("frontdesk:catalog_categories")
    context = {"form": form, "category": existing, "tab": "categories"}
    return _render(request, "frontdesk/catalog/category_form.html", context, status=400 if form.errors else 200)


# --- Items ---------------------------------------------------------------------------------------------------------


@staff_view(Perm.CATALOG_MANAGE)
@require_GET
def catalog_items(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    form = ItemFilterForm(request.GET)
    query, kind = "", ""
    if form.is_valid():
        query, kind = form.cleaned_data["q"], form.cleaned_data["kind"]
    rows = items(actor, query=query, kind=kind, active_only=False)
    context = {"form": form, "items": rows, "tab": "items", "query": query}
    return _render(request, "frontdesk/catalog/items.html", context)


@staff_view(Perm.CATALOG_MANAGE)
@require_http_methods(["GET", "POST"])
def catalog_item_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    actor = get_actor(request)
    existing: Item | None = item_get(actor, pk) if pk is not None else None
    initial: dict[str, Any] = {}
    if existing is not None:
        initial = {
            "code": existing.code,
            "name": existing.name,
            "category": existing.category_id,
            "price": Money(existing.price_fen),
            "duration_minutes": existing.duration_minutes,
            "sku": existing.sku,
            "barcode": existing.barcode,
            "unit": existing.unit,
            "product_type": existing.product_type,
            "is_active": existing.is_active,
        }
    form = ItemForm(
        request.POST or None,
        initial=initial,
        categories=list(categories(actor, active_only=False)),
        editing=existing is not None,
    )
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            saved = item_save(
                actor=actor,
                code=existing.code if existing is not None else d["code"],
                name=d["name"],
                category=d["category"],
                price=d["price"],
                duration_minutes=d["duration_minutes"],
                sku=d["sku"],
                barcode=d["barcode"],
                unit=d["unit"],
                product_type=d["product_type"],
                is_active=d["is_active"],
            )
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(request, _("%(name)s 已保存。") % {"name": saved.name})
            return redirect("frontdesk:catalog_items")
    context = {"form": form, "item": existing, "tab": "items"}
    return _render(request, "frontdesk/catalog/item_form.html", context, status=400 if form.errors else 200)


# --- Store prices ---------------------------------------------------------------------------------------------------


def _prices_page(
    request: HttpRequest, *, error_form: StorePriceForm | None = None, error_item: int | None = None, status: int = 200
) -> HttpResponse:
    actor = get_actor(request)
    store = actor.store
    search = ItemFilterForm(request.GET)
    query, kind = "", ""
    if search.is_valid():
        query, kind = search.cleaned_data["q"], search.cleaned_data["kind"]
    rows = []
    if store is not None:
        for priced in priced_items(actor, store, query=query, kind=kind, limit=PRICE_ROWS):
            form = error_form if error_item == priced.item.pk else None
            rows.append(
                {
                    "priced": priced,
                    "own": priced.store_price != priced.list_price,
                    "form": form
                    or StorePriceForm(
                        initial={
                            "item": priced.item.pk,
                            "price": priced.store_price if priced.store_price != priced.list_price else None,
                        },
                        prefix=f"p{priced.item.pk}",
                    ),
                }
            )
    context = {"store": store, "rows": rows, "form": search, "tab": "prices", "query": query}
    return _render(request, "frontdesk/catalog/prices.html", context, status=status)


@staff_view(Perm.STORE_PRICE_SET)
@require_GET
def catalog_prices(request: HttpRequest) -> HttpResponse:
    return _prices_page(request)


@staff_view(Perm.STORE_PRICE_SET)
@require_POST
def catalog_price_set(request: HttpRequest, item_id: int) -> HttpResponse:
    """Set the current store's own price of an item, or clear it (empty) to use the list price."""
    actor = get_actor(request)
    item = item_get(actor, item_id)
    form = StorePriceForm(request.POST, prefix=f"p{item.pk}")
    if actor.store is None:
        form.add_error(None, _("请先选择当前门店。"))
    elif form.is_valid():
        try:
            store_price_set(actor=actor, store=actor.store, item=item, price=form.cleaned_data["price"])
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(request, _("%(name)s 的门店价已保存。") % {"name": item.name})
            fallback = reverse("frontdesk:catalog_prices")
            return redirect(safe_next(request, request.POST.get("next"), fallback))
    return _prices_page(request, error_form=form, error_item=item.pk, status=400)
