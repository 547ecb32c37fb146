"""Gift cards (礼品卡) at the front desk.

- Sell (``sales.checkout``): face value, price, quantity, single or multiple use, expiry, tender. The answer shows
  each new card's full code ONCE, with a printable voucher; it is never cached and no other page shows a code.
- Look up (``sales.checkout``): a card by its code, sent by POST so that codes never land in URLs or logs;
  shows the balance, expiry and uses with the code masked.
- List (``sales.checkout`` or ``money.adjust``): the cards sold in the stores one may see, masked, with filters.
- A card's page, and void (``money.adjust``): take back an unused card sold by mistake.

Views parse and call one service; refusals show beside the field they name.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
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

from meiye.core.errors import ApplicationError
from meiye.frontdesk.forms_sales import MoneyField, add_sales_error
from meiye.frontdesk.labels import bilingual, choices_of
from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.giftcards.models import GiftCard, GiftCardStatus
from meiye.giftcards.selectors import (
    CardFilter,
    format_code,
    gift_card_balance,
    gift_card_balances,
    gift_card_for_code,
    gift_card_get,
    gift_card_uses,
    gift_cards,
)
from meiye.giftcards.services import MAX_QUANTITY, gift_card_sell, gift_card_void
from meiye.loyalty.selectors import local_today
from meiye.org.roles import Perm
from meiye.org.selectors import stores_visible
from meiye.wallet.models import Tender

LIST_PAGE = 50
DEFAULT_VALIDITY_DAYS = 365

_lazy = gettext_lazy


# --- Forms --------------------------------------------------------------------------------------------------------


def _new_key() -> str:
    return uuid.uuid4().hex


class SellForm(forms.Form):
    face = MoneyField(label=_lazy("面值（元）"))
    price = MoneyField(label=_lazy("售价（元）"), help_text=_lazy("不高于面值；低于面值的部分记为礼品卡折让"))
    quantity = forms.IntegerField(label=_lazy("数量"), min_value=1, max_value=MAX_QUANTITY, initial=1)
    multi_use = forms.TypedChoiceField(
        label=_lazy("使用次数"),
        choices=[("1", _lazy("可多次使用，直到用完")), ("0", _lazy("单次使用（余额作废）"))],
        coerce=lambda value: value == "1",
        initial="1",
        widget=forms.RadioSelect,
    )
    expires_on = forms.DateField(label=_lazy("有效期至"), widget=forms.DateInput(attrs={"type": "date"}))
    tender = forms.ChoiceField(label=_lazy("支付方式"), choices=choices_of(Tender))
    external_ref = forms.CharField(label=_lazy("支付流水号"), required=False, max_length=64)
    idempotency_key = forms.CharField(max_length=128, required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        super().clean()
        if not self.cleaned_data.get("idempotency_key"):
            self.cleaned_data.pop("idempotency_key", None)
            self.add_error(None, _("这张表单已失效，请刷新页面后重试。"))
        return self.cleaned_data


class LookupForm(forms.Form):
    code = forms.CharField(
        label=_lazy("礼品卡卡号"),
        max_length=64,
        help_text=_lazy("16 位卡号，可带或不带横线"),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": "autofocus", "spellcheck": "false"}),
    )


class ListFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_lazy("状态"), required=False, choices=[("", _lazy("全部")), *choices_of(GiftCardStatus)]
    )
    store = forms.TypedChoiceField(label=_lazy("售卡门店"), required=False, coerce=int, empty_value=None)
    sold_from = forms.DateField(
        label=_lazy("售出日期从"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    sold_to = forms.DateField(label=_lazy("售出日期至"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, store_choices: list[tuple[Any, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["store"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _lazy("全部")), *store_choices]


class VoidForm(forms.Form):
    reason = forms.CharField(label=_lazy("作废原因"), max_length=200)
    idempotency_key = forms.CharField(max_length=128, required=False, widget=forms.HiddenInput)


# --- Helpers ------------------------------------------------------------------------------------------------------


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """Render a gift-card page with what its tabs need; never cached."""
    actor = get_actor(request)
    context = {
        **context,
        "can_sell": actor.can(Perm.CHECKOUT),
        "can_void": actor.can(Perm.MONEY_ADJUST),
        "status_labels": {value: bilingual(label) for value, label in GiftCardStatus.choices},
    }
    response = render(request, template, context, status=status)
    patch_cache_control(response, private=True, no_store=True)
    return response


def _card_context(card: GiftCard) -> dict[str, Any]:
    return {"card": card, "balance": gift_card_balance(card), "uses": list(gift_card_uses(card)[:50])}


# --- Pages ---------------------------------------------------------------------------------------------------------


@staff_view()
@require_GET
def giftcard_list(request: HttpRequest) -> HttpResponse:
    """The cards sold in the stores one may see, masked, newest first."""
    actor = get_actor(request)
    stores = [(store.pk, store.name) for store in stores_visible(actor).order_by("id")]
    form = ListFilterForm(request.GET or None, store_choices=stores)
    d: dict[str, Any] = form.cleaned_data if form.is_valid() else {}
    filters = CardFilter(
        status=d.get("status") or "",
        store_id=d.get("store"),
        sold_from=d.get("sold_from"),
        sold_to=d.get("sold_to"),
    )
    page = Paginator(gift_cards(actor, filters), LIST_PAGE).get_page(request.GET.get("page"))
    cards = list(page.object_list)
    balances = gift_card_balances(cards)
    rows = [{"card": card, "balance_fen": balances[card.pk]} for card in cards]
    context = {"form": form, "page": page, "rows": rows, "tab": "list"}
    return _render(request, "frontdesk/giftcards/list.html", context)


@staff_view(Perm.CHECKOUT)
@require_http_methods(["GET", "POST"])
def giftcard_sell(request: HttpRequest) -> HttpResponse:
    """The sale form; on success the codes, once, with printable vouchers."""
    actor = get_actor(request)
    if request.method != "POST":
        today = local_today(actor.store) if actor.store is not None else date.today()
        form = SellForm(
            initial={
                "quantity": 1,
                "multi_use": "1",
                "expires_on": today + timedelta(days=DEFAULT_VALIDITY_DAYS),
                "idempotency_key": _new_key(),
            }
        )
        return _render(request, "frontdesk/giftcards/sell.html", {"form": form, "tab": "sell"})
    form = SellForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            cards = gift_card_sell(
                actor=actor,
                face=d["face"],
                price=d["price"],
                tender=d["tender"],
                external_ref=d["external_ref"],
                multi_use=d["multi_use"],
                expires_on=d["expires_on"],
                quantity=d["quantity"],
                idempotency_key=d["idempotency_key"],
            )
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases={"store": "__all__"})
        else:
            sale = cards[0].sale
            vouchers = [{"card": card, "code": format_code(card.code or "")} for card in cards]
            context = {"sale": sale, "vouchers": vouchers, "store": sale.store, "tab": "sell"}
            return _render(request, "frontdesk/giftcards/sold.html", context)
    return _render(request, "frontdesk/giftcards/sell.html", {"form": form, "tab": "sell"}, status=400)


@staff_view(Perm.CHECKOUT)
@require_http_methods(["GET", "POST"])
def giftcard_lookup(request: HttpRequest) -> HttpResponse:
    """Find a card by its code (POST, so the code is in no URL): balance, expiry, uses; the code masked."""
    actor = get_actor(request)
    form = LookupForm(request.POST if request.method == "POST" else None)
    context: dict[str, Any] = {"form": form, "tab": "lookup"}
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                card = gift_card_for_code(actor, form.cleaned_data["code"])
            except ApplicationError as exc:
                add_sales_error(form, exc)
                status = 404 if exc.code == "giftcard.not_found" else 400
            else:
                context |= _card_context(card)
                context["form"] = LookupForm()  # the next look-up starts empty: the code is not echoed back
        else:
            status = 400
    return _render(request, "frontdesk/giftcards/lookup.html", context, status=status)


@staff_view()
@require_GET
def giftcard_detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    card = gift_card_get(actor, pk)
    context = _card_context(card) | {"tab": "list"}
    if actor.can(Perm.MONEY_ADJUST) and card.status == GiftCardStatus.ACTIVE:
        context["void_form"] = VoidForm(initial={"idempotency_key": _new_key()})
    return _render(request, "frontdesk/giftcards/detail.html", context)


@staff_view(Perm.MONEY_ADJUST)
@require_POST
def giftcard_void(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    card = gift_card_get(actor, pk)
    form = VoidForm(request.POST)
    if form.is_valid():
        try:
            gift_card_void(
                actor=actor,
                card=card,
                reason=form.cleaned_data["reason"],
                idempotency_key=form.cleaned_data["idempotency_key"] or _new_key(),
            )
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(
                request, _("礼品卡 %(code)s 已作废，售价已按原支付方式退回。") % {"code": card.masked_code}
            )
            return redirect("frontdesk:giftcard_detail", pk=card.pk)
    context = _card_context(card) | {"tab": "list", "void_form": form}
    return _render(request, "frontdesk/giftcards/detail.html", context, status=400)


# Included by meiye/frontdesk/urls.py (names in the "frontdesk" namespace).
urlpatterns = [
    path("gift-cards/", giftcard_list, name="giftcard_list"),
    path("gift-cards/sell/", giftcard_sell, name="giftcard_sell"),
    path("gift-cards/lookup/", giftcard_lookup, name="giftcard_lookup"),
    path("gift-cards/<int:pk>/", giftcard_detail, name="giftcard_detail"),
    path("gift-cards/<int:pk>/void/", giftcard_void, name="giftcard_void"),
]
