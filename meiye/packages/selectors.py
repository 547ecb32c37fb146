"""Reads of packages: products, a member's packages (store-scoped through the member), the refund preview.

The refund amount is computed here, in one place, so the preview a receptionist sees and the refund the
service posts are the same numbers (``package_refund`` calls ``refund_quote``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.db.models import Prefetch, QuerySet

from meiye.core.errors import not_found
from meiye.core.money import Money
from meiye.members.models import Member
from meiye.members.selectors import member_get
from meiye.org.context import Actor
from meiye.org.models import Staff
from meiye.packages.models import (
    MemberPackage,
    MemberPackageItem,
    PackageProduct,
    PackageStatus,
    RefundFormula,
    SessionUse,
)


def package_products(actor: Actor, *, active_only: bool = False) -> QuerySet[PackageProduct]:
    qs = (
        PackageProduct.objects.filter(organisation=actor.organisation)
        .select_related("item", "item__category")
        .prefetch_related("items__service")
    )
    return qs.filter(is_active=True, item__is_active=True) if active_only else qs


def package_product_get(actor: Actor, pk: int | str) -> PackageProduct:
    try:
        return package_products(actor).get(pk=int(pk))
    except (PackageProduct.DoesNotExist, ValueError, TypeError):
        raise not_found("package.product_not_found", "套餐产品", "Package product") from None


def package_product_for_item(organisation_id: int, item_id: int) -> PackageProduct | None:
    return PackageProduct.objects.filter(organisation_id=organisation_id, item_id=item_id).first()


def member_packages(actor: Actor, member: Member, *, include_closed: bool = True) -> list[MemberPackage]:
    """The member's packages with their items, newest first (the member must be visible to the actor)."""
    member = member_get(actor, member.pk)
    qs = (
        MemberPackage.objects.filter(organisation=actor.organisation, member=member)
        .select_related("store", "contract")
        .prefetch_related(Prefetch("items", queryset=MemberPackageItem.objects.select_related("service")))
    )
    if not include_closed:
        qs = qs.filter(status__in=[PackageStatus.ACTIVE, PackageStatus.FROZEN])
    return list(qs)


def member_package_get(actor: Actor, pk: int | str) -> MemberPackage:
    """A package whose member the actor may see (``package.not_found`` otherwise)."""
    try:
        package = MemberPackage.objects.select_related("member", "store", "product").get(
            organisation=actor.organisation, pk=int(pk)
        )
    except (MemberPackage.DoesNotExist, ValueError, TypeError):
        raise _package_not_found() from None
    try:
        member_get(actor, package.member_id)
    except Exception:
        raise _package_not_found() from None
    return package


def member_item_get(actor: Actor, pk: int | str) -> MemberPackageItem:
    try:
        item = MemberPackageItem.objects.select_related("member_package").get(
            member_package__organisation=actor.organisation, pk=int(pk)
        )
    except (MemberPackageItem.DoesNotExist, ValueError, TypeError):
        raise _package_not_found() from None
    member_package_get(actor, item.member_package_id)
    return item


def member_item_uses(actor: Actor, member_package: MemberPackage, *, limit: int = 50) -> list[SessionUse]:
    return list(
        SessionUse.objects.filter(organisation=actor.organisation, member_item__member_package=member_package)
        .select_related("member_item", "performed_by")
        .order_by("-on", "-id")[:limit]
    )


def _package_not_found() -> Exception:
    from meiye.core.errors import NotFound

    return NotFound(
        "package.not_found",
        zh="找不到该次卡/套餐，或您无权查看。",
        en="Package not found, or not visible to you.",
    )


# --- value and refund ------------------------------------------------------------------------------------------


def valuation_day(member_package: MemberPackage, on: date) -> date:
    """The day an item of the package is valued and checked on: ``on``, or while the package is frozen the day
    it was frozen (a freeze pauses the clock: the expiry job skips frozen packages, so their sessions are
    still there, and unfreezing adds the frozen days to the validity)."""
    if member_package.status == PackageStatus.FROZEN and member_package.frozen_on is not None:
        return min(on, member_package.frozen_on)
    return on


def item_expired(item: MemberPackageItem, on: date, *, member_package: MemberPackage | None = None) -> bool:
    """Whether the item is past its validity on ``on`` (expired by the job, or its last valid day before the
    valuation day — the freeze day while its package is frozen)."""
    if item.expired_on is not None:
        return True
    package = member_package if member_package is not None else item.member_package
    return item.valid_until is not None and item.valid_until < valuation_day(package, on)


def item_value_fen(item: MemberPackageItem, on: date, *, member_package: MemberPackage | None = None) -> int:
    """What is left of the item's share: ``share − floor(share × used / count)`` (ADR 0006); 0 once expired.

    A time card item (no count) is valued by days: ``share − floor(share × days elapsed / days valid)``; one
    whose validity has not started (counted from first use, never used) keeps its whole share. While the
    package is frozen, the item is valued as of the day it was frozen (``valuation_day``)."""
    package = member_package if member_package is not None else item.member_package
    if item_expired(item, on, member_package=package):
        return 0
    if item.count is not None:
        return item.share_fen - (item.share_fen * item.used) // item.count
    if item.valid_until is None:
        return item.share_fen
    day = valuation_day(package, on)
    total = (item.valid_until - item.valid_from).days + 1
    elapsed = min(max((day - item.valid_from).days, 0), total)
    return item.share_fen - (item.share_fen * elapsed) // total


@dataclass(frozen=True)
class RefundLine:
    item_id: int
    name: str
    count: int | None
    used: int
    share_fen: int
    value_fen: int
    text_zh: str
    text_en: str


@dataclass(frozen=True)
class RefundQuote:
    amount_fen: int
    formula: str  # "cooling_off" | "unit_price" | "list_price"
    lines: list[RefundLine] = field(default_factory=list)
    text_zh: str = ""
    text_en: str = ""

    @property
    def amount(self) -> Money:
        return Money(self.amount_fen)


def refund_quote(member_package: MemberPackage, items: list[MemberPackageItem], on: date) -> RefundQuote:
    """The refund of a package on ``on``: the full price within the cooling-off days if nothing was used;
    otherwise by the product's formula (the contract's words), floored at 0:

    - ``unit_price``: each item's value after use (``item_value_fen``), summed — S-19: 1,980.00 − 3 × 198.00
      = 1,386.00;
    - ``list_price``: 实付价款 − 已使用次数 × 项目原价，最低为 0 — the price paid (the items' shares) less
      every session used × its service's list price, one floor for the whole package: a combo of 1,800.00
      with 5 facials (list 298.00) used refunds 1,800.00 − 5 × 298.00 = 310.00.
    Expired items refund nothing (their sessions are gone: neither their share nor their uses count). While
    the package is frozen, items are valued and checked as of the day it was frozen."""
    price = Money(member_package.price_paid_fen)
    unused = all(item.used == 0 for item in items)
    if unused and (on - member_package.purchased_on).days <= member_package.cooling_off_days:
        return RefundQuote(
            amount_fen=member_package.price_paid_fen,
            formula="cooling_off",
            text_zh=f"冷静期内（{member_package.cooling_off_days} 天）且未使用：全额退款 {price.as_decimal_string()}",
            text_en=(
                f"Within the {member_package.cooling_off_days}-day cooling-off period and unused: "
                f"full refund of {price.as_decimal_string()}"
            ),
        )
    lines = []
    list_price = member_package.refund_formula == RefundFormula.LIST_PRICE
    for item in items:
        share = Money(item.share_fen).as_decimal_string()
        if item_expired(item, on, member_package=member_package):
            value = 0
            zh, en = f"{item.name}：已过期，退 0.00", f"{item.name}: expired, refunds 0.00"
        elif list_price:
            # not floored here: the floor is the package's (the contract's "最低为 0")
            value = item.share_fen - item.used * item.list_price_fen
            lst = Money(item.list_price_fen).as_decimal_string()
            out = Money(value).as_decimal_string()
            zh = f"{item.name}：{share} − {item.used} × {lst}（原价） = {out}"
            en = f"{item.name}: {share} − {item.used} × {lst} (list price) = {out}"
        else:
            value = item_value_fen(item, on, member_package=member_package)
            out = Money(value).as_decimal_string()
            if item.count is not None:
                unit = Money(item.share_fen // item.count).as_decimal_string()
                zh = f"{item.name}：{share} − {share} × {item.used} / {item.count}（约 {item.used} × {unit}） = {out}"
                en = f"{item.name}: {share} − {share} × {item.used} / {item.count} (about {item.used} × {unit}) = {out}"
            else:
                zh = f"{item.name}：{share} 按剩余天数折算 = {out}"
                en = f"{item.name}: {share} prorated by days left = {out}"
        lines.append(RefundLine(item.pk, item.name, item.count, item.used, item.share_fen, value, zh, en))
    amount = max(0, sum(line.value_fen for line in lines))
    formula = str(member_package.refund_formula)
    total = Money(amount).as_decimal_string()
    floor_zh = floor_en = ""
    if list_price:
        floor_zh, floor_en = "（最低为 0）", " (at least 0)"
    return RefundQuote(
        amount_fen=amount,
        formula=formula,
        lines=lines,
        text_zh="；".join(line.text_zh for line in lines) + f"。合计退款{floor_zh} {total}",
        text_en="; ".join(line.text_en for line in lines) + f". Refund{floor_en} {total}",
    )


def package_refund_preview(actor: Actor, member_package: MemberPackage, on: date) -> RefundQuote:
    member_package = member_package_get(actor, member_package.pk)
    return refund_quote(member_package, list(member_package.items.order_by("pk")), on)


def performers(actor: Actor) -> list[Staff]:
    """Who may be recorded as performing a session: the active staff of the actor's store (all of the
    organisation's when the actor has no store)."""
    qs = Staff.objects.filter(organisation=actor.organisation, is_active=True)
    if actor.store is not None:
        qs = qs.filter(stores=actor.store)
    return list(qs.order_by("pk"))
