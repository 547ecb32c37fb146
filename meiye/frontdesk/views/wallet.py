"""A member's stored value and points: the panel on the member page (principal, bonus, points), the
page with the points lots (and when they expire), the movements and the recharges, and the recharge form.

The member is loaded through ``members.selectors.member_get`` first, so a member of a store the staff
member cannot see is a 404 whatever the action.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.frontdesk.forms_points import PointsAdjustForm
from meiye.frontdesk.forms_sales import RechargeForm, add_sales_error, new_idempotency_key
from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.loyalty.selectors import points_balance, points_lots
from meiye.loyalty.services import points_adjust
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_get
from meiye.org.roles import Perm
from meiye.wallet.models import Tender as RechargeTender
from meiye.wallet.selectors import member_recharges, wallet_balance, wallet_history
from meiye.wallet.services import wallet_recharge

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
) -> HttpResponse:
    actor = get_actor(request)
    can_recharge = actor.can(Perm.CHECKOUT) and member.status == MemberStatus.ACTIVE
    if form is None and can_recharge:
        form = RechargeForm(initial={"idempotency_key": new_idempotency_key(), "tender": RechargeTender.WECHAT})
    can_adjust = actor.can(Perm.MONEY_ADJUST) and member.status == MemberStatus.ACTIVE
    if adjust_form is None and can_adjust:
        adjust_form = PointsAdjustForm(initial={"idempotency_key": new_idempotency_key()})
    context = {
        "member": member,
        **_balances(member),
        "lots": list(points_lots(member)[:LOTS_SHOWN]),
        "history": wallet_history(member, limit=HISTORY_SHOWN),
        "recharges": list(member_recharges(member)[:HISTORY_SHOWN]),
        "form": form,
        "can_recharge": can_recharge,
        "adjust_form": adjust_form if can_adjust else None,
        "codes": {
            "wallet.recharge": _("充值"),
            "sales.bill": _("消费"),
            "sales.refund": _("退款"),
        },
    }
    response = render(request, "frontdesk/wallet/page.html", context, status=status)
    patch_cache_control(response, private=True, no_store=True)
    return response


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
    form = RechargeForm(request.POST)
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
            )
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(
                request,
                _("已充值 %(amount)s，赠送 %(bonus)s。")
                % {"amount": Money(recharge.amount_fen), "bonus": Money(recharge.bonus_fen)},
            )
            return redirect("frontdesk:member_wallet", pk=member.pk)
    return _wallet_page(request, member, form, status=400)


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
