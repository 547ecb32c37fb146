"""Front-desk pages: packages (计次卡/套餐/时间卡). Routes are collected in ``urlpatterns`` and included by
``meiye.frontdesk.urls``.

- Package products (HQ, ``cards.manage``): the list, and one form that creates the catalogue item and the
  services of the package together.
- The member page's panel: her packages, items, sessions left, valid until, status.
- A package: its items and recent sessions, the 划卡 form (item, sessions, beautician; ``sales.checkout``),
  freeze / unfreeze / extend (``packages.adjust``), and the refund page (``prepaid.refund``) that shows the
  formula and the amount before the receptionist confirms.

Views parse and call one service; refusals show beside the field they name.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from meiye.catalog.selectors import items as catalog_items
from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.frontdesk.forms_sales import MoneyField, add_sales_error
from meiye.frontdesk.labels import choices_of
from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.loyalty.selectors import local_today
from meiye.members.selectors import member_get
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.packages.models import (
    MemberPackage,
    PackageKind,
    PackageProduct,
    PackageStatus,
    RefundFormula,
    ValidFrom,
    ValidityUnit,
)
from meiye.packages.selectors import (
    member_item_uses,
    member_package_get,
    member_packages,
    package_product_get,
    package_products,
    package_refund_preview,
    performers,
)
from meiye.packages.services import (
    ProductItemInput,
    package_extend,
    package_freeze,
    package_product_save,
    package_quick_use,
    package_refund,
    package_unfreeze,
)
from meiye.wallet.models import Tender

_lazy = gettext_lazy
ITEM_ROWS = 4


def _key() -> str:
    return uuid.uuid4().hex


def _no_store(response: HttpResponse) -> HttpResponse:
    patch_cache_control(response, private=True, no_store=True)
    return response


# --- Forms ---------------------------------------------------------------------------------------------------------


class ProductForm(forms.Form):
    code = forms.SlugField(label=_lazy("编码"), max_length=40)
    name = forms.CharField(label=_lazy("名称"), max_length=80)
    price = MoneyField(label=_lazy("售价（元）"))
    kind = forms.ChoiceField(label=_lazy("类型"), choices=choices_of(PackageKind))
    refund_formula = forms.ChoiceField(label=_lazy("退款方式"), choices=choices_of(RefundFormula))
    cooling_off_days = forms.IntegerField(label=_lazy("冷静期（天）"), min_value=0, max_value=365, initial=7)
    transferable = forms.BooleanField(label=_lazy("可转让"), required=False)
    is_active = forms.BooleanField(label=_lazy("在售"), required=False, initial=True)

    def __init__(self, *args: Any, services: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for n in range(ITEM_ROWS):
            self.fields[f"service_{n}"] = forms.TypedChoiceField(
                label=_lazy("服务项目"),
                coerce=int,
                required=False,
                empty_value=None,
                choices=[("", "—"), *services],
            )
            self.fields[f"count_{n}"] = forms.IntegerField(
                label=_lazy("次数"), required=False, min_value=1, help_text=_lazy("时间卡留空为不限次")
            )
            self.fields[f"validity_{n}"] = forms.IntegerField(label=_lazy("有效期"), required=False, min_value=1)
            self.fields[f"unit_{n}"] = forms.ChoiceField(
                label=_lazy("单位"), choices=choices_of(ValidityUnit), initial=ValidityUnit.MONTHS
            )
            self.fields[f"from_{n}"] = forms.ChoiceField(label=_lazy("起算"), choices=choices_of(ValidFrom))
            self.fields[f"daily_{n}"] = forms.IntegerField(label=_lazy("每日上限"), required=False, min_value=1)
            self.fields[f"gap_{n}"] = forms.IntegerField(label=_lazy("间隔天数"), required=False, min_value=0)

    def rows(self) -> list[list[Any]]:
        names = ("service", "count", "validity", "unit", "from", "daily", "gap")
        return [[self[f"{name}_{n}"] for name in names] for n in range(ITEM_ROWS)]

    def item_inputs(self) -> list[ProductItemInput]:
        d = self.cleaned_data
        found = []
        for n in range(ITEM_ROWS):
            if not d.get(f"service_{n}"):
                continue
            if not d.get(f"validity_{n}"):
                self.add_error(f"validity_{n}", _("有效期：必填。"))
                continue
            found.append(
                ProductItemInput(
                    service_id=d[f"service_{n}"],
                    count=d.get(f"count_{n}"),
                    validity_value=d[f"validity_{n}"],
                    validity_unit=d[f"unit_{n}"],
                    valid_from=d[f"from_{n}"],
                    daily_limit=d.get(f"daily_{n}"),
                    min_days_between=d.get(f"gap_{n}") or 0,
                )
            )
        return found


class UseForm(forms.Form):
    member_item_id = forms.TypedChoiceField(label=_lazy("项目"), coerce=int)
    sessions = forms.IntegerField(label=_lazy("次数"), min_value=1, max_value=1000, initial=1)
    performed_by = forms.TypedChoiceField(label=_lazy("服务美容师"), coerce=int, required=False, empty_value=None)
    idempotency_key = forms.CharField(max_length=128, widget=forms.HiddenInput)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_lazy("原因"), max_length=200)


class ExtendForm(forms.Form):
    days = forms.IntegerField(label=_lazy("延期天数"), min_value=1, max_value=3650)
    reason = forms.CharField(label=_lazy("原因"), max_length=200)


class RefundForm(forms.Form):
    tender = forms.ChoiceField(label=_lazy("退款方式"), choices=choices_of(Tender))
    reason = forms.CharField(label=_lazy("原因"), max_length=200)
    idempotency_key = forms.CharField(max_length=128, widget=forms.HiddenInput)


# --- Products (HQ) --------------------------------------------------------------------------------------------------


@staff_view(Perm.CARDS_MANAGE)
@require_GET
def package_products_page(request: HttpRequest) -> HttpResponse:
    found = list(package_products(get_actor(request)))
    return render(request, "frontdesk/packages/products.html", {"products": found})


def _services(actor: Actor) -> list[tuple[int, str]]:
    return [
        (i.pk, f"{i.name}（{Money(i.price_fen).as_decimal_string()}）") for i in catalog_items(actor, kind="service")
    ]


def _product_initial(product: PackageProduct) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "code": product.item.code,
        "name": product.item.name,
        "price": Money(product.item.price_fen).as_decimal_string(),
        "kind": product.kind,
        "refund_formula": product.refund_formula,
        "cooling_off_days": product.cooling_off_days,
        "transferable": product.transferable,
        "is_active": product.is_active,
    }
    for n, pi in enumerate(list(product.items.all())[:ITEM_ROWS]):
        initial |= {
            f"service_{n}": pi.service_id,
            f"count_{n}": pi.count,
            f"validity_{n}": pi.validity_value,
            f"unit_{n}": pi.validity_unit,
            f"from_{n}": pi.valid_from,
            f"daily_{n}": pi.daily_limit,
            f"gap_{n}": pi.min_days_between,
        }
    return initial


@staff_view(Perm.CARDS_MANAGE)
@require_http_methods(["GET", "POST"])
def package_product_form(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    actor = get_actor(request)
    product = package_product_get(actor, pk) if pk is not None else None
    services = _services(actor)
    if request.method != "POST":
        initial = _product_initial(product) if product is not None else {}
        form = ProductForm(initial=initial, services=services)
        return render(request, "frontdesk/packages/product_form.html", {"form": form, "product": product})
    form = ProductForm(request.POST, services=services)
    if form.is_valid():
        d = form.cleaned_data
        inputs = form.item_inputs()
        if product is not None and d["code"] != product.item.code:
            form.add_error("code", _("编码：不能修改套餐编码。"))
        if not form.errors:
            try:
                saved = package_product_save(
                    actor=actor,
                    code=d["code"],
                    name=d["name"],
                    price=d["price"],
                    kind=d["kind"],
                    items=inputs,
                    refund_formula=d["refund_formula"],
                    cooling_off_days=d["cooling_off_days"],
                    transferable=d["transferable"],
                    is_active=d["is_active"],
                )
            except ApplicationError as exc:
                add_sales_error(form, exc, aliases={"items": "__all__", "category": "__all__"})
            else:
                messages.success(request, _("已保存套餐 %(name)s。") % {"name": saved.item.name})
                return redirect("frontdesk:package_products")
    return render(request, "frontdesk/packages/product_form.html", {"form": form, "product": product}, status=400)


# --- The member panel and a package ---------------------------------------------------------------------------------


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def member_packages_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the member page's packages panel."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    found = member_packages(actor, member)
    response = render(
        request,
        "frontdesk/packages/_member_panel.html",
        {"member": member, "packages": found, "today": local_today(actor.store)},
    )
    return _no_store(response)


def _use_form(actor: Actor, package: MemberPackage, data: Any = None) -> UseForm:
    form = UseForm(data, initial={"idempotency_key": _key()})
    item_field = form.fields["member_item_id"]
    performer_field = form.fields["performed_by"]
    assert isinstance(item_field, forms.ChoiceField) and isinstance(performer_field, forms.ChoiceField)
    item_field.choices = [
        (i.pk, f"{i.name}（{_('剩余')} {i.remaining if i.count is not None else '∞'}）") for i in package.items.all()
    ]
    performer_field.choices = [("", "—"), *[(s.pk, str(s)) for s in performers(actor)]]
    return form


def _package_page(
    request: HttpRequest,
    package: MemberPackage,
    *,
    use_form: UseForm | None = None,
    reason_form: ReasonForm | None = None,
    extend_form: ExtendForm | None = None,
    status: int = 200,
) -> HttpResponse:
    actor = get_actor(request)
    context = {
        "package": package,
        "member": package.member,
        "items": list(package.items.all()),
        "uses": member_item_uses(actor, package),
        "adjustments": list(package.adjustments.select_related("staff")),
        "use_form": use_form or _use_form(actor, package),
        "reason_form": reason_form or ReasonForm(),
        "extend_form": extend_form or ExtendForm(),
        "can_use": actor.can(Perm.CHECKOUT) and package.status == PackageStatus.ACTIVE,
        "can_adjust": actor.can(Perm.PACKAGE_ADJUST),
        "can_refund": actor.can(Perm.PREPAID_REFUND) and package.status in (PackageStatus.ACTIVE, PackageStatus.FROZEN),
        "is_frozen": package.status == PackageStatus.FROZEN,
    }
    return _no_store(render(request, "frontdesk/packages/package.html", context, status=status))


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def member_package_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _package_page(request, member_package_get(get_actor(request), pk))


@staff_view(Perm.CHECKOUT)
@require_POST
def member_package_use(request: HttpRequest, pk: int) -> HttpResponse:
    """划卡: use sessions of one item now, recording the beautician."""
    actor = get_actor(request)
    package = member_package_get(actor, pk)
    form = _use_form(actor, package, request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            use = package_quick_use(
                actor=actor,
                member=package.member,
                member_item_id=d["member_item_id"],
                sessions=d["sessions"],
                performed_by_id=d["performed_by"],
                idempotency_key=d["idempotency_key"],
            )
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases={"performed_by": "performed_by"})
        else:
            messages.success(
                request,
                _("已划卡 %(name)s × %(n)s，剩余 %(left)s 次。")
                % {"name": use.member_item.name, "n": use.quantity, "left": use.member_item.remaining},
            )
            return redirect("frontdesk:member_package", pk=package.pk)
    return _package_page(request, package, use_form=form, status=400)


@staff_view(Perm.PACKAGE_ADJUST)
@require_POST
def member_package_freeze(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    package = member_package_get(actor, pk)
    form = ReasonForm(request.POST)
    if form.is_valid():
        try:
            if package.status == PackageStatus.FROZEN:
                package_unfreeze(actor=actor, member_package=package, reason=form.cleaned_data["reason"])
                messages.success(request, _("已解冻，冻结天数已顺延到有效期。"))
            else:
                package_freeze(actor=actor, member_package=package, reason=form.cleaned_data["reason"])
                messages.success(request, _("已冻结。"))
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            return redirect("frontdesk:member_package", pk=package.pk)
    return _package_page(request, package, reason_form=form, status=400)


@staff_view(Perm.PACKAGE_ADJUST)
@require_POST
def member_package_extend(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    package = member_package_get(actor, pk)
    form = ExtendForm(request.POST)
    if form.is_valid():
        try:
            package_extend(
                actor=actor, member_package=package, days=form.cleaned_data["days"], reason=form.cleaned_data["reason"]
            )
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(request, _("已延期 %(days)s 天。") % {"days": form.cleaned_data["days"]})
            return redirect("frontdesk:member_package", pk=package.pk)
    return _package_page(request, package, extend_form=form, status=400)


@staff_view(Perm.PREPAID_REFUND)
@require_http_methods(["GET", "POST"])
def member_package_refund(request: HttpRequest, pk: int) -> HttpResponse:
    """The refund: the formula and the amount first, then the tender and reason to confirm."""
    actor = get_actor(request)
    package = member_package_get(actor, pk)
    today: date = local_today(actor.store)
    quote = package_refund_preview(actor, package, today)
    form = RefundForm(request.POST or None, initial={"idempotency_key": _key()})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            refunded = package_refund(
                actor=actor,
                member_package=package,
                tender=d["tender"],
                reason=d["reason"],
                idempotency_key=d["idempotency_key"],
            )
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(
                request,
                _("已退款 %(amount)s。") % {"amount": Money(refunded.refunded_fen or 0).as_decimal_string()},
            )
            return redirect("frontdesk:member_package", pk=package.pk)
    context = {"package": package, "member": package.member, "quote": quote, "form": form, "today": today}
    status = 400 if request.method == "POST" else 200
    return _no_store(render(request, "frontdesk/packages/refund.html", context, status=status))


urlpatterns: list[URLPattern | URLResolver] = [
    path("members/<int:pk>/packages/panel/", member_packages_panel, name="member_packages_panel"),
    path("packages/products/", package_products_page, name="package_products"),
    path("packages/products/new/", package_product_form, name="package_product_new"),
    path("packages/products/<int:pk>/", package_product_form, name="package_product_edit"),
    path("packages/<int:pk>/", member_package_page, name="member_package"),
    path("packages/<int:pk>/use/", member_package_use, name="member_package_use"),
    path("packages/<int:pk>/freeze/", member_package_freeze, name="member_package_freeze"),
    path("packages/<int:pk>/extend/", member_package_extend, name="member_package_extend"),
    path("packages/<int:pk>/refund/", member_package_refund, name="member_package_refund"),
]
