"""Bills (消费单): the day's list with filters, a bill's page, voiding an open bill, refunds (whole bill or
some lines, to the original tenders or to stored value), the printable receipt and the daily close (日结).

Every bill is loaded through ``sales.selectors.bill_get`` first, so a bill of a store the staff member
cannot see is a 404 whatever the action.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from meiye.catalog.models import EarningCategory
from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.frontdesk.forms_sales import (
    BillFilterForm,
    DayForm,
    RefundForm,
    VoidForm,
    add_sales_error,
    new_idempotency_key,
)
from meiye.frontdesk.labels import label_of
from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.org.models import Store
from meiye.org.roles import Perm
from meiye.sales.models import Bill, BillStatus, TenderKind
from meiye.sales.selectors import bill_contracts, bill_get, bills_list, daily_close, receipt
from meiye.sales.services import bill_refund, bill_void

RECEIPT_FORMATS = ("80mm", "a4")
PAGE_SIZE = 50


def store_today(store: Store | None) -> date:
    zone = ZoneInfo(store.time_zone or "Asia/Shanghai") if store is not None else None
    return timezone.localtime(timezone.now(), zone).date()


# --- List and detail ---------------------------------------------------------------------------------------------


@staff_view()
@require_GET
def bill_list(request: HttpRequest) -> HttpResponse:
    """The current store's bills: today by default, or a date range and a status."""
    actor = get_actor(request)
    store = actor.store
    today = store_today(store)
    data = request.GET.copy()
    if not data.get("date_from") and not data.get("date_to"):
        data["date_from"] = data["date_to"] = today.isoformat()
    form = BillFilterForm(data)
    bills: Any = []
    page = None
    if store is not None:
        filters: dict[str, Any] = {"date_from": today, "date_to": today, "status": None}
        if form.is_valid():
            filters = {
                "date_from": form.cleaned_data["date_from"],
                "date_to": form.cleaned_data["date_to"],
                "status": form.cleaned_data["status"] or None,
            }
        page = Paginator(bills_list(actor, store, **filters), PAGE_SIZE).get_page(request.GET.get("page"))
        bills = page.object_list
    context = {"form": form, "bills": bills, "page": page, "store": store, "today": today}
    return render(request, "frontdesk/bills/list.html", context, status=400 if form.errors else 200)


def _detail_context(request: HttpRequest, bill: Bill, **extra: Any) -> dict[str, Any]:
    actor = get_actor(request)
    lines = list(bill.lines.select_related("performed_by", "sold_by", "approved_by").order_by("pk"))
    refunds = list(bill.refunds.select_related("created_by").prefetch_related("lines__line").order_by("pk"))
    refundable = bill.status == BillStatus.COMPLETED and any(line.remaining_quantity > 0 for line in lines)
    context: dict[str, Any] = {
        "bill": bill,
        "receipt": receipt(actor, bill),
        "lines": lines,
        "refunds": refunds,
        "can_refund": refundable and actor.can(Perm.REFUND),
        "can_checkout": actor.can(Perm.CHECKOUT),
        "void_form": extra.pop("void_form", None) or VoidForm(),
    }
    context.update(extra)
    return context


@staff_view()
@require_GET
def bill_detail(request: HttpRequest, pk: int) -> HttpResponse:
    bill = bill_get(get_actor(request), pk)
    return render(request, "frontdesk/bills/detail.html", _detail_context(request, bill))


@staff_view(Perm.CHECKOUT)
@require_POST
def bill_void_view(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    bill = bill_get(actor, pk)
    form = VoidForm(request.POST)
    if form.is_valid():
        try:
            bill_void(actor=actor, bill=bill, reason=form.cleaned_data["reason"])
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(request, _("消费单 %(no)s 已作废。") % {"no": bill.number})
            return redirect("frontdesk:checkout")
    return render(request, "frontdesk/bills/detail.html", _detail_context(request, bill, void_form=form), status=400)


# --- Refund ------------------------------------------------------------------------------------------------------


@staff_view(Perm.REFUND)
@require_http_methods(["GET", "POST"])
def bill_refund_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Refund the whole bill or some of its lines. The key is rendered into the form, so the same form
    sent twice refunds once."""
    actor = get_actor(request)
    bill = bill_get(actor, pk)
    lines = [line for line in bill.lines.order_by("pk") if line.remaining_quantity > 0]
    if request.method == "POST":
        form = RefundForm(request.POST, bill_lines=lines)
    else:
        form = RefundForm(initial={"idempotency_key": new_idempotency_key()}, bill_lines=lines)
    if request.method == "POST" and form.is_valid():
        try:
            refund = bill_refund(
                actor=actor,
                bill=bill,
                lines=form.refund_lines(),
                destination=form.cleaned_data["destination"],
                reason=form.cleaned_data["reason"],
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            messages.success(
                request,
                _("已退款 %(amount)s（消费单 %(no)s）。") % {"amount": Money(refund.amount_fen), "no": bill.number},
            )
            return redirect("frontdesk:bill_detail", pk=bill.pk)
    context = _detail_context(request, bill, refund_form=form)
    return render(request, "frontdesk/bills/refund.html", context, status=400 if form.errors else 200)


# --- Receipt ----------------------------------------------------------------------------------------------------


@staff_view()
@require_GET
def receipt_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The receipt, printable on 80 mm thermal paper (``?format=80mm``, the default) or on A4."""
    actor = get_actor(request)
    bill = bill_get(actor, pk)
    paper = request.GET.get("format", "80mm")
    if paper not in RECEIPT_FORMATS:
        paper = "80mm"
    context = {
        "bill": bill,
        "r": receipt(actor, bill),
        "contracts": bill_contracts(actor, bill),
        "paper": paper,
        "done": request.GET.get("done") == "1",
        "can_checkout": actor.can(Perm.CHECKOUT),
        "status_choices": BillStatus,
    }
    response = render(request, "frontdesk/receipts/receipt.html", context)
    patch_cache_control(response, private=True, no_store=True)
    return response


# --- Daily close ---------------------------------------------------------------------------------------------------


def _labelled(amounts: dict[str, Any], choices: Any) -> list[tuple[str, Any]]:
    return [(label_of(choices, key), amount) for key, amount in amounts.items()]


@staff_view(Perm.DAILY_CLOSE)
@require_GET
def daily_close_view(request: HttpRequest) -> HttpResponse:
    """The close of the till (日结) of the current store for a day (today by default)."""
    actor = get_actor(request)
    store = actor.store
    form = DayForm(request.GET or None)
    day = form.day_or(store_today(store))
    if store is None:
        return render(request, "frontdesk/bills/daily_close.html", {"form": form, "store": None, "day": day})
    close = daily_close(actor, store, day)
    context = {
        "form": form if form.is_bound else DayForm(initial={"day": day}),
        "store": store,
        "day": day,
        "close": close,
        "by_tender": _labelled(close.by_tender, TenderKind),
        "by_category": _labelled(close.by_category, EarningCategory),
        "refunds_by_tender": _labelled(close.refunds_by_tender, TenderKind),
        "refunds_by_category": _labelled(close.refunds_by_category, EarningCategory),
        "takings_by_tender": _labelled(close.takings_by_tender, TenderKind),
    }
    return render(request, "frontdesk/bills/daily_close.html", context)
