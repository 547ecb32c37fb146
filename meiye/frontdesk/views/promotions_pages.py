"""Coupons (优惠券) and promotions (促销): the settings pages of HQ (``promotions.manage``) — coupon templates,
promotions with their kind-specific rules, how offers stack — and a member's coupons (the panel on the member
page, the page listing them with issuing by hand and voiding, ``member.edit``).

Amounts are typed in 元 ("50.00", ``MoneyField``); a percentage is the share the customer PAYS, typed as
"88" and sent as basis points (8,800). Every rule is the service's (``promotions.services``); its refusal
is shown beside the field it names and the form keeps what was typed. ``urlpatterns`` here is spliced into
``frontdesk.urls``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from meiye.catalog.models import ItemKind
from meiye.catalog.selectors import categories, items
from meiye.core.errors import ApplicationError, not_found
from meiye.core.money import Money
from meiye.frontdesk.forms_sales import MoneyField, add_sales_error, new_idempotency_key
from meiye.frontdesk.labels import bilingual_lazy, choices_of
from meiye.frontdesk.views.common import get_actor, is_htmx, staff_view
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_get
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.org.selectors import stores_visible
from meiye.promotions.models import (
    BASIS_POINTS,
    Coupon,
    CouponKind,
    CouponStatus,
    PromotionKind,
    StackingPolicy,
)
from meiye.promotions.selectors import (
    coupon_get,
    coupon_template_get,
    coupon_templates,
    coupons_held,
    promotion_get,
    promotions,
    stacking_policy,
)
from meiye.promotions.services import (
    CouponTemplateInput,
    PromotionInput,
    coupon_issue,
    coupon_template_input,
    coupon_template_save,
    coupon_void,
    promotion_input,
    promotion_save,
    promotion_settings_set,
)

PANEL_COUPONS = 5

_DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
_NUMBER = {"inputmode": "numeric", "autocomplete": "off"}

STATUS_BADGE = {
    CouponStatus.ACTIVE: "badge-yes",
    CouponStatus.USED: "badge-inactive",
    CouponStatus.VOID: "badge-no",
}


# --- Fields ---------------------------------------------------------------------------------------------------------


class PercentPaidField(forms.DecimalField):
    """The share the customer pays, typed as a percentage ("88" pays 88%, "88.5"), cleaned into integer
    basis points (8,800). An initial value is given in basis points and shown as a percentage."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "widget", forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "placeholder": "88"})
        )
        super().__init__(max_digits=5, decimal_places=2, min_value=Decimal("0.01"), max_value=Decimal(100), **kwargs)

    def clean(self, value: Any) -> int | None:
        percent = super().clean(value)
        return None if percent is None else int(percent * 100)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            whole, rest = divmod(value, 100)
            return str(whole) if rest == 0 else f"{whole}.{rest:02d}".rstrip("0")
        return value


def _fen(value: Money | None) -> int:
    return value.fen if value is not None else 0


def _ids(values: Any) -> list[int]:
    return [int(v) for v in values or ()]


# --- Forms ----------------------------------------------------------------------------------------------------------


class _ScopeMixin(forms.Form):
    """Categories and stores an offer applies to (none ticked: all)."""

    categories = forms.MultipleChoiceField(
        label=gettext_lazy("适用分类（不选为全部）"), required=False, widget=forms.CheckboxSelectMultiple
    )
    stores = forms.MultipleChoiceField(
        label=gettext_lazy("适用门店（不选为全部）"), required=False, widget=forms.CheckboxSelectMultiple
    )

    def set_scope_choices(self, actor: Actor) -> None:
        self.fields["categories"].choices = [  # type: ignore[attr-defined]
            (str(c.pk), c.name) for c in categories(actor, active_only=False)
        ]
        self.fields["stores"].choices = [  # type: ignore[attr-defined]
            (str(s.pk), s.name) for s in stores_visible(actor).order_by("id")
        ]


class CouponTemplateForm(_ScopeMixin):
    """A coupon template. Which fields matter depends on the kind: the amount off, the share paid, or the
    free service."""

    # The service names these fields; the form shows them beside its own.
    ALIASES = {
        "amount_off_fen": "amount_off",
        "pay_bp": "pay_percent",
        "min_spend_fen": "min_spend",
        "category_ids": "categories",
        "store_ids": "stores",
    }

    name = forms.CharField(label=gettext_lazy("名称"), max_length=60)
    kind = forms.ChoiceField(label=gettext_lazy("类型"), choices=choices_of(CouponKind))
    amount_off = MoneyField(label=gettext_lazy("减免金额（元）"), required=False, help_text=gettext_lazy("满额减券"))
    pay_percent = PercentPaidField(
        label=gettext_lazy("支付比例（%）"), required=False, help_text=gettext_lazy("折扣券：88 表示付 88%，即 88 折")
    )
    free_item = forms.ChoiceField(label=gettext_lazy("免费项目"), required=False, help_text=gettext_lazy("免费服务券"))
    min_spend = MoneyField(
        label=gettext_lazy("最低消费（元）"), required=False, help_text=gettext_lazy("适用项目合计需达到此金额")
    )
    valid_days = forms.IntegerField(
        label=gettext_lazy("领取后有效天数"),
        required=False,
        min_value=1,
        max_value=3650,
        widget=forms.NumberInput(attrs=_NUMBER),
        help_text=gettext_lazy("填写天数，或填写下面的起止日期"),
    )
    valid_from = forms.DateField(label=gettext_lazy("有效期开始"), required=False, widget=_DATE_WIDGET)
    valid_until = forms.DateField(label=gettext_lazy("有效期结束"), required=False, widget=_DATE_WIDGET)
    per_member_limit = forms.IntegerField(
        label=gettext_lazy("每人限领（0 为不限）"),
        required=False,
        min_value=0,
        max_value=999,
        initial=0,
        widget=forms.NumberInput(attrs=_NUMBER),
    )
    stackable = forms.BooleanField(label=gettext_lazy("可与其他优惠券同单使用"), required=False)
    is_active = forms.BooleanField(label=gettext_lazy("启用（可发放、可使用）"), required=False, initial=True)

    field_order = [
        "name",
        "kind",
        "amount_off",
        "pay_percent",
        "free_item",
        "min_spend",
        "valid_days",
        "valid_from",
        "valid_until",
        "per_member_limit",
        "stackable",
        "is_active",
        "categories",
        "stores",
    ]

    def __init__(self, *args: Any, actor: Actor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_scope_choices(actor)
        self.fields["free_item"].choices = [  # type: ignore[attr-defined]
            ("", "—"),
            *((str(i.pk), f"{i.name} ({i.code})") for i in items(actor, kind=ItemKind.SERVICE, active_only=False)),
        ]

    @staticmethod
    def initial_for(data: CouponTemplateInput) -> dict[str, Any]:
        return {
            "name": data.name,
            "kind": data.kind,
            "amount_off": Money(data.amount_off_fen) if data.amount_off_fen else None,
            "pay_percent": data.pay_bp if data.pay_bp < BASIS_POINTS else None,
            "free_item": str(data.free_item_id) if data.free_item_id else "",
            "min_spend": Money(data.min_spend_fen) if data.min_spend_fen else None,
            "valid_days": data.valid_days,
            "valid_from": data.valid_from,
            "valid_until": data.valid_until,
            "per_member_limit": data.per_member_limit,
            "stackable": data.stackable,
            "is_active": data.is_active,
            "categories": [str(i) for i in data.category_ids],
            "stores": [str(i) for i in data.store_ids],
        }

    def to_input(self) -> CouponTemplateInput:
        d = self.cleaned_data
        return CouponTemplateInput(
            name=d["name"],
            kind=d["kind"],
            amount_off_fen=_fen(d["amount_off"]),
            pay_bp=d["pay_percent"] if d["pay_percent"] is not None else BASIS_POINTS,
            free_item_id=int(d["free_item"]) if d["free_item"] else None,
            min_spend_fen=_fen(d["min_spend"]),
            category_ids=_ids(d["categories"]),
            store_ids=_ids(d["stores"]),
            valid_from=d["valid_from"],
            valid_until=d["valid_until"],
            valid_days=d["valid_days"],
            per_member_limit=d["per_member_limit"] or 0,
            stackable=d["stackable"],
            is_active=d["is_active"],
        )


ITEM_KIND_CHOICES = [("", bilingual_lazy("全部 All")), *choices_of(ItemKind)]


class PromotionForm(_ScopeMixin):
    """A promotion: 满减 (threshold, amount saved, repeat), a percentage off (share paid) or buy X get Y."""

    ALIASES = {
        "threshold_fen": "threshold",
        "save_fen": "save",
        "pay_bp": "pay_percent",
        "category_ids": "categories",
        "item_ids": "items",
        "store_ids": "stores",
    }

    name = forms.CharField(label=gettext_lazy("名称"), max_length=60)
    kind = forms.ChoiceField(label=gettext_lazy("类型"), choices=choices_of(PromotionKind))
    threshold = MoneyField(
        label=gettext_lazy("满（元）"), required=False, help_text=gettext_lazy("满减：适用项目合计达到")
    )
    save = MoneyField(label=gettext_lazy("减（元）"), required=False, help_text=gettext_lazy("满减：减免金额"))
    repeat = forms.BooleanField(label=gettext_lazy("每满再减（满1000减100，满2000减200）"), required=False)
    pay_percent = PercentPaidField(
        label=gettext_lazy("支付比例（%）"), required=False, help_text=gettext_lazy("限时折扣：88 表示付 88%")
    )
    buy_quantity = forms.IntegerField(
        label=gettext_lazy("买 X"), required=False, min_value=0, max_value=999, widget=forms.NumberInput(attrs=_NUMBER)
    )
    free_quantity = forms.IntegerField(
        label=gettext_lazy("送 Y"), required=False, min_value=0, max_value=999, widget=forms.NumberInput(attrs=_NUMBER)
    )
    item_kind = forms.ChoiceField(label=gettext_lazy("适用类型"), required=False, choices=ITEM_KIND_CHOICES)
    items = forms.MultipleChoiceField(
        label=gettext_lazy("适用项目（不选为全部）"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    starts_on = forms.DateField(label=gettext_lazy("开始日期"), required=False, widget=_DATE_WIDGET)
    ends_on = forms.DateField(label=gettext_lazy("结束日期"), required=False, widget=_DATE_WIDGET)
    priority = forms.IntegerField(
        label=gettext_lazy("优先级（小的先算）"),
        min_value=0,
        max_value=32767,
        initial=100,
        widget=forms.NumberInput(attrs=_NUMBER),
    )
    is_active = forms.BooleanField(label=gettext_lazy("启用"), required=False, initial=True)

    field_order = [
        "name",
        "kind",
        "threshold",
        "save",
        "repeat",
        "pay_percent",
        "buy_quantity",
        "free_quantity",
        "item_kind",
        "starts_on",
        "ends_on",
        "priority",
        "is_active",
        "categories",
        "items",
        "stores",
    ]

    def __init__(self, *args: Any, actor: Actor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_scope_choices(actor)
        self.fields["items"].choices = [  # type: ignore[attr-defined]
            (str(i.pk), f"{i.name} ({i.code})") for i in items(actor, active_only=False)
        ]

    @staticmethod
    def initial_for(data: PromotionInput) -> dict[str, Any]:
        return {
            "name": data.name,
            "kind": data.kind,
            "threshold": Money(data.threshold_fen) if data.threshold_fen else None,
            "save": Money(data.save_fen) if data.save_fen else None,
            "repeat": data.repeat,
            "pay_percent": data.pay_bp if data.pay_bp < BASIS_POINTS else None,
            "buy_quantity": data.buy_quantity or None,
            "free_quantity": data.free_quantity or None,
            "item_kind": data.item_kind,
            "starts_on": data.starts_on,
            "ends_on": data.ends_on,
            "priority": data.priority,
            "is_active": data.is_active,
            "categories": [str(i) for i in data.category_ids],
            "items": [str(i) for i in data.item_ids],
            "stores": [str(i) for i in data.store_ids],
        }

    def to_input(self) -> PromotionInput:
        d = self.cleaned_data
        return PromotionInput(
            name=d["name"],
            kind=d["kind"],
            threshold_fen=_fen(d["threshold"]),
            save_fen=_fen(d["save"]),
            repeat=d["repeat"],
            pay_bp=d["pay_percent"] if d["pay_percent"] is not None else BASIS_POINTS,
            buy_quantity=d["buy_quantity"] or 0,
            free_quantity=d["free_quantity"] or 0,
            item_kind=d["item_kind"] or "",
            category_ids=_ids(d["categories"]),
            item_ids=_ids(d["items"]),
            store_ids=_ids(d["stores"]),
            starts_on=d["starts_on"],
            ends_on=d["ends_on"],
            priority=d["priority"],
            is_active=d["is_active"],
        )


class StackingForm(forms.Form):
    stacking = forms.ChoiceField(
        label=gettext_lazy("会员折扣与促销"), choices=choices_of(StackingPolicy), widget=forms.RadioSelect
    )


class CouponIssueForm(forms.Form):
    """Give the member one coupon of a template. The key is made when the form is shown, so the same form
    sent twice issues one coupon."""

    template = forms.ChoiceField(label=gettext_lazy("优惠券"))
    idempotency_key = forms.CharField(max_length=128, required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, actor: Actor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = [  # type: ignore[attr-defined]
            ("", "—"),
            *((str(t.pk), t.name) for t in coupon_templates(actor).filter(is_active=True)),
        ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        if not self.cleaned_data.get("idempotency_key"):
            self.add_error(None, _("这张表单已失效，请刷新页面后重试。"))
        return self.cleaned_data


class CouponVoidForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("作废原因"),
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": gettext_lazy("作废原因"), "autocomplete": "off"}),
    )


class CouponChoiceForm(forms.Form):
    """The member's active coupons the cashier applies to an open bill (the checkout screen)."""

    coupons = forms.TypedMultipleChoiceField(
        label=gettext_lazy("优惠券"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, held: list[Coupon], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["coupons"].choices = [(c.pk, c.code) for c in held]  # type: ignore[attr-defined]


# --- Settings: coupon templates ----------------------------------------------------------------------------------


def _settings_page(request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    return render(request, template, {"tab": "promotions", **context}, status=status)


@staff_view(Perm.PROMOTIONS_MANAGE)
@require_GET
def coupon_template_list(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    rows = list(coupon_templates(actor).select_related("free_item"))
    return _settings_page(request, "frontdesk/promotions/templates.html", {"templates": rows, "subtab": "coupons"})


@staff_view(Perm.PROMOTIONS_MANAGE)
@require_http_methods(["GET", "POST"])
def coupon_template_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    actor = get_actor(request)
    existing = coupon_template_get(actor, pk) if pk is not None else None
    initial: dict[str, Any] = {}
    if existing is not None:
        initial = CouponTemplateForm.initial_for(coupon_template_input(existing))
    form = CouponTemplateForm(request.POST or None, initial=initial, actor=actor)
    if request.method == "POST" and form.is_valid():
        try:
            saved = coupon_template_save(actor=actor, data=form.to_input(), template=existing)
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases=CouponTemplateForm.ALIASES)
        else:
            messages.success(request, _("优惠券模板 %(name)s 已保存。") % {"name": saved.name})
            return redirect("frontdesk:promo_coupon_templates")
    context = {"form": form, "existing": existing, "subtab": "coupons"}
    return _settings_page(
        request, "frontdesk/promotions/template_form.html", context, status=400 if form.errors else 200
    )


# --- Settings: promotions and the stacking policy -------------------------------------------------------------------


def _promotions_page(
    request: HttpRequest, stacking_form: StackingForm | None = None, status: int = 200
) -> HttpResponse:
    actor = get_actor(request)
    form = stacking_form or StackingForm(initial={"stacking": stacking_policy(actor.organisation.pk)})
    context = {"promotions": list(promotions(actor)), "stacking_form": form, "subtab": "promotions"}
    return _settings_page(request, "frontdesk/promotions/promotions.html", context, status=status)


@staff_view(Perm.PROMOTIONS_MANAGE)
@require_GET
def promotion_list(request: HttpRequest) -> HttpResponse:
    return _promotions_page(request)


@staff_view(Perm.PROMOTIONS_MANAGE)
@require_http_methods(["GET", "POST"])
def promotion_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    actor = get_actor(request)
    existing = promotion_get(actor, pk) if pk is not None else None
    initial: dict[str, Any] = {"priority": 100, "is_active": True}
    if existing is not None:
        initial = PromotionForm.initial_for(promotion_input(existing))
    form = PromotionForm(request.POST or None, initial=initial, actor=actor)
    if request.method == "POST" and form.is_valid():
        try:
            saved = promotion_save(actor=actor, data=form.to_input(), promotion=existing)
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases=PromotionForm.ALIASES)
        else:
            messages.success(request, _("促销活动 %(name)s 已保存。") % {"name": saved.name})
            return redirect("frontdesk:promo_promotions")
    context = {"form": form, "existing": existing, "subtab": "promotions"}
    return _settings_page(
        request, "frontdesk/promotions/promotion_form.html", context, status=400 if form.errors else 200
    )


@staff_view(Perm.PROMOTIONS_MANAGE)
@require_POST
def promotion_stacking(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    form = StackingForm(request.POST)
    if form.is_valid():
        try:
            promotion_settings_set(actor=actor, stacking=form.cleaned_data["stacking"])
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(request, _("叠加规则已保存。"))
            return redirect("frontdesk:promo_promotions")
    return _promotions_page(request, form, status=400)


# --- A member's coupons -------------------------------------------------------------------------------------------


def _can_issue(actor: Actor, member: Member) -> bool:
    return actor.can(Perm.MEMBER_EDIT) and member.status == MemberStatus.ACTIVE


def _coupon_rows(coupons: list[Coupon], *, void_forms: dict[int, CouponVoidForm] | None = None) -> list[dict[str, Any]]:
    void_forms = void_forms or {}
    return [
        {
            "coupon": c,
            "badge": STATUS_BADGE.get(CouponStatus(c.status), ""),
            "void_form": void_forms.get(c.pk) or CouponVoidForm(prefix=f"v{c.pk}"),
            "void_open": c.pk in void_forms,
        }
        for c in coupons
    ]


def _member_coupons_page(
    request: HttpRequest,
    member: Member,
    *,
    issue_form: CouponIssueForm | None = None,
    void_forms: dict[int, CouponVoidForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    actor = get_actor(request)
    can_issue = _can_issue(actor, member)
    if issue_form is None and can_issue:
        issue_form = CouponIssueForm(initial={"idempotency_key": new_idempotency_key()}, actor=actor)
    context = {
        "member": member,
        "rows": _coupon_rows(list(coupons_held(actor, member)), void_forms=void_forms),
        "issue_form": issue_form,
        "can_issue": can_issue,
        "can_void": actor.can(Perm.MEMBER_EDIT),
    }
    response = render(request, "frontdesk/promotions/member.html", context, status=status)
    patch_cache_control(response, private=True, no_store=True)
    return response


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def member_coupons(request: HttpRequest, pk: int) -> HttpResponse:
    member = member_get(get_actor(request), pk)
    return _member_coupons_page(request, member)


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def member_coupons_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the coupons card of the member page (her active coupons first)."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    if not is_htmx(request):
        return redirect("frontdesk:member_coupons", pk=member.pk)
    active = list(coupons_held(actor, member, active_only=True))
    context = {
        "member": member,
        "active": active[:PANEL_COUPONS],
        "active_count": len(active),
        "can_issue": _can_issue(actor, member),
    }
    response = render(request, "frontdesk/promotions/_member_panel.html", context)
    patch_cache_control(response, private=True, no_store=True)
    return response


@staff_view(Perm.MEMBER_EDIT)
@require_POST
def member_coupon_issue(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    member = member_get(actor, pk)
    form = CouponIssueForm(request.POST, actor=actor)
    if form.is_valid():
        try:
            template = coupon_template_get(actor, form.cleaned_data["template"])
            coupon = coupon_issue(
                actor=actor,
                member=member,
                template=template,
                source="manual",
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases={"member": "template"})
        else:
            messages.success(
                request,
                _("已发放 %(name)s，券号 %(code)s。") % {"name": coupon.template.name, "code": coupon.code},
            )
            return redirect("frontdesk:member_coupons", pk=member.pk)
    return _member_coupons_page(request, member, issue_form=form, status=400)


@staff_view(Perm.MEMBER_EDIT)
@require_POST
def member_coupon_void(request: HttpRequest, pk: int, coupon_id: int) -> HttpResponse:
    actor = get_actor(request)
    member = member_get(actor, pk)
    coupon = coupon_get(actor, coupon_id)
    if coupon.member_id != member.pk:
        raise not_found("coupon.not_found", "优惠券", "Coupon")
    form = CouponVoidForm(request.POST, prefix=f"v{coupon.pk}")
    if form.is_valid():
        try:
            coupon_void(actor=actor, coupon=coupon, reason=form.cleaned_data["reason"])
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(request, _("优惠券 %(code)s 已作废。") % {"code": coupon.code})
            return redirect("frontdesk:member_coupons", pk=member.pk)
    return _member_coupons_page(request, member, void_forms={coupon.pk: form}, status=400)


urlpatterns = [
    path("settings/coupons/", coupon_template_list, name="promo_coupon_templates"),
    path("settings/coupons/new/", coupon_template_edit, name="promo_coupon_template_create"),
    path("settings/coupons/<int:pk>/", coupon_template_edit, name="promo_coupon_template_edit"),
    path("settings/promotions/", promotion_list, name="promo_promotions"),
    path("settings/promotions/new/", promotion_edit, name="promo_promotion_create"),
    path("settings/promotions/<int:pk>/", promotion_edit, name="promo_promotion_edit"),
    path("settings/promotions/stacking/", promotion_stacking, name="promo_stacking"),
    path("members/<int:pk>/coupons/", member_coupons, name="member_coupons"),
    path("members/<int:pk>/coupons/panel/", member_coupons_panel, name="member_coupons_panel"),
    path("members/<int:pk>/coupons/issue/", member_coupon_issue, name="member_coupon_issue"),
    path("members/<int:pk>/coupons/<int:coupon_id>/void/", member_coupon_void, name="member_coupon_void"),
]
