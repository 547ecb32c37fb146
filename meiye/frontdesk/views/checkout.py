"""The checkout screen (收银台): find the member or take a walk-in, open a bill, add items by search or
barcode, adjust lines (quantity, performer, seller, a manual price with a manager's approval), take any
mix of tenders and complete with one keystroke.

The completion's idempotency key is made when the bill is opened and kept in the session per bill, so
the form rendered again (a reload, an error) carries the same key: a double click replays the first
completion instead of charging twice, and a reload after completion finds the bill no longer open.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from meiye.cards.selectors import payment_auth_required
from meiye.cards.services import payment_code_send
from meiye.catalog.selectors import item_by_barcode, item_get, priced_items
from meiye.core.errors import ApplicationError, Conflict
from meiye.frontdesk.forms_sales import (
    AddLineForm,
    ItemSearchForm,
    LineEditForm,
    MemberLookupForm,
    OpenBillForm,
    TenderForm,
    VoidForm,
    add_sales_error,
    new_idempotency_key,
)
from meiye.frontdesk.views.common import get_actor, is_htmx, staff_view
from meiye.frontdesk.views.promotions_pages import CouponChoiceForm
from meiye.loyalty.selectors import points_balance
from meiye.members.models import Member
from meiye.members.selectors import member_get, member_search
from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.org.roles import Perm
from meiye.org.selectors import colleagues
from meiye.packages.models import PackageStatus
from meiye.packages.selectors import member_packages
from meiye.promotions.models import Coupon
from meiye.promotions.selectors import coupons_held
from meiye.sales.models import Bill, BillLine, BillStatus
from meiye.sales.selectors import bill_get, bill_offers_preview, bills_list, points_offset_quote_for
from meiye.sales.services import (
    CLEAR,
    bill_add_line,
    bill_complete,
    bill_line_update,
    bill_open,
    bill_remove_line,
    sales_settings_for,
)
from meiye.wallet.selectors import wallet_balance

SESSION_KEYS = "meiye_checkout_keys"
SESSION_COUPONS = "meiye_checkout_coupons"  # the coupons chosen on each open bill, applied at completion
MAX_REMEMBERED_KEYS = 20
ITEM_RESULTS = 24


# --- The idempotency key of each open bill --------------------------------------------------------------------


def checkout_key(request: HttpRequest, bill: Bill) -> str:
    """The completion key of ``bill`` for this screen, made on first use and kept in the session."""
    keys: dict[str, str] = dict(request.session.get(SESSION_KEYS) or {})
    key = keys.get(str(bill.pk))
    if not key:
        key = new_idempotency_key()
        keys[str(bill.pk)] = key
        while len(keys) > MAX_REMEMBERED_KEYS:
            keys.pop(next(iter(keys)))
        request.session[SESSION_KEYS] = keys
    return key


def _forget_key(request: HttpRequest, bill: Bill) -> None:
    keys: dict[str, str] = dict(request.session.get(SESSION_KEYS) or {})
    if keys.pop(str(bill.pk), None) is not None:
        request.session[SESSION_KEYS] = keys


# --- The coupons chosen on each open bill -------------------------------------------------------------------------


def _coupons_chosen(request: HttpRequest, bill: Bill) -> list[int]:
    return [int(i) for i in (request.session.get(SESSION_COUPONS) or {}).get(str(bill.pk)) or []]


def _coupons_remember(request: HttpRequest, bill: Bill, coupon_ids: list[int]) -> None:
    chosen: dict[str, list[int]] = dict(request.session.get(SESSION_COUPONS) or {})
    if coupon_ids:
        chosen[str(bill.pk)] = list(coupon_ids)
    elif chosen.pop(str(bill.pk), None) is None:
        return
    while len(chosen) > MAX_REMEMBERED_KEYS:
        chosen.pop(next(iter(chosen)))
    request.session[SESSION_COUPONS] = chosen


def _coupons_of(actor: Actor, bill: Bill) -> list[Coupon]:
    """The bill's member's active coupons (none for a walk-in customer)."""
    if bill.member is None or not actor.can(Perm.MEMBER_VIEW):
        return []
    return list(coupons_held(actor, bill.member, active_only=True))


def _posted_coupons(request: HttpRequest) -> list[int]:
    return [int(v) for v in request.POST.getlist("coupons") if v.isdigit()]


def _offers_context(request: HttpRequest, bill: Bill, coupon_form: CouponChoiceForm | None) -> dict[str, Any]:
    """The bill as completing it now would price it (promotions and the chosen coupons,
    ``sales.selectors.bill_offers_preview``): what the screen shows and the tenders must add up to. Chosen
    coupons the offers refuse (the bill changed under them: below a minimum spend …) are dropped, and why
    is shown beside the coupons, so the payable shown is always what completion charges."""
    actor = get_actor(request)
    held = _coupons_of(actor, bill)
    held_ids = {c.pk for c in held}
    applied = [i for i in _coupons_chosen(request, bill) if i in held_ids]
    error = ""
    try:
        offers = bill_offers_preview(actor, bill, coupon_ids=applied)
    except ApplicationError as exc:
        error, applied = exc.message, []
        _coupons_remember(request, bill, [])
        offers = bill_offers_preview(actor, bill)
    form = coupon_form or CouponChoiceForm(initial={"coupons": applied}, held=held)
    checked = {int(v) for v in form["coupons"].value() or [] if str(v).isdigit()}
    return {
        "offers": offers,
        "coupons_held": held,
        "coupons_applied": applied,
        "coupons_checked": checked,
        "coupon_form": form,
        "coupon_error": error,
    }


# --- Reads the screen needs -------------------------------------------------------------------------------------


def store_staff(actor: Actor, store: Store) -> tuple[list[Staff], list[Staff]]:
    """The store's active staff (who may perform or sell a line) and those of them who may approve."""
    staff = colleagues(actor, store)
    return staff, [s for s in staff if s.can(Perm.APPROVE_DISCOUNT)]


def _member_panel(member: Member | None) -> dict[str, Any] | None:
    if member is None:
        return None
    return {"member": member, "wallet": wallet_balance(member), "points": points_balance(member)}


def _package_choices(actor: Actor, bill: Bill) -> list[tuple[int, str]]:
    """The member's package items that can pay today: (item id, "面部护理10次卡 · 基础面部护理 · 剩 9 次 · 至 2027-01-15")."""
    if bill.member is None:
        return []
    today = timezone.localtime(timezone.now(), ZoneInfo(bill.store.time_zone)).date()
    choices: list[tuple[int, str]] = []
    for package in member_packages(actor, bill.member, include_closed=False):
        if package.status != PackageStatus.ACTIVE:
            continue
        for item in package.items.all():
            if item.valid_until is not None and item.valid_until < today:
                continue
            if item.count is not None and item.remaining <= 0:
                continue
            left = _("不限次") if item.count is None else _("剩 %(n)s 次") % {"n": item.remaining}
            until = _("至 %(day)s") % {"day": item.valid_until.isoformat()} if item.valid_until else _("首次使用起计")
            choices.append((item.pk, f"{package.name} · {item.name} · {left} · {until}"))
    return choices


def _bill_context(
    request: HttpRequest,
    bill: Bill,
    *,
    tender_form: TenderForm | None = None,
    line_forms: dict[int, LineEditForm] | None = None,
    coupon_form: CouponChoiceForm | None = None,
) -> dict[str, Any]:
    staff, approvers = store_staff(get_actor(request), bill.store)
    line_forms = line_forms or {}
    offers = _offers_context(request, bill, coupon_form)
    rows = []
    for line in offers["offers"].lines:
        form = line_forms.get(line.pk) or LineEditForm(
            initial=LineEditForm.initial_for(line), prefix=f"l{line.pk}", staff=staff, approvers=approvers
        )
        rows.append({"line": line, "form": form, "open": line.pk in line_forms})
    settings = sales_settings_for(bill.store)
    actor = get_actor(request)
    package_choices = _package_choices(actor, bill)
    return {
        "bill": bill,
        "rows": rows,
        "tender_form": tender_form
        or TenderForm(initial={"idempotency_key": checkout_key(request, bill)}, package_choices=package_choices),
        "has_packages": bool(package_choices),
        "points_quote": (
            points_offset_quote_for(actor, bill.member, store=bill.store, payable=offers["offers"].payable_total)
            if bill.member is not None and offers["offers"].payable_total.fen > 0
            else None
        ),
        "sv_auth": bill.member is not None and payment_auth_required(bill.member, actor.store),
        "floor_bp": settings.manual_discount_floor_bp,
        "points_per_yuan": int(bill.member_snapshot.get("points_per_yuan_offset") or settings.points_per_yuan_offset),
        **offers,
    }


def _screen(
    request: HttpRequest,
    bill: Bill,
    *,
    status: int = 200,
    tender_form: TenderForm | None = None,
    line_forms: dict[int, LineEditForm] | None = None,
    add_form: AddLineForm | None = None,
    coupon_form: CouponChoiceForm | None = None,
) -> HttpResponse:
    """The whole screen, or (htmx) only the bill part: lines, totals and tenders."""
    actor = get_actor(request)
    context = _bill_context(request, bill, tender_form=tender_form, line_forms=line_forms, coupon_form=coupon_form)
    if is_htmx(request):
        response = render(request, "frontdesk/checkout/_bill.html", context, status=status)
    else:
        search = ItemSearchForm(request.GET or None)
        query = search.cleaned_data["q"] if search.is_valid() else ""
        context.update(
            {
                "panel": _member_panel(bill.member),
                "search_form": search,
                "items": priced_items(actor, bill.store, query=query, limit=ITEM_RESULTS),
                "query": query,
                "add_form": add_form or AddLineForm(),
                "void_form": VoidForm(),
            }
        )
        response = render(request, "frontdesk/checkout/screen.html", context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _open_bill(actor: Actor, pk: int) -> Bill:
    return bill_get(actor, pk)


def _after_change(request: HttpRequest, bill: Bill) -> HttpResponse:
    bill = bill_get(get_actor(request), bill.pk)
    if is_htmx(request):
        return _screen(request, bill)
    return redirect("frontdesk:checkout_bill", pk=bill.pk)


def _not_open(request: HttpRequest, bill: Bill) -> HttpResponse:
    """Where a bill that is no longer open is shown: its receipt when completed, else its page."""
    if bill.status == BillStatus.COMPLETED:
        target = reverse("frontdesk:receipt", args=[bill.pk])
    else:
        target = reverse("frontdesk:bill_detail", args=[bill.pk])
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = target
        return response
    return redirect(target)


# --- Start: find the member, open a bill -------------------------------------------------------------------------


def _find_members(actor: Actor, query: str) -> list[Member]:
    if not query or not actor.can(Perm.MEMBER_VIEW):
        return []
    return list(member_search(actor, query, limit=20))


def _start_page(
    request: HttpRequest, form: MemberLookupForm, *, members: list[Member], status: int = 200
) -> HttpResponse:
    actor = get_actor(request)
    open_bills: list[Bill] = []
    if actor.store is not None:
        open_bills = list(bills_list(actor, actor.store, status=BillStatus.OPEN)[:20])
    context = {"form": form, "members": members, "query": form.data.get("q", ""), "open_bills": open_bills}
    return render(request, "frontdesk/checkout/start.html", context, status=status)


@staff_view(Perm.CHECKOUT)
@require_GET
def checkout_start(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    form = MemberLookupForm(request.GET)
    query = form.cleaned_data["q"].strip() if form.is_valid() else ""
    members = _find_members(actor, query)
    if is_htmx(request):
        response = render(request, "frontdesk/checkout/_member_results.html", {"members": members, "query": query})
    else:
        response = _start_page(request, form, members=members)
    patch_vary_headers(response, ["HX-Request"])
    return response


@staff_view(Perm.CHECKOUT)
@require_POST
def checkout_open(request: HttpRequest) -> HttpResponse:
    """Open a bill: for the member chosen in the list, for the one member the typed phone or number finds
    (Enter in the lookup), or for a walk-in customer."""
    actor = get_actor(request)
    form = OpenBillForm(request.POST)
    lookup = MemberLookupForm({"q": request.POST.get("q", "")})
    lookup.is_valid()
    members: list[Member] = []
    member: Member | None = None
    if not form.is_valid():
        lookup.add_error("q", _("请重新选择会员。"))
    else:
        query = (form.cleaned_data["q"] or "").strip()
        if form.cleaned_data["member"]:
            member = member_get(actor, form.cleaned_data["member"])
        elif query:
            members = _find_members(actor, query)
            if len(members) == 1:
                member = members[0]
            elif not members:
                lookup.add_error("q", _("没有找到“%(q)s”对应的会员。可以按散客开单。") % {"q": query})
            else:
                lookup.add_error("q", _("找到多位会员，请在下面的列表中选择。"))
        elif request.POST.get("walk_in") != "1":
            lookup.add_error("q", _("请输入手机号或会员号，或按散客开单。"))
    if not lookup.errors:
        try:
            bill = bill_open(actor=actor, member=member)
        except ApplicationError as exc:
            add_sales_error(lookup, exc, aliases={"member": "q", "store": "q"})
        else:
            checkout_key(request, bill)
            return redirect("frontdesk:checkout_bill", pk=bill.pk)
    return _start_page(request, lookup, members=members, status=400)


# --- The screen of one bill ---------------------------------------------------------------------------------------


@staff_view(Perm.CHECKOUT)
@require_GET
def checkout_bill(request: HttpRequest, pk: int) -> HttpResponse:
    bill = _open_bill(get_actor(request), pk)
    if not bill.is_open:
        return _not_open(request, bill)
    return _screen(request, bill)


@staff_view(Perm.CHECKOUT)
@require_GET
def checkout_items(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the items matching the search (name, code, barcode, SKU) with the store's price."""
    actor = get_actor(request)
    bill = _open_bill(actor, pk)
    form = ItemSearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    if not is_htmx(request):
        url = reverse("frontdesk:checkout_bill", args=[bill.pk])
        return redirect(f"{url}?{request.GET.urlencode()}" if query else url)
    items = priced_items(actor, bill.store, query=query, limit=ITEM_RESULTS)
    response = render(request, "frontdesk/checkout/_items.html", {"bill": bill, "items": items, "query": query})
    patch_vary_headers(response, ["HX-Request"])
    return response


@staff_view(Perm.CHECKOUT)
@require_POST
def checkout_add_line(request: HttpRequest, pk: int) -> HttpResponse:
    """Add an item chosen in the search, or the product whose barcode was scanned (Enter)."""
    actor = get_actor(request)
    bill = _open_bill(actor, pk)
    if not bill.is_open:
        return _not_open(request, bill)
    form = AddLineForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            item = item_get(actor, d["item"]) if d["item"] else item_by_barcode(actor, d["barcode"])
            bill_add_line(actor=actor, bill=bill, item=item, quantity=d["quantity"] or 1)
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases={"item": "barcode", "quantity": "barcode"})
        else:
            return _after_change(request, bill)
    if is_htmx(request):
        response = render(request, "frontdesk/checkout/_add_errors.html", {"add_form": form}, status=400)
        response["HX-Retarget"] = "#add-line-errors"
        response["HX-Reswap"] = "innerHTML"
        return response
    return _screen(request, bill, add_form=form, status=400)


def _line_of(bill: Bill, line_id: int) -> BillLine:
    line = bill.lines.select_related("item").filter(pk=line_id).first()
    if line is None:
        raise Http404("bill line")
    return line


@staff_view(Perm.CHECKOUT)
@require_POST
def checkout_line_edit(request: HttpRequest, pk: int, line_id: int) -> HttpResponse:
    """Change a line's quantity, performer, seller or price, in place (the line keeps its place on the bill).
    Below the cashier's own floor the service asks for a store manager and her PIN
    (``pricing.approval_required``, shown beside the price); a price she already approved stays approved
    when only the quantity or the staff change. The form sends the whole line: an empty performer, seller
    or price takes it off (the price is then the member's price again). A refused change writes nothing."""
    actor = get_actor(request)
    bill = _open_bill(actor, pk)
    if not bill.is_open:
        return _not_open(request, bill)
    line = _line_of(bill, line_id)
    staff, approvers = store_staff(actor, bill.store)
    form = LineEditForm(request.POST, prefix=f"l{line.pk}", staff=staff, approvers=approvers)
    if form.is_valid():
        d = form.cleaned_data
        by_id = {s.pk: s for s in staff}
        try:
            bill_line_update(
                actor=actor,
                bill=bill,
                line=line,
                quantity=d["quantity"],
                performed_by=by_id.get(d["performed_by"]) or CLEAR,
                sold_by=by_id.get(d["sold_by"]) or CLEAR,
                unit_price=d["unit_price"] if d["unit_price"] is not None else CLEAR,
                approver=by_id.get(d["approver"]) if d["approver"] else None,
                approval_pin=d["approval_pin"] or "",
            )
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases={"item": "quantity", "lines": "quantity"})
        else:
            return _after_change(request, bill)
    bill = bill_get(actor, bill.pk)
    return _screen(request, bill, line_forms={line.pk: form}, status=400)


@staff_view(Perm.CHECKOUT)
@require_POST
def checkout_line_remove(request: HttpRequest, pk: int, line_id: int) -> HttpResponse:
    actor = get_actor(request)
    bill = _open_bill(actor, pk)
    if not bill.is_open:
        return _not_open(request, bill)
    line = _line_of(bill, line_id)
    try:
        bill_remove_line(actor=actor, bill=bill, line=line)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return _after_change(request, bill)


@staff_view(Perm.CHECKOUT)
@require_POST
def checkout_complete(request: HttpRequest, pk: int) -> HttpResponse:
    """Take payment. The same form sent twice (same key, same tenders) completes the bill once; a twin that
    arrives after the bill was completed finds it no longer open and is shown the receipt."""
    actor = get_actor(request)
    bill = _open_bill(actor, pk)
    form = TenderForm(request.POST, package_choices=_package_choices(actor, bill))
    if form.is_valid():
        tenders = form.tender_inputs()
        try:
            done = bill_complete(
                actor=actor,
                bill=bill,
                tenders=tenders,
                idempotency_key=form.cleaned_data["idempotency_key"],
                coupon_ids=_posted_coupons(request),
            )
        except ApplicationError as exc:
            current = bill_get(actor, bill.pk)
            if isinstance(exc, Conflict) and current.status == BillStatus.COMPLETED:
                messages.info(request, _("这张消费单已经结账，没有重复收款。"))
                return redirect("frontdesk:receipt", pk=current.pk)
            if not current.is_open:
                messages.error(request, exc.message)
                return _not_open(request, current)
            add_sales_error(form, exc, aliases=_TENDER_ALIASES)
            bill = current
        else:
            _forget_key(request, done)
            _coupons_remember(request, done, [])
            return redirect(reverse("frontdesk:receipt", args=[done.pk]) + "?done=1")
    elif not bill.is_open:
        return _not_open(request, bill)
    return _screen(request, bill, tender_form=form, status=400)


# Where the stored-value refusals (payment password, code, card) show on the tender form.
_TENDER_ALIASES = {
    "password": "payment_password",
    "code": "payment_code",
    "card_number": "stored_value_amount",
    "member": "stored_value_amount",
}


@staff_view(Perm.CHECKOUT)
@require_POST
def checkout_send_code(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: send the bill's member a one-time code for paying from stored value (S-17). The code goes to
    her phone only; the screen says it was sent, or why not (one a minute, ten a day)."""
    actor = get_actor(request)
    bill = _open_bill(actor, pk)
    if bill.member is None:
        raise Http404
    try:
        payment_code_send(actor=actor, member=bill.member, purpose="payment")
    except ApplicationError as exc:
        text, ok = exc.message, False
    else:
        text, ok = _("验证码已发送到会员手机，5 分钟内有效。"), True
    return render(request, "frontdesk/checkout/_code_sent.html", {"text": text, "ok": ok})


@staff_view(Perm.CHECKOUT)
@require_POST
def checkout_coupons(request: HttpRequest, pk: int) -> HttpResponse:
    """Choose which of the member's coupons the bill uses (applied at completion; the screen shows the bill
    priced with them). A choice the offers refuse (not stackable, below the minimum spend …) is shown beside
    the coupons with the boxes as ticked, and the previous choice stays."""
    actor = get_actor(request)
    bill = _open_bill(actor, pk)
    if not bill.is_open:
        return _not_open(request, bill)
    form = CouponChoiceForm(request.POST, held=_coupons_of(actor, bill))
    if form.is_valid():
        chosen: list[int] = form.cleaned_data["coupons"]
        try:
            bill_offers_preview(actor, bill, coupon_ids=chosen)
        except ApplicationError as exc:
            add_sales_error(form, exc)
        else:
            _coupons_remember(request, bill, chosen)
            return _after_change(request, bill)
    return _screen(request, bill, coupon_form=form, status=400)
