"""A member's stored value and points: the panel on the member page (principal, bonus, points), the
page with the points lots (and when they expire), the movements and the recharges, the recharge form (card
product, named or anonymous, a live preview of the recharge rule's bonus), the pending bonus instalments,
and for ``prepaid.refund`` the cooling-off refund of a recent recharge and closing the card (退卡结清).

The member is loaded through ``members.selectors.member_get`` first, so a member of a store the staff
member cannot see is a 404 whatever the action.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.frontdesk.forms_points import PointsAdjustForm
from meiye.frontdesk.forms_sales import add_sales_error, new_idempotency_key
from meiye.frontdesk.forms_wallet import RechargeForm, RechargeRefundForm, WalletCloseForm
from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.loyalty.selectors import local_today, points_balance, points_lots
from meiye.loyalty.services import points_adjust
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_get
from meiye.org.roles import Perm
from meiye.wallet.models import Recharge
from meiye.wallet.models import Tender as RechargeTender
from meiye.wallet.selectors import (
    card_product_default,
    card_products,
    member_instalments,
    member_recharge_get,
    member_recharges,
    recharge_preview,
    recharge_refundable,
    wallet_balance,
    wallet_history,
)
from meiye.wallet.services import wallet_close, wallet_recharge, wallet_recharge_refund

_F = TypeVar("_F", bound=RechargeRefundForm)

LOTS_SHOWN = 50
HISTORY_SHOWN = 30


def _balances(member: Member) -> dict[str, Any]:
    return {"wallet": wallet_balance(member), "points": points_balance(member)}


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def member_wallet_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the stored value and points panel of the member page."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    context = {
        "member": member,
        **_balances(member),
        "lots": list(points_lots(member)[:3]),
        "can_checkout": actor.can(Perm.CHECKOUT) and member.status == MemberStatus.ACTIVE,
    }
    response = render(request, "frontdesk/wallet/_panel.html", context)
    patch_cache_control(response, private=True, no_store=True)
    return response


def _wallet_page(
    request: HttpRequest,
    member: Member,
    form: RechargeForm | None,
    *,
    status: int = 200,
    adjust_form: PointsAdjustForm | None = None,
    refund_form: tuple[int, RechargeRefundForm] | None = None,
    close_form: WalletCloseForm | None = None,
) -> HttpResponse:
    actor = get_actor(request)
    active = member.status == MemberStatus.ACTIVE
    can_recharge = actor.can(Perm.CHECKOUT) and active
    products = list(card_products(actor.organisation.pk, active_only=True))
    if form is None and can_recharge:
        form = RechargeForm(
            initial={"idempotency_key": new_idempotency_key(), "tender": RechargeTender.WECHAT}, products=products
        )
    can_adjust = actor.can(Perm.MONEY_ADJUST) and active
    if adjust_form is None and can_adjust:
        adjust_form = PointsAdjustForm(initial={"idempotency_key": new_idempotency_key()})
    recharges = list(member_recharges(member)[:HISTORY_SHOWN])
    can_refund = actor.can(Perm.PREPAID_REFUND)
    refunds: list[tuple[Recharge, RechargeRefundForm]] = []
    if can_refund:
        for rc in recharges:
            if recharge_refundable(rc, local_today(rc.store)):
                bound = refund_form[1] if refund_form is not None and refund_form[0] == rc.pk else None
                refunds.append((rc, bound or _fresh(RechargeRefundForm)))
    balance = wallet_balance(member)
    if close_form is None and can_refund and (balance.total.fen or balance.pending.fen):
        close_form = _fresh(WalletCloseForm)
    context = {
        "member": member,
        "wallet": balance,
        "points": points_balance(member),
        "lots": list(points_lots(member)[:LOTS_SHOWN]),
        "history": wallet_history(member, limit=HISTORY_SHOWN),
        "recharges": recharges,
        "instalments": list(member_instalments(member, pending_only=True)),
        "form": form,
        "can_recharge": can_recharge,
        "has_products": bool(products),
        "adjust_form": adjust_form if can_adjust else None,
        "refunds": refunds,
        "close_form": close_form if can_refund else None,
        "codes": {
            "wallet.recharge": _("充值"),
            "sales.bill": _("消费"),
            "sales.refund": _("退款"),
            "wallet.bonus_release": _("赠送金分期到账"),
            "wallet.recharge_refund": _("冷静期退款"),
            "wallet.close": _("退卡结清"),
            "wallet.transfer": _("储值转移"),
            "wallet.merge": _("会员合并"),
        },
    }
    response = render(request, "frontdesk/wallet/page.html", context, status=status)
    patch_cache_control(response, private=True, no_store=True)
    return response


def _fresh(form_class: type[_F]) -> _F:
    return form_class(initial={"idempotency_key": new_idempotency_key(), "tender": RechargeTender.WECHAT})


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def member_wallet(request: HttpRequest, pk: int) -> HttpResponse:
    member = member_get(get_actor(request), pk)
    return _wallet_page(request, member, None)


@staff_view(Perm.CHECKOUT)
@require_http_methods(["POST"])
def member_recharge(request: HttpRequest, pk: int) -> HttpResponse:
    """Top up the member's stored value. The key is rendered into the form when the page is shown, so the
    same form sent twice recharges once."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    form = RechargeForm(request.POST, products=list(card_products(actor.organisation.pk, active_only=True)))
    if form.is_valid():
        d = form.cleaned_data
        try:
            recharge = wallet_recharge(
                actor=actor,
                member=member,
                amount=d["amount"],
                bonus=d["bonus"] or Money(0),
                tender=d["tender"],
                external_ref=d["external_ref"],
                idempotency_key=d["idempotency_key"],
                product=d.get("product"),
                named=d.get("named", True),
            )
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            if recharge.pending_bonus_fen:
                messages.success(
                    request,
                    _("已充值 %(amount)s，赠送 %(bonus)s，另有 %(pending)s 按月到账。")
                    % {
                        "amount": Money(recharge.amount_fen),
                        "bonus": Money(recharge.bonus_fen),
                        "pending": Money(recharge.pending_bonus_fen),
                    },
                )
            else:
                messages.success(
                    request,
                    _("已充值 %(amount)s，赠送 %(bonus)s。")
                    % {"amount": Money(recharge.amount_fen), "bonus": Money(recharge.bonus_fen)},
                )
            return redirect("frontdesk:member_wallet", pk=member.pk)
    return _wallet_page(request, member, form, status=400)


@staff_view(Perm.CHECKOUT)
@require_GET
def member_recharge_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the bonus the recharge rule gives the amount typed (充3000送600：立即到账 100.00 …)."""
    actor = get_actor(request)
    member_get(actor, pk)
    products = {p.pk: p for p in card_products(actor.organisation.pk, active_only=True)}
    raw_product = (request.GET.get("product") or "").strip()
    product = products.get(int(raw_product)) if raw_product.isdigit() else None
    if "product" not in request.GET:
        product = card_product_default(actor.organisation.pk)
    plan = None
    try:
        amount = Money.parse(request.GET.get("amount") or "")
    except ApplicationError:
        amount = None
    if amount is not None and amount.fen > 0:
        plan = recharge_preview(product=product, amount=amount, on=local_today(actor.store))
    text = plan.describe() if plan is not None and plan.rule is not None else None
    english = (get_language() or "").startswith("en")
    context = {"plan": plan, "text": (text["en"] if english else text["zh-hans"]) if text else None}
    response = render(request, "frontdesk/wallet/_preview.html", context)
    patch_cache_control(response, private=True, no_store=True)
    return response


@staff_view(Perm.PREPAID_REFUND)
@require_http_methods(["POST"])
def member_recharge_refund(request: HttpRequest, pk: int, recharge_id: int) -> HttpResponse:
    """The cooling-off refund of one recharge (S-14)."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    recharge = member_recharge_get(member, recharge_id)
    form = RechargeRefundForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            wallet_recharge_refund(
                actor=actor,
                recharge=recharge,
                tender=d["tender"],
                reason=d["reason"],
                idempotency_key=d["idempotency_key"],
            )
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases={"recharge": "__all__"})
        else:
            messages.success(
                request, _("已退还充值 %(amount)s，赠送金已取消。") % {"amount": Money(recharge.amount_fen)}
            )
            return redirect("frontdesk:member_wallet", pk=member.pk)
    return _wallet_page(request, member, None, status=400, refund_form=(recharge.pk, form))


@staff_view(Perm.PREPAID_REFUND)
@require_http_methods(["POST"])
def member_wallet_close(request: HttpRequest, pk: int) -> HttpResponse:
    """Close the member's stored value: the remaining principal back, bonus forfeited, pending cancelled (S-15)."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    form = WalletCloseForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            closure = wallet_close(
                actor=actor, member=member, tender=d["tender"], reason=d["reason"], idempotency_key=d["idempotency_key"]
            )
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases={"member": "__all__"})
        else:
            messages.success(
                request,
                _("已退卡结清：退还本金 %(principal)s，扣回赠送金 %(bonus)s，取消待到账 %(pending)s。")
                % {
                    "principal": Money(closure.principal_fen),
                    "bonus": Money(closure.bonus_forfeited_fen),
                    "pending": Money(closure.pending_cancelled_fen),
                },
            )
            return redirect("frontdesk:member_wallet", pk=member.pk)
    return _wallet_page(request, member, None, status=400, close_form=form)


@staff_view(Perm.MONEY_ADJUST)
@require_http_methods(["POST"])
def member_points_adjust(request: HttpRequest, pk: int) -> HttpResponse:
    """Adjust the member's points by hand, with a reason (audited). The key is rendered into the form, so
    the same form sent twice adjusts once."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    form = PointsAdjustForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            points_adjust(
                actor=actor,
                member=member,
                points=d["points"],
                reason=d["reason"],
                idempotency_key=d["idempotency_key"],
            )
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(request, _("已调整积分 %(points)s。") % {"points": f"{d['points']:+d}"})
            return redirect("frontdesk:member_wallet", pk=member.pk)
    return _wallet_page(request, member, None, status=400, adjust_form=form)
