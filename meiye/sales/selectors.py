"""Reads of bills: store-scoped and permission-checked, the receipt, and the daily close.

A bill is visible to staff who may check out, refund or close the day, in the stores they may see; a
bill of another store is "not found", not "forbidden" (existence is not leaked).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from meiye.contracts.models import Contract
from meiye.core.errors import forbidden, not_found
from meiye.core.money import Money
from meiye.ledger.models import Entry
from meiye.loyalty.selectors import MEMBER_POINTS, POINTS_ASSET, points_balance
from meiye.loyalty.tiers import member_tier_info
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.org.roles import Perm
from meiye.org.selectors import store_get, stores_visible
from meiye.packages.models import MemberPackage
from meiye.sales.models import Bill, BillLine, BillStatus, Refund, RefundLine, RefundTender, Tender, TenderKind
from meiye.sales.pricing import points_offset_cap_fen, points_offset_quote
from meiye.sales.services import _apply_offers, sales_settings_for
from meiye.wallet.selectors import BONUS, CNY, PRINCIPAL

_VIEW_PERMS = (Perm.CHECKOUT, Perm.REFUND, Perm.DAILY_CLOSE)
_TENDER_LABELS = dict(TenderKind.choices)


def _require_view(actor: Actor) -> None:
    if not any(actor.can(perm) for perm in _VIEW_PERMS):
        raise forbidden(Perm.CHECKOUT)


def bills_visible(actor: Actor) -> QuerySet[Bill]:
    """The bills of the stores the actor may see."""
    _require_view(actor)
    qs = Bill.objects.filter(organisation=actor.organisation)
    if actor.staff is not None and not actor.staff.sees_all_stores:
        qs = qs.filter(store__in=stores_visible(actor))
    return qs


def bill_get(actor: Actor, bill_id: int | str) -> Bill:
    try:
        return bills_visible(actor).select_related("store", "member", "created_by").get(pk=int(bill_id))
    except (Bill.DoesNotExist, ValueError, TypeError):
        raise not_found("sales.bill_not_found", "消费单", "Bill") from None


def bill_rows_in_memory(bill: Bill) -> bool:
    """True when ``bill`` comes straight from a completion in this process with its lines, tenders and
    (no) refunds cached; a replayed or re-read bill must be read through ``bill_get``."""
    cache = getattr(bill, "_prefetched_objects_cache", {})
    return all(name in cache for name in ("lines", "tenders", "refunds"))


def bills_list(
    actor: Actor,
    store: Store,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    status: str | None = None,
) -> QuerySet[Bill]:
    """A store's bills, newest first, by store-local day (completion time, or opening time if not completed),
    both ends inclusive, optionally of one status."""
    store = store_get(actor, store.pk)
    qs = bills_visible(actor).filter(store=store).select_related("member", "created_by")
    qs = qs.annotate(day_at=Coalesce("completed_at", "created_at"))
    zone = _zone(store)
    if date_from is not None:
        qs = qs.filter(day_at__gte=_day_start(date_from, zone))
    if date_to is not None:
        qs = qs.filter(day_at__lt=_day_start(date_to + timedelta(days=1), zone))
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-day_at", "-pk")


# --- offers on an open bill ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OffersPreview:
    """An open bill as completing it now would price it: ``lines`` carry the promotions' and coupons' price
    steps, ``discount_fen`` and line totals (never saved)."""

    lines: list[BillLine]
    list_total: Money
    discount_total: Money
    payable_total: Money


def bill_offers_preview(actor: Actor, bill: Bill, *, coupon_ids: Iterable[int] = ()) -> OffersPreview:
    """What ``bill_complete`` would charge for the open ``bill`` with the coupons ``coupon_ids``: the lines
    priced by the same code (``sales.services._apply_offers``: live promotions against the tier discount,
    then the coupons), written nowhere. Raises the offers' refusal (``coupon.min_spend``,
    ``coupon.not_stackable`` …) as completion would. The coupons are read under the lock completion takes,
    inside a transaction that writes nothing."""
    bill = bill_get(actor, bill.pk)
    with transaction.atomic():
        lines = list(
            BillLine.objects.filter(bill=bill)
            .select_related("item", "performed_by", "sold_by", "approved_by")
            .order_by("pk")
        )
        _apply_offers(actor, bill.store, bill.member, lines, list(coupon_ids))
    list_total = sum(line.list_price_fen * line.quantity for line in lines)
    payable = sum(line.line_total_fen for line in lines)
    return OffersPreview(
        lines=lines,
        list_total=Money(list_total),
        discount_total=Money(list_total - payable),
        payable_total=Money(payable),
    )


# --- receipt ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptDiscount:
    step: str
    reason: str
    unit_price: Money
    amount: Money | None = None  # what a promotion or coupon took off the line (None for a price step)


@dataclass(frozen=True)
class ReceiptLine:
    name: str
    quantity: int
    list_price: Money
    unit_price: Money
    line_total: Money
    discounts: list[ReceiptDiscount]
    performed_by: str
    approved_by: str
    points_earned: int
    refunded_quantity: int
    discount: Money  # the line's share of promotions and coupons (line total = unit × qty − this)


@dataclass(frozen=True)
class ReceiptTender:
    kind: str
    label: str
    amount: Money
    received: Money | None
    change: Money
    external_ref: str
    principal: Money
    bonus: Money
    points_used: int
    sessions: int = 0
    detail: str = ""  # the package item the sessions came from, or the gift card (masked)


def _tender_detail(tender: Tender) -> str:
    if tender.package_item_id is not None and tender.package_item is not None:
        return f"{tender.package_item.member_package.name} · {tender.package_item.name}"
    if tender.gift_card_id is not None and tender.gift_card is not None:
        return str(tender.gift_card.masked_code)
    return ""


@dataclass(frozen=True)
class Receipt:
    bill_id: int
    number: str
    status: str
    store_name: str
    cashier: str
    completed_at: datetime | None
    member_no: str
    member_name: str
    tier_name: str  # placeholder until the tier issue fills the bill's member snapshot
    lines: list[ReceiptLine]
    tenders: list[ReceiptTender]
    list_total: Money
    discount_total: Money
    payable_total: Money
    points_earned: int
    refunded_total: Money
    # The member's balances right after this bill (from the ledger), None for a walk-in customer.
    wallet_principal_after: Money | None = None
    wallet_bonus_after: Money | None = None
    points_after: int | None = None


def receipt(actor: Actor, bill: Bill) -> Receipt:
    bill = bill_get(actor, bill.pk)
    lines = list(BillLine.objects.filter(bill=bill).select_related("performed_by", "approved_by").order_by("pk"))
    tenders = list(
        Tender.objects.filter(bill=bill).select_related("package_item__member_package", "gift_card").order_by("pk")
    )
    refunded = Refund.objects.filter(bill=bill).aggregate(total=Sum("amount_fen"))["total"] or 0
    principal_after = bonus_after = None
    points_after = None
    member = bill.member
    if member is not None:
        after = _member_balances_after(bill)
        principal_after = Money(after.get(PRINCIPAL, 0))
        bonus_after = Money(after.get(BONUS, 0))
        points_after = after.get(MEMBER_POINTS, 0)
    return Receipt(
        bill_id=bill.pk,
        number=bill.number,
        status=bill.status,
        store_name=bill.store.name,
        cashier=str(bill.created_by) if bill.created_by is not None else "",
        completed_at=bill.completed_at,
        member_no=member.member_no if member is not None else "",
        member_name=member.name if member is not None else "",
        tier_name=str(bill.member_snapshot.get("tier_name") or ""),
        lines=[
            ReceiptLine(
                name=line.name,
                quantity=line.quantity,
                list_price=Money(line.list_price_fen),
                unit_price=Money(line.unit_price_fen),
                line_total=Money(line.line_total_fen),
                discounts=[
                    ReceiptDiscount(
                        step=s["step"],
                        reason=s["reason"],
                        unit_price=Money(s["unit_price_fen"]),
                        amount=Money(s["discount_fen"]) if "discount_fen" in s else None,
                    )
                    for s in line.price_steps
                    if s["step"] != "list_price"
                ],
                discount=Money(line.discount_fen),
                performed_by=str(line.performed_by) if line.performed_by is not None else "",
                approved_by=str(line.approved_by) if line.approved_by is not None else "",
                points_earned=line.points_earned,
                refunded_quantity=line.refunded_quantity,
            )
            for line in lines
        ],
        tenders=[
            ReceiptTender(
                kind=t.kind,
                label=str(_TENDER_LABELS.get(t.kind, t.kind)),
                amount=Money(t.amount_fen),
                received=Money(t.received_fen) if t.received_fen is not None else None,
                change=Money(t.change_fen),
                external_ref=t.external_ref,
                principal=Money(t.principal_fen),
                bonus=Money(t.bonus_fen),
                points_used=t.points_used,
                sessions=t.sessions,
                detail=_tender_detail(t),
            )
            for t in tenders
        ],
        list_total=Money(bill.list_total_fen),
        discount_total=Money(bill.discount_total_fen),
        payable_total=Money(bill.payable_total_fen),
        points_earned=bill.points_earned,
        refunded_total=Money(refunded),
        wallet_principal_after=principal_after,
        wallet_bonus_after=bonus_after,
        points_after=points_after,
    )


def _member_balances_after(bill: Bill) -> dict[str, int]:
    """The member's principal, bonus and points as they stood right after the bill's last journal.

    Entries of one account are written under the lock on its balance row, so journal order is the order
    of its changes; summing the entries up to the bill's last journal gives the balance after it.
    """
    journal_ids = [
        j
        for j in (
            bill.cny_journal_id,
            bill.points_spend_journal_id,
            bill.points_earn_journal_id,
            bill.growth_journal_id,
        )
        if j is not None
    ]
    if not journal_ids or bill.member_id is None:
        return {}
    rows = (
        Entry.objects.filter(
            account__organisation_id=bill.organisation_id,
            account__owner_type="member",
            account__owner_id=bill.member_id,
            journal_id__lte=max(journal_ids),
        )
        .filter(
            Q(account__asset=CNY, account__kind__in=(PRINCIPAL, BONUS))
            | Q(account__asset=POINTS_ASSET, account__kind=MEMBER_POINTS)
        )
        .values_list("account__kind")
        .annotate(total=Sum("amount"))
    )
    return {kind: int(total) for kind, total in rows}


# --- daily close ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DailyClose:
    """A store's day (store-local), for the close of the till (日结)."""

    store_id: int
    day: date
    bills_completed: int
    sales_total: Money  # payable of the bills completed that day
    discount_total: Money
    by_tender: dict[str, Money]  # how the day's bills were paid
    by_category: dict[str, Money]  # line totals by earning category
    refunds_count: int
    refunds_total: Money
    refunds_by_tender: dict[str, Money]  # the original tender each refunded part belonged to
    refunds_to_stored_value: Money  # external money refunded into members' principal instead
    refunds_by_category: dict[str, Money]
    points_offset_used: int
    points_earned: int
    # From the ledger: money per tender account that day, bills, refunds and recharges together
    # (positive = money in); the drawer's cash is what came in minus what went out.
    takings_by_tender: dict[str, Money]
    cash_in: Money
    cash_refunded: Money
    cash_expected: Money


def daily_close(actor: Actor, store: Store, day: date) -> DailyClose:
    actor.require(Perm.DAILY_CLOSE)
    store = store_get(actor, store.pk)
    zone = _zone(store)
    start, end = _day_start(day, zone), _day_start(day + timedelta(days=1), zone)

    bills = Bill.objects.filter(store=store, status=BillStatus.COMPLETED, completed_at__gte=start, completed_at__lt=end)
    totals = bills.aggregate(
        count=Count("pk"),
        payable=Sum("payable_total_fen"),
        discount=Sum("discount_total_fen"),
        points=Sum("points_earned"),
    )
    by_tender = _money_by(Tender.objects.filter(bill__in=bills).values_list("kind").annotate(t=Sum("amount_fen")))
    points_used = Tender.objects.filter(bill__in=bills, kind=TenderKind.POINTS).aggregate(p=Sum("points_used"))["p"]
    by_category = _money_by(
        BillLine.objects.filter(bill__in=bills).values_list("earning_category").annotate(t=Sum("line_total_fen"))
    )

    refunds = Refund.objects.filter(store=store, created_at__gte=start, created_at__lt=end)
    refund_totals = refunds.aggregate(count=Count("pk"), amount=Sum("amount_fen"))
    parts = RefundTender.objects.filter(refund__in=refunds)
    refunds_by_tender = _money_by(parts.values_list("tender__kind").annotate(t=Sum("amount_fen")))
    to_stored_value = (
        parts.filter(destination="stored_value", tender__kind__in=("cash", "card", "wechat", "alipay")).aggregate(
            t=Sum("amount_fen")
        )["t"]
        or 0
    )
    refunds_by_category = _money_by(
        RefundLine.objects.filter(refund__in=refunds)
        .values_list("line__earning_category")
        .annotate(t=Sum("amount_fen"))
    )

    store_entries = Entry.objects.filter(
        account__organisation_id=store.organisation_id,
        account__owner_type="store",
        account__owner_id=store.pk,
        account__asset=CNY,
        account__kind__startswith="tender_",
        journal__created_at__gte=start,
        journal__created_at__lt=end,
    )
    takings = {
        kind.removeprefix("tender_"): Money(-int(total))
        for kind, total in store_entries.values_list("account__kind")
        .annotate(t=Sum("amount"))
        .order_by("account__kind")
    }
    cash = store_entries.filter(account__kind="tender_cash").aggregate(
        money_in=Sum("amount", filter=Q(amount__lt=0)), money_out=Sum("amount", filter=Q(amount__gt=0))
    )
    cash_in = -(cash["money_in"] or 0)
    cash_out = cash["money_out"] or 0
    return DailyClose(
        store_id=store.pk,
        day=day,
        bills_completed=totals["count"] or 0,
        sales_total=Money(totals["payable"] or 0),
        discount_total=Money(totals["discount"] or 0),
        by_tender=by_tender,
        by_category=by_category,
        refunds_count=refund_totals["count"] or 0,
        refunds_total=Money(refund_totals["amount"] or 0),
        refunds_by_tender=refunds_by_tender,
        refunds_to_stored_value=Money(to_stored_value),
        refunds_by_category=refunds_by_category,
        points_offset_used=points_used or 0,
        points_earned=totals["points"] or 0,
        takings_by_tender=takings,
        cash_in=Money(cash_in),
        cash_refunded=Money(cash_out),
        cash_expected=Money(cash_in - cash_out),
    )


def _money_by(rows: Iterable[tuple[str, int]]) -> dict[str, Money]:
    """{key: Money} from (key, fen) rows of a grouped query, keys in order."""
    return {str(key): Money(int(total)) for key, total in sorted(rows, key=lambda row: str(row[0]))}


def _zone(store: Store) -> ZoneInfo:
    return ZoneInfo(store.time_zone or "Asia/Shanghai")


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


@dataclass(frozen=True)
class PointsOffsetQuote:
    value: Money  # what the points pay, in whole 元
    points: int  # the points that takes
    points_balance: int
    points_per_yuan: int
    cap: Money  # the cap on the payable (before rounding to 元)


def points_offset_quote_for(actor: Actor, member: Member, *, store: Store, payable: Money) -> PointsOffsetQuote:
    """What the cashier may offer the member as a points offset on a bill of ``payable`` (S-06): her tier's
    rate (else the store's), the store's cap, her balance now. The checkout then tenders exactly these points."""
    actor.require(Perm.CHECKOUT)
    store = store_get(actor, store.pk)
    settings = sales_settings_for(store)
    per_yuan = int(member_tier_info(member).get("points_per_yuan_offset") or settings.points_per_yuan_offset)
    balance = points_balance(member)
    value, points = points_offset_quote(
        payable_fen=payable.fen, points_balance=balance, points_per_yuan=per_yuan, cap_bp=settings.points_offset_cap_bp
    )
    return PointsOffsetQuote(
        value=Money(value),
        points=points,
        points_balance=balance,
        points_per_yuan=per_yuan,
        cap=Money(points_offset_cap_fen(payable.fen, settings.points_offset_cap_bp)),
    )


def bill_contracts(actor: Actor, bill: Bill) -> list[Contract]:
    """The prepaid contracts of the packages sold on the bill (the receipt offers them for signing)."""
    ids = MemberPackage.objects.filter(organisation=actor.organisation, bill_id=bill.pk, contract__isnull=False).values(
        "contract_id"
    )
    return list(Contract.objects.filter(pk__in=ids).order_by("pk"))
