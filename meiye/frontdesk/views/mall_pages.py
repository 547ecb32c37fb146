"""The points mall (积分商城, S-07) at the front desk.

- Redeem: find a member, then her page in the mall: points, the items the current store offers (with stock),
  the redeem form and her redemption history (``sales.checkout``).
- Approvals: redemptions at or above the threshold wait here for a store manager (``mall.approve``).
- History: every redemption in the stores one may see, by status.
- Items and rules (HQ, ``catalog.manage``): the items, their stock (every change a ledger journal), the
  minimum redemption and the approval threshold.

Views parse and call one service; refusals show beside the field they name.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from meiye.catalog.selectors import items as catalog_items
from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.frontdesk.forms_sales import MoneyField, add_sales_error
from meiye.frontdesk.labels import bilingual, choices_of
from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.loyalty.selectors import points_balance
from meiye.mall.models import MallItem, MallItemKind, RedemptionStatus
from meiye.mall.selectors import (
    mall_item_get,
    mall_items,
    mall_rules,
    mall_stock,
    mall_stock_held,
    member_redemptions,
    pending_redemptions,
    redemption_get,
    store_redemptions,
)
from meiye.mall.services import (
    MallItemInput,
    mall_item_create,
    mall_item_update,
    mall_redeem,
    mall_redemption_approve,
    mall_redemption_reject,
    mall_settings_set,
    mall_stock_add,
)
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_get, member_search
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.org.selectors import stores_visible
from meiye.wallet.models import Tender

HISTORY_PAGE = 50
MEMBER_HISTORY_SHOWN = 30
SEARCH_RESULTS = 20

_lazy = gettext_lazy


# --- Forms --------------------------------------------------------------------------------------------------------


def _new_key() -> str:
    return uuid.uuid4().hex


def _key_field() -> forms.CharField:
    return forms.CharField(max_length=128, required=False, widget=forms.HiddenInput)


def _require_key(form: forms.Form) -> None:
    """A form without its key (an old page, a hand-made request) is refused at the top of the form."""
    if not form.cleaned_data.get("idempotency_key"):
        form.cleaned_data.pop("idempotency_key", None)
        form.add_error(None, _("这张表单已失效，请刷新页面后重试。"))


def _set_choices(form: forms.Form, name: str, choices: list[tuple[Any, str]]) -> None:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices


class MemberSearchForm(forms.Form):
    q = forms.CharField(
        label=_lazy("手机号 / 会员号 / 姓名"),
        required=False,
        max_length=50,
        widget=forms.SearchInput(attrs={"autocomplete": "off", "autofocus": "autofocus", "inputmode": "search"}),
    )


class RedeemForm(forms.Form):
    item = forms.TypedChoiceField(label=_lazy("兑换商品"), coerce=int, widget=forms.RadioSelect)
    quantity = forms.IntegerField(label=_lazy("数量"), min_value=1, max_value=999, initial=1)
    tender = forms.ChoiceField(
        label=_lazy("现金部分支付方式"),
        required=False,
        choices=[("", _lazy("无（只用积分）")), *choices_of(Tender)],
        help_text=_lazy("只有“积分+现金”商品需要选择"),
    )
    idempotency_key = _key_field()

    def __init__(self, *args: Any, offered: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_choices(self, "item", [(row["item"].pk, _choice_label(row)) for row in offered])

    def clean(self) -> dict[str, Any]:
        super().clean()
        _require_key(self)
        return self.cleaned_data


class ApproveForm(forms.Form):
    note = forms.CharField(label=_lazy("备注"), required=False, max_length=200)


class RejectForm(forms.Form):
    reason = forms.CharField(label=_lazy("驳回原因"), max_length=200)


class HistoryFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_lazy("状态"), required=False, choices=[("", _lazy("全部")), *choices_of(RedemptionStatus)]
    )


class MallItemForm(forms.Form):
    kind = forms.ChoiceField(label=_lazy("类型"), choices=choices_of(MallItemKind), initial=MallItemKind.GIFT)
    name = forms.CharField(label=_lazy("名称"), max_length=80)
    points_price = forms.IntegerField(label=_lazy("所需积分"), min_value=1, max_value=100_000_000)
    cash = MoneyField(label=_lazy("现金部分（元）"), required=False, help_text=_lazy("仅“积分+现金”商品填写"))
    catalog_item = forms.TypedChoiceField(
        label=_lazy("关联项目"),
        required=False,
        coerce=int,
        empty_value=None,
        help_text=_lazy("服务或服务升级可关联项目"),
    )
    stock_limited = forms.BooleanField(label=_lazy("限量库存"), required=False, initial=True)
    initial_stock = forms.IntegerField(
        label=_lazy("初始库存"), required=False, min_value=0, max_value=1_000_000, initial=0
    )
    per_member_limit = forms.IntegerField(
        label=_lazy("每人限兑"), required=False, min_value=1, max_value=999, help_text=_lazy("留空表示不限")
    )
    stores = forms.TypedMultipleChoiceField(
        label=_lazy("可兑换门店"),
        required=False,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        help_text=_lazy("不选表示所有门店"),
    )
    is_active = forms.BooleanField(label=_lazy("上架"), required=False, initial=True)
    idempotency_key = _key_field()

    def __init__(self, *args: Any, actor: Actor, editing: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        items = [(item.pk, item.name) for item in catalog_items(actor, active_only=True)]
        _set_choices(self, "catalog_item", [("", "—"), *items])
        _set_choices(self, "stores", [(store.pk, store.name) for store in stores_visible(actor).order_by("id")])
        if editing:
            del self.fields["initial_stock"]
            del self.fields["idempotency_key"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        if not self.editing:
            _require_key(self)
        return self.cleaned_data

    def to_input(self) -> MallItemInput:
        d = self.cleaned_data
        cash: Money | None = d.get("cash")
        return MallItemInput(
            kind=d["kind"],
            name=d["name"],
            points_price=d["points_price"],
            cash_fen=cash.fen if cash is not None else 0,
            catalog_item_id=d.get("catalog_item"),
            stock_limited=d["stock_limited"],
            per_member_limit=d.get("per_member_limit"),
            store_ids=tuple(d.get("stores") or ()),
            is_active=d["is_active"],
        )


class StockForm(forms.Form):
    quantity = forms.IntegerField(
        label=_lazy("数量"), min_value=-1_000_000, max_value=1_000_000, help_text=_lazy("入库填正数，报损填负数")
    )
    memo = forms.CharField(label=_lazy("说明"), required=False, max_length=200)
    idempotency_key = _key_field()

    def clean(self) -> dict[str, Any]:
        super().clean()
        _require_key(self)
        return self.cleaned_data


class MallSettingsForm(forms.Form):
    min_redeem_points = forms.IntegerField(label=_lazy("最低兑换积分"), min_value=0, max_value=100_000_000)
    approval_threshold_points = forms.IntegerField(
        label=_lazy("审批门槛（积分）"),
        required=False,
        min_value=1,
        max_value=1_000_000_000,
        help_text=_lazy("达到此积分的兑换需店长审批；留空表示不需审批"),
    )


# --- Helpers ------------------------------------------------------------------------------------------------------


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """Render a mall page with what its tabs need; never cached (member data)."""
    actor = get_actor(request)
    context = {
        **context,
        "can_redeem": actor.can(Perm.CHECKOUT),
        "can_approve": actor.can(Perm.MALL_APPROVE),
        "can_manage": actor.can(Perm.CATALOG_MANAGE),
        "status_labels": {value: bilingual(label) for value, label in RedemptionStatus.choices},
        "kind_labels": {value: bilingual(label) for value, label in MallItemKind.choices},
    }
    response = render(request, template, context, status=status)
    patch_cache_control(response, private=True, no_store=True)
    return response


def _choice_label(row: dict[str, Any]) -> str:
    """``面膜礼盒 · 5000 积分 · 库存 2`` (with the cash part of a points + cash item)."""
    item: MallItem = row["item"]
    parts = [item.name, _("%(points)s 积分") % {"points": item.points_price}]
    if item.cash_fen:
        parts.append(_("另付 %(cash)s") % {"cash": Money(item.cash_fen)})
    if row["stock"] is not None:
        parts.append(_("库存 %(n)s") % {"n": row["stock"]})
    return " · ".join(parts)


def _with_stock(found: list[MallItem]) -> list[dict[str, Any]]:
    stock, held = mall_stock(found), mall_stock_held(found)
    return [{"item": item, "stock": stock[item.pk], "held": held[item.pk]} for item in found]


# --- Redeem ------------------------------------------------------------------------------------------------------


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def mall_index(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    if actor.can(Perm.CHECKOUT):
        return redirect("frontdesk:mall_redeem_start")
    if actor.can(Perm.MALL_APPROVE):
        return redirect("frontdesk:mall_pending")
    return redirect("frontdesk:mall_history")


@staff_view(Perm.CHECKOUT)
@require_GET
def mall_redeem_start(request: HttpRequest) -> HttpResponse:
    """Find the member who redeems; lists what the current store offers."""
    actor = get_actor(request)
    form = MemberSearchForm(request.GET)
    query = form.cleaned_data["q"].strip() if form.is_valid() else ""
    found = list(member_search(actor, query, limit=SEARCH_RESULTS)) if query else []
    offered = list(mall_items(actor, store=actor.store)) if actor.store is not None else []
    context = {"form": form, "query": query, "members": found, "offered": _with_stock(offered), "tab": "redeem"}
    return _render(request, "frontdesk/mall/redeem_start.html", context)


def _member_page(
    request: HttpRequest, member: Member, form: RedeemForm | None, offered: list[dict[str, Any]], status: int = 200
) -> HttpResponse:
    actor = get_actor(request)
    can_redeem = member.status == MemberStatus.ACTIVE and actor.store is not None and bool(offered)
    if form is None and can_redeem:
        form = RedeemForm(offered=offered, initial={"idempotency_key": _new_key(), "quantity": 1})
    context = {
        "member": member,
        "points": points_balance(member),
        "offered": offered,
        "form": form if can_redeem else None,
        "history": list(member_redemptions(member)[:MEMBER_HISTORY_SHOWN]),
        "rules": mall_rules(actor.organisation.pk),
        "tab": "redeem",
    }
    return _render(request, "frontdesk/mall/member.html", context, status=status)


@staff_view(Perm.CHECKOUT)
@require_http_methods(["GET", "POST"])
def mall_member(request: HttpRequest, pk: int) -> HttpResponse:
    """A member in the mall: her points, what she can redeem here, the redeem form and her history."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    offered = _with_stock(list(mall_items(actor, store=actor.store))) if actor.store is not None else []
    if request.method != "POST":
        return _member_page(request, member, None, offered)
    form = RedeemForm(request.POST, offered=offered)
    if form.is_valid():
        d = form.cleaned_data
        try:
            redemption = mall_redeem(
                actor=actor,
                member=member,
                item=mall_item_get(actor, d["item"]),
                quantity=d["quantity"],
                tender=d["tender"],
                idempotency_key=d["idempotency_key"],
            )
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases={"member": "__all__", "store": "__all__", "points": "__all__"})
        else:
            if redemption.status == RedemptionStatus.PENDING:
                messages.warning(
                    request,
                    _("%(item)s × %(n)s 需店长审批：%(points)s 积分已冻结。")
                    % {"item": redemption.item_name, "n": redemption.quantity, "points": redemption.points},
                )
            else:
                messages.success(
                    request,
                    _("已兑换 %(item)s × %(n)s，扣除 %(points)s 积分。")
                    % {"item": redemption.item_name, "n": redemption.quantity, "points": redemption.points},
                )
            return redirect("frontdesk:mall_member", pk=member.pk)
    return _member_page(request, member, form, offered, status=400)


# --- Approvals ----------------------------------------------------------------------------------------------------


@staff_view(Perm.MALL_APPROVE)
@require_GET
def mall_pending(request: HttpRequest) -> HttpResponse:
    rows = list(pending_redemptions(get_actor(request)))
    return _render(request, "frontdesk/mall/pending.html", {"pending": rows, "tab": "pending"})


@staff_view(Perm.MALL_APPROVE)
@require_POST
def mall_approve(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    redemption = redemption_get(actor, pk)
    form = ApproveForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        mall_redemption_approve(actor=actor, redemption=redemption, note=note)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("已批准兑换 #%(pk)s。") % {"pk": redemption.pk})
    return redirect("frontdesk:mall_pending")


@staff_view(Perm.MALL_APPROVE)
@require_POST
def mall_reject(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    redemption = redemption_get(actor, pk)
    form = RejectForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        mall_redemption_reject(actor=actor, redemption=redemption, reason=reason)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("已驳回兑换 #%(pk)s，%(points)s 积分已退回。") % {"pk": redemption.pk, "points": redemption.points},
        )
    return redirect("frontdesk:mall_pending")


# --- History ------------------------------------------------------------------------------------------------------


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def mall_history(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    form = HistoryFilterForm(request.GET)
    status = form.cleaned_data["status"] if form.is_valid() else ""
    page = Paginator(store_redemptions(actor, status=status), HISTORY_PAGE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "redemptions": list(page.object_list), "tab": "history"}
    return _render(request, "frontdesk/mall/history.html", context)


# --- Items, stock and rules (HQ) ------------------------------------------------------------------------------------


@staff_view(Perm.CATALOG_MANAGE)
@require_GET
def mall_item_list(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    rows = _with_stock(list(mall_items(actor, active_only=False)))
    return _render(request, "frontdesk/mall/items.html", {"rows": rows, "tab": "items"})


def _item_initial(item: MallItem) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "name": item.name,
        "points_price": item.points_price,
        "cash": Money(item.cash_fen) if item.cash_fen else None,
        "catalog_item": item.catalog_item_id,
        "stock_limited": item.stock_limited,
        "per_member_limit": item.per_member_limit,
        "stores": [store.pk for store in item.stores.all()],
        "is_active": item.is_active,
    }


@staff_view(Perm.CATALOG_MANAGE)
@require_http_methods(["GET", "POST"])
def mall_item_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    actor = get_actor(request)
    existing = mall_item_get(actor, pk) if pk is not None else None
    initial = _item_initial(existing) if existing is not None else {"idempotency_key": _new_key()}
    form = MallItemForm(request.POST or None, initial=initial, actor=actor, editing=existing is not None)
    if request.method == "POST" and form.is_valid():
        aliases = {"cash_fen": "cash", "catalog_item_id": "catalog_item", "store_ids": "stores"}
        try:
            if existing is None:
                saved = mall_item_create(
                    actor=actor,
                    data=form.to_input(),
                    initial_stock=form.cleaned_data.get("initial_stock") or 0,
                    idempotency_key=form.cleaned_data["idempotency_key"],
                )
            else:
                saved = mall_item_update(actor=actor, item=existing, data=form.to_input())
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases=aliases)
        else:
            messages.success(request, _("商品 %(name)s 已保存。") % {"name": saved.name})
            return redirect("frontdesk:mall_item_edit", pk=saved.pk)
    context: dict[str, Any] = {"form": form, "item": existing, "tab": "items"}
    if existing is not None:
        context["stock"] = _with_stock([existing])[0]
        context["stock_form"] = StockForm(initial={"idempotency_key": _new_key()})
    return _render(request, "frontdesk/mall/item_form.html", context, status=400 if form.errors else 200)


@staff_view(Perm.CATALOG_MANAGE)
@require_POST
def mall_item_stock(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    item = mall_item_get(actor, pk)
    form = StockForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            mall_stock_add(
                actor=actor, item=item, quantity=d["quantity"], memo=d["memo"], idempotency_key=d["idempotency_key"]
            )
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(request, _("库存已调整 %(n)s。") % {"n": f"{d['quantity']:+d}"})
            return redirect("frontdesk:mall_item_edit", pk=item.pk)
    context = {
        "form": MallItemForm(initial=_item_initial(item), actor=actor, editing=True),
        "item": item,
        "stock": _with_stock([item])[0],
        "stock_form": form,
        "tab": "items",
    }
    return _render(request, "frontdesk/mall/item_form.html", context, status=400)


@staff_view(Perm.CATALOG_MANAGE)
@require_http_methods(["GET", "POST"])
def mall_settings_view(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    rules = mall_rules(actor.organisation.pk)
    initial = {
        "min_redeem_points": rules.min_redeem_points,
        "approval_threshold_points": rules.approval_threshold_points,
    }
    form = MallSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            mall_settings_set(
                actor=actor,
                min_redeem_points=form.cleaned_data["min_redeem_points"],
                approval_threshold_points=form.cleaned_data["approval_threshold_points"],
            )
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(request, _("积分商城规则已保存。"))
            return redirect("frontdesk:mall_settings")
    return _render(
        request, "frontdesk/mall/settings.html", {"form": form, "tab": "settings"}, status=400 if form.errors else 200
    )


# Included by meiye/frontdesk/urls.py (names in the "frontdesk" namespace).
urlpatterns = [
    path("mall/", mall_index, name="mall_index"),
    path("mall/redeem/", mall_redeem_start, name="mall_redeem_start"),
    path("mall/members/<int:pk>/", mall_member, name="mall_member"),
    path("mall/pending/", mall_pending, name="mall_pending"),
    path("mall/redemptions/", mall_history, name="mall_history"),
    path("mall/redemptions/<int:pk>/approve/", mall_approve, name="mall_approve"),
    path("mall/redemptions/<int:pk>/reject/", mall_reject, name="mall_reject"),
    path("mall/items/", mall_item_list, name="mall_item_list"),
    path("mall/items/new/", mall_item_edit, name="mall_item_create"),
    path("mall/items/<int:pk>/", mall_item_edit, name="mall_item_edit"),
    path("mall/items/<int:pk>/stock/", mall_item_stock, name="mall_item_stock"),
    path("mall/settings/", mall_settings_view, name="mall_settings"),
]
