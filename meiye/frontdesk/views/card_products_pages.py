"""Stored-value card products (储值卡种类) and their recharge rules (充X送Y) — HQ settings (``cards.manage``):
the list, a product's form (caps, cooling-off days, contract terms, default) with its rules, and a rule's form
(threshold, bonus, monthly parts, points, coupons, tier, dates).

The routes of the member's stored-value actions added with them (the recharge preview, the cooling-off
refund, closing a card; views in ``meiye.frontdesk.views.wallet``) are collected here too, and included by
``meiye.frontdesk.urls``. Views parse and call one service; refusals show beside the field they name.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.frontdesk.forms_sales import add_sales_error
from meiye.frontdesk.forms_wallet import CardProductForm, RechargeRuleForm
from meiye.frontdesk.views import wallet
from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.loyalty.selectors import tiers_list
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.promotions.models import CouponTemplate
from meiye.wallet.models import CardProduct, RechargeRule
from meiye.wallet.selectors import card_product_get, card_products, recharge_rule_get, recharge_rules, rule_label
from meiye.wallet.services import (
    CardProductInput,
    RechargeRuleInput,
    card_product_save,
    recharge_rule_save,
)


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, template, context, status=status)
    patch_cache_control(response, private=True, no_store=True)
    return response


def _fen(value: Money | None) -> int | None:
    return value.fen if isinstance(value, Money) else None


@staff_view(Perm.CARDS_MANAGE)
@require_GET
def card_product_list(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    products = list(card_products(actor.organisation.pk))
    rows = [{"product": p, "rules": list(recharge_rules(p))} for p in products]
    return _render(request, "frontdesk/card_products/list.html", {"rows": rows})


@staff_view(Perm.CARDS_MANAGE)
@require_http_methods(["GET", "POST"])
def card_product_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    actor = get_actor(request)
    existing = card_product_get(actor.organisation.pk, pk) if pk is not None else None
    initial: dict[str, Any] = {}
    if existing is not None:
        initial = {
            "code": existing.code,
            "name": existing.name,
            "named_cap": Money(existing.named_cap_fen).as_decimal_string() if existing.named_cap_fen else "",
            "anonymous_cap": (
                Money(existing.anonymous_cap_fen).as_decimal_string() if existing.anonymous_cap_fen else ""
            ),
            "cooling_off_days": existing.cooling_off_days,
            "terms": existing.terms,
            "is_default": existing.is_default,
            "active": existing.active,
        }
    form = CardProductForm(request.POST or None, initial=initial, editing=existing is not None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            saved = card_product_save(
                actor=actor,
                product=existing,
                data=CardProductInput(
                    code=existing.code if existing is not None else d["code"],
                    name=d["name"],
                    named_cap_fen=_fen(d["named_cap"]),
                    anonymous_cap_fen=_fen(d["anonymous_cap"]),
                    cooling_off_days=d["cooling_off_days"],
                    terms=d["terms"],
                    is_default=d["is_default"],
                    active=d["active"],
                ),
            )
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases={"named_cap_fen": "named_cap", "anonymous_cap_fen": "anonymous_cap"})
        else:
            messages.success(request, _("储值卡种类 %(name)s 已保存。") % {"name": saved.name})
            return redirect("frontdesk:card_product_edit", pk=saved.pk)
    context: dict[str, Any] = {"form": form, "product": existing}
    if existing is not None:
        context["rules"] = [(rule, rule.name or rule_label(rule)) for rule in recharge_rules(existing)]
    return _render(request, "frontdesk/card_products/form.html", context, status=400 if form.errors else 200)


def _rule_form(actor: Actor, data: Any, initial: dict[str, Any]) -> RechargeRuleForm:
    templates = [
        (t.pk, t.name)
        for t in CouponTemplate.objects.filter(organisation=actor.organisation, is_active=True).order_by("name")
    ]
    tiers = [(t.pk, str(t)) for t in tiers_list(actor.organisation)]
    return RechargeRuleForm(data, initial=initial, templates=templates, tiers=tiers)


def _rule_initial(rule: RechargeRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "threshold": Money(rule.threshold_fen).as_decimal_string(),
        "bonus": Money(rule.bonus_fen).as_decimal_string(),
        "instalments": rule.instalments,
        "bonus_points": rule.bonus_points,
        "coupon_template": rule.coupon_template_id,
        "coupon_count": rule.coupon_count,
        "grant_tier": rule.grant_tier_id,
        "grant_months": rule.grant_months,
        "starts_on": rule.starts_on,
        "ends_on": rule.ends_on,
        "active": rule.active,
    }


@staff_view(Perm.CARDS_MANAGE)
@require_http_methods(["GET", "POST"])
def recharge_rule_edit(request: HttpRequest, pk: int, rule_id: int | None = None) -> HttpResponse:
    actor = get_actor(request)
    product: CardProduct = card_product_get(actor.organisation.pk, pk)
    existing = recharge_rule_get(product, rule_id) if rule_id is not None else None
    form = _rule_form(actor, request.POST or None, _rule_initial(existing) if existing is not None else {})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            recharge_rule_save(
                actor=actor,
                product=product,
                rule=existing,
                data=RechargeRuleInput(
                    threshold_fen=d["threshold"].fen,
                    bonus_fen=form.bonus_fen(),
                    instalments=d["instalments"],
                    bonus_points=d["bonus_points"],
                    name=d["name"],
                    coupon_template_id=d["coupon_template"],
                    coupon_count=d["coupon_count"],
                    grant_tier_id=d["grant_tier"],
                    grant_months=d["grant_months"],
                    active=d["active"],
                    starts_on=d["starts_on"],
                    ends_on=d["ends_on"],
                ),
            )
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(request, _("充值规则已保存。"))
            return redirect("frontdesk:card_product_edit", pk=product.pk)
    context = {"form": form, "product": product, "rule": existing}
    return _render(request, "frontdesk/card_products/rule_form.html", context, status=400 if form.errors else 200)


urlpatterns: list[URLPattern | URLResolver] = [
    path("settings/card-products/", card_product_list, name="card_product_list"),
    path("settings/card-products/new/", card_product_edit, name="card_product_create"),
    path("settings/card-products/<int:pk>/", card_product_edit, name="card_product_edit"),
    path("settings/card-products/<int:pk>/rules/new/", recharge_rule_edit, name="recharge_rule_create"),
    path("settings/card-products/<int:pk>/rules/<int:rule_id>/", recharge_rule_edit, name="recharge_rule_edit"),
    # A member's stored value (views in frontdesk.views.wallet).
    path("members/<int:pk>/wallet/recharge/preview/", wallet.member_recharge_preview, name="member_recharge_preview"),
    path(
        "members/<int:pk>/wallet/recharges/<int:recharge_id>/refund/",
        wallet.member_recharge_refund,
        name="member_recharge_refund",
    ),
    path("members/<int:pk>/wallet/close/", wallet.member_wallet_close, name="member_wallet_close"),
]
