"""Writes for count cards, combo packages and time cards (计次卡/套餐/时间卡). ADR 0006 fixes the signatures.

Sessions are ledger assets ``SES:<member package item id>``: the member's ``package_sessions`` account (may
not go negative) against the store's ``package_sessions_source`` (may). Journal codes and legs:

- ``packages.issue``     source −n, member +n (one journal per package sold, every counted item in it)
- ``packages.use``       member −n, source +n
- ``packages.use_return`` source −n, member +n (a bill refund gives back the sessions it used)
- ``packages.expire``    member −n, source +n (the nightly job, item by item)
- ``packages.refund``    member −n, source +n for the sessions left; CNY store ``revenue`` −x, the refunding
                         store's ``tender_<kind>`` +x (money out)
- ``packages.transfer``  old member −n, old source +n; new source −n, new member +n (new items, new assets)
- ``packages.merge``     merged member −n, survivor +n (same asset)

``MemberPackageItem.used``/``remaining`` are updated in the same transaction as each journal; ``remaining``
always equals the member account's balance (``packages_verify``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q

from meiye.audit.services import audit_record
from meiye.catalog.models import Category, CommissionCategory, EarningCategory, Item, ItemKind
from meiye.catalog.services import category_save, item_save
from meiye.contracts.services import ContractItem, contract_create
from meiye.core.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from meiye.core.idempotency import conflict_error, validate_key
from meiye.core.money import Money, allocate_int
from meiye.ledger.models import Account, Balance, Journal
from meiye.ledger.services import (
    AccountKey,
    Leg,
    LockedAccounts,
    Posting,
    accounts_lock,
    journal_post,
    journals_post,
)
from meiye.loyalty.selectors import local_today
from meiye.loyalty.services import (
    add_months,
    growth_account_keys,
    growth_add,
    points_account_keys,
    points_take_back_part,
)
from meiye.members.models import Member
from meiye.members.selectors import member_get, member_survivor
from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.org.roles import Perm
from meiye.packages.models import (
    AdjustmentKind,
    MemberPackage,
    MemberPackageItem,
    PackageAdjustment,
    PackageKind,
    PackageProduct,
    PackageProductItem,
    PackageStatus,
    RefundFormula,
    SessionUse,
    ValidFrom,
    ValidityUnit,
)
from meiye.packages.selectors import item_expired, item_value_fen, member_package_get, refund_quote
from meiye.wallet.services import check_tender, store_account_key

logger = logging.getLogger(__name__)

MEMBER_KIND = "package_sessions"
SOURCE_KIND = "package_sessions_source"
EXPIRY_BATCH = 500


# --- small helpers -------------------------------------------------------------------------------------------


def _derived_key(key: str, suffix: str) -> str:
    """``<key>:<suffix>`` within the ledger's 128 characters (a long key is hashed)."""
    derived = f"{key}:{suffix}"
    if len(derived) <= 128:
        return derived
    return f"h:{hashlib.sha256(key.encode()).hexdigest()}:{suffix}"


def _staff_id(actor: Actor) -> int | None:
    return actor.staff.pk if actor.staff is not None else None


def _member_key(organisation_id: int, member_id: int, item_id: int) -> AccountKey:
    return AccountKey("member", member_id, f"SES:{item_id}", MEMBER_KIND)


def _source_key(store_id: int, item_id: int) -> AccountKey:
    return AccountKey("store", store_id, f"SES:{item_id}", SOURCE_KIND, may_go_negative=True)


def valid_until_for(start: date, value: int, unit: str) -> date:
    """The last valid day of a validity of ``value`` days or months starting on ``start`` (inclusive):
    12 months from 2026-01-10 is valid until 2027-01-09; 30 days from 2026-01-10 until 2026-02-08."""
    if unit == ValidityUnit.MONTHS:
        return add_months(start, value) - timedelta(days=1)
    return start + timedelta(days=value - 1)


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("input.required", zh="原因：必填。", en="reason: required.", field="reason")
    if len(reason) > 200:
        raise ValidationFailed(
            "input.too_long", zh="原因：最多 200 个字符。", en="reason: at most 200 characters.", field="reason"
        )
    return reason


def _not_active(package: MemberPackage) -> ApplicationError:
    if package.status == PackageStatus.FROZEN:
        return ValidationFailed(
            "package.frozen",
            zh=f"次卡/套餐“{package.name}”已冻结，请先解冻。",
            en=f"Package {package.name!r} is frozen; unfreeze it first.",
        )
    if package.status == PackageStatus.EXPIRED:
        return ValidationFailed(
            "package.expired", zh=f"次卡/套餐“{package.name}”已过期。", en=f"Package {package.name!r} has expired."
        )
    label = PackageStatus(package.status).label
    return ValidationFailed(
        "package.not_active",
        zh=f"次卡/套餐“{package.name}”状态为 {label}，不能办理。",
        en=f"Package {package.name!r} is {package.status}; this cannot be done.",
        extra={"status": package.status},
    )


# --- products (HQ) ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductItemInput:
    service_id: int
    count: int | None
    validity_value: int
    validity_unit: str = ValidityUnit.MONTHS
    valid_from: str = ValidFrom.PURCHASE
    daily_limit: int | None = None
    min_days_between: int = 0


def package_category(actor: Actor) -> Category:
    """The organisation's first active category of kind package, created (``packages``) if there is none."""
    found = Category.objects.filter(organisation=actor.organisation, kind=ItemKind.PACKAGE, is_active=True).first()
    if found is not None:
        return found
    return category_save(
        actor=actor,
        code="packages",
        name="次卡套餐",
        kind=ItemKind.PACKAGE,
        earning_category=EarningCategory.BASIC_CARE,
        commission_category=CommissionCategory.CARD,
    )


def package_product_save(
    *,
    actor: Actor,
    code: str,
    name: str,
    price: Money,
    kind: str,
    items: Sequence[ProductItemInput],
    category: Category | None = None,
    refund_formula: str = RefundFormula.UNIT_PRICE,
    cooling_off_days: int = 7,
    transferable: bool = False,
    is_active: bool = True,
) -> PackageProduct:
    """Create or update (by the catalogue code) a package product and its catalogue item in one go.

    The item list replaces the product's items. Members' packages already sold keep their own copy of the
    terms (items, counts, validity) and are not changed."""
    actor.require(Perm.CARDS_MANAGE)
    if kind not in PackageKind.values:
        raise ValidationFailed(
            "package.invalid_kind", zh="类型：无效。", en=f"kind: {kind!r} is not valid.", field="kind"
        )
    if refund_formula not in RefundFormula.values:
        raise ValidationFailed(
            "package.invalid_refund_formula",
            zh="退款方式：无效。",
            en=f"refund_formula: {refund_formula!r} is not valid.",
            field="refund_formula",
        )
    if not 0 <= cooling_off_days <= 365:
        raise ValidationFailed(
            "package.invalid_cooling_off",
            zh="冷静期：0 到 365 天。",
            en="cooling_off_days: 0 to 365 days.",
            field="cooling_off_days",
        )
    _check_items(actor, kind, items)
    with transaction.atomic():
        category = category if category is not None else package_category(actor)
        if category.kind != ItemKind.PACKAGE:
            raise ValidationFailed(
                "package.invalid_category",
                zh="分类：必须是“套餐”类的分类。",
                en="category: must be a category of kind package.",
                field="category",
            )
        item = item_save(actor=actor, code=code, name=name, category=category, price=price, is_active=is_active)
        product, created = PackageProduct.objects.update_or_create(
            organisation=actor.organisation,
            item=item,
            defaults={
                "kind": kind,
                "refund_formula": refund_formula,
                "cooling_off_days": cooling_off_days,
                "transferable": transferable,
                "is_active": is_active,
            },
        )
        product.items.all().delete()
        PackageProductItem.objects.bulk_create(
            [
                PackageProductItem(
                    product=product,
                    service_id=line.service_id,
                    count=line.count,
                    validity_value=line.validity_value,
                    validity_unit=line.validity_unit,
                    valid_from=line.valid_from,
                    daily_limit=line.daily_limit,
                    min_days_between=line.min_days_between,
                    order=index,
                )
                for index, line in enumerate(items)
            ]
        )
        audit_record(
            actor=actor,
            action="packages.product_" + ("create" if created else "update"),
            obj=product,
            detail={"code": code, "price_fen": price.fen, "items": len(items)},
        )
    return product


def _check_items(actor: Actor, kind: str, items: Sequence[ProductItemInput]) -> None:
    if not items:
        raise ValidationFailed(
            "package.items_required",
            zh="项目：至少包含一个服务项目。",
            en="items: a package needs at least one service.",
            field="items",
        )
    services = {
        i.pk: i
        for i in Item.objects.filter(
            organisation=actor.organisation, kind=ItemKind.SERVICE, pk__in=[line.service_id for line in items]
        )
    }
    for n, line in enumerate(items, start=1):
        if line.service_id not in services:
            raise ValidationFailed(
                "package.invalid_service",
                zh=f"第 {n} 项：服务项目无效。",
                en=f"items[{n}]: not a service of this organisation.",
                field="items",
            )
        if line.count is None and kind != PackageKind.TIME:
            raise ValidationFailed(
                "package.count_required",
                zh=f"第 {n} 项：次数必填（只有时间卡可以不限次数）。",
                en=f"items[{n}]: count is required (only a time card is unlimited).",
                field="items",
            )
        if line.count is not None and not 1 <= line.count <= 10000:
            raise ValidationFailed(
                "package.invalid_count",
                zh=f"第 {n} 项：次数应为 1 到 10000。",
                en=f"items[{n}]: count must be 1 to 10000.",
                field="items",
            )
        if line.validity_unit not in ValidityUnit.values or line.valid_from not in ValidFrom.values:
            raise ValidationFailed(
                "package.invalid_validity",
                zh=f"第 {n} 项：有效期单位或起算方式无效。",
                en=f"items[{n}]: validity unit or start is not valid.",
                field="items",
            )
        limit = 3650 if line.validity_unit == ValidityUnit.DAYS else 120
        if not 1 <= line.validity_value <= limit:
            raise ValidationFailed(
                "package.invalid_validity",
                zh=f"第 {n} 项：有效期应为 1 到 {limit}。",
                en=f"items[{n}]: validity must be 1 to {limit}.",
                field="items",
            )
        if (line.daily_limit is not None and line.daily_limit < 1) or line.min_days_between < 0:
            raise ValidationFailed(
                "package.invalid_limit",
                zh=f"第 {n} 项：每日上限至少 1，间隔天数不能为负。",
                en=f"items[{n}]: the daily limit is at least 1 and the days between sessions not negative.",
                field="items",
            )


# --- issue (the checkout) --------------------------------------------------------------------------------------


class BillLineLike(Protocol):
    @property
    def pk(self) -> Any: ...
    @property
    def item_id(self) -> int: ...
    @property
    def quantity(self) -> int: ...
    @property
    def line_total_fen(self) -> int: ...


def packages_issue_for_bill(
    *, actor: Actor, bill_id: int, member: Member, lines: Sequence[BillLineLike], on: date | None = None
) -> list[MemberPackage]:
    """Issue the packages a bill sold: one ``MemberPackage`` per unit of each line whose item is a package
    product (other lines are ignored), price paid = the line total split over its units by largest
    remainder, the price split over the items by list price × count (largest remainder), one
    ``packages.issue`` journal per package and its contract. Call it inside the checkout's transaction.

    Idempotent per (bill line, unit): a second call returns the packages issued the first time."""
    store = actor.store
    if store is None:
        raise ValidationFailed(
            "package.store_required", zh="请先选择当前门店。", en="Choose the current store first.", field="store"
        )
    on = on or local_today(store)
    products = {
        p.item_id: p
        for p in PackageProduct.objects.filter(
            organisation=actor.organisation, item_id__in=[line.item_id for line in lines]
        ).prefetch_related("items__service")
    }
    issued: list[MemberPackage] = []
    with transaction.atomic():
        fresh: list[MemberPackage] = []
        for line in lines:
            product = products.get(line.item_id)
            if product is None or line.quantity <= 0:
                continue
            prices = allocate_int(line.line_total_fen, [1] * line.quantity)
            earnings = allocate_int(int(getattr(line, "earning_fen", 0) or 0), [1] * line.quantity)
            points = allocate_int(int(getattr(line, "points_earned", 0) or 0), [1] * line.quantity)
            existing = {
                p.unit_no: p
                for p in MemberPackage.objects.filter(organisation=actor.organisation, bill_line_id=line.pk)
            }
            for unit_no, price in enumerate(prices, start=1):
                if unit_no in existing:
                    issued.append(existing[unit_no])
                    continue
                package = _package_create(
                    actor,
                    store,
                    member,
                    product,
                    bill_id,
                    line.pk,
                    unit_no,
                    price,
                    on,
                    earned=(earnings[unit_no - 1], points[unit_no - 1]),
                )
                issued.append(package)
                fresh.append(package)
        if fresh:
            _post_issue(actor, store, fresh)
    return issued


def _package_create(
    actor: Actor,
    store: Store,
    member: Member,
    product: PackageProduct,
    bill_id: int | None,
    bill_line_id: int | None,
    unit_no: int,
    price_fen: int,
    on: date,
    *,
    earned: tuple[int, int] = (0, 0),
) -> MemberPackage:
    product_items = list(product.items.all())
    if not product_items:
        raise ValidationFailed(
            "package.empty_product",
            zh=f"套餐“{product.item.name}”没有服务项目，不能销售。",
            en=f"Package product {product.item.name!r} has no services and cannot be sold.",
        )
    package = MemberPackage.objects.create(
        organisation=actor.organisation,
        store=store,
        member=member,
        product=product,
        name=product.item.name,
        bill_id=bill_id,
        bill_line_id=bill_line_id,
        unit_no=unit_no,
        price_paid_fen=price_fen,
        earning_fen=earned[0],
        points_earned=earned[1],
        purchased_on=on,
        refund_formula=product.refund_formula,
        cooling_off_days=product.cooling_off_days,
        transferable=product.transferable,
        sold_by=actor.staff,
    )
    weights = [pi.service.price_fen * (pi.count or 1) for pi in product_items]
    if sum(weights) == 0:
        weights = [1] * len(product_items)
    shares = allocate_int(price_fen, weights)
    MemberPackageItem.objects.bulk_create(
        [
            MemberPackageItem(
                member_package=package,
                service=pi.service,
                name=pi.service.name,
                count=pi.count,
                remaining=pi.count or 0,
                share_fen=share,
                unit_price_fen=share // pi.count if pi.count else share,
                list_price_fen=pi.service.price_fen,
                validity_value=pi.validity_value,
                validity_unit=pi.validity_unit,
                from_first_use=pi.valid_from == ValidFrom.FIRST_USE,
                daily_limit=pi.daily_limit,
                min_days_between=pi.min_days_between,
                valid_from=on,
                valid_until=None
                if pi.valid_from == ValidFrom.FIRST_USE
                else valid_until_for(on, pi.validity_value, pi.validity_unit),
            )
            for pi, share in zip(product_items, shares, strict=True)
        ]
    )
    return package


def _post_issue(actor: Actor, store: Store, packages: list[MemberPackage]) -> None:
    """One ``packages.issue`` journal per package over accounts locked once; then the contracts."""
    items_by_package: dict[int, list[MemberPackageItem]] = {}
    for item in MemberPackageItem.objects.filter(member_package__in=packages).order_by("pk"):
        items_by_package.setdefault(item.member_package_id, []).append(item)
    keys = []
    for package in packages:
        for item in items_by_package[package.pk]:
            if item.count:
                keys += [_member_key(actor.organisation.pk, package.member_id, item.pk), _source_key(store.pk, item.pk)]
    locked = accounts_lock(organisation_id=actor.organisation.pk, keys=keys)
    postings = []
    for package in packages:
        legs: list[Leg] = []
        for item in items_by_package[package.pk]:
            if not item.count:
                continue
            member_account = locked.get(_member_key(actor.organisation.pk, package.member_id, item.pk))
            source_account = locked.get(_source_key(store.pk, item.pk))
            item.account_id, item.source_account_id = member_account.pk, source_account.pk
            legs += [Leg(source_account, -item.count), Leg(member_account, item.count)]
        if legs:
            postings.append(
                Posting(
                    code="packages.issue",
                    entries=legs,
                    reference_type="packages.MemberPackage",
                    reference_id=str(package.pk),
                    staff_id=_staff_id(actor),
                    store_id=store.pk,
                    idempotency_key=f"packages.issue:{package.pk}",
                    memo=package.name[:255],
                )
            )
    # The packages were created in this transaction, so their keys cannot have been used.
    journals_post(organisation_id=actor.organisation.pk, postings=postings, locked=locked, keys_claimed=True)
    MemberPackageItem.objects.bulk_update(
        [i for items in items_by_package.values() for i in items if i.count], ["account_id", "source_account_id"]
    )
    for package in packages:
        package.contract = _contract_for(actor, store, package, items_by_package[package.pk])
        package.save(update_fields=["contract"])
        audit_record(
            actor=actor,
            action="packages.issue",
            obj=package,
            detail={"member_id": package.member_id, "price_fen": package.price_paid_fen, "bill_id": package.bill_id},
        )


def _validity_text(item: MemberPackageItem) -> dict[str, str]:
    unit_zh = "个月" if item.validity_unit == ValidityUnit.MONTHS else "天"
    unit_en = "months" if item.validity_unit == ValidityUnit.MONTHS else "days"
    start_zh = "自首次使用起" if item.from_first_use else "自购买之日起"
    start_en = "from first use" if item.from_first_use else "from purchase"
    count_zh = f"{item.count} 次" if item.count else "有效期内不限次数"
    count_en = f"{item.count} sessions" if item.count else "unlimited within the validity"
    return {
        "zh-hans": f"{count_zh}，{start_zh} {item.validity_value} {unit_zh}有效",
        "en": f"{count_en}, valid {item.validity_value} {unit_en} {start_en}",
    }


def _contract_for(actor: Actor, store: Store, package: MemberPackage, items: list[MemberPackageItem]) -> Any:
    if package.refund_formula == RefundFormula.LIST_PRICE:
        refund = {
            "zh-hans": "退款金额 = 实付价款 − 已使用次数 × 项目原价，最低为 0；"
            f"购买后 {package.cooling_off_days} 天内未使用可全额退款。",
            "en": "Refund = price paid − sessions used × the service's list price, at least 0; "
            f"unused within {package.cooling_off_days} days of purchase: a full refund.",
        }
    else:
        refund = {
            "zh-hans": "退款金额 = 各项目分摊价款 − 已使用次数 × 折后单价（分摊价款 ÷ 总次数），最低为 0；"
            f"购买后 {package.cooling_off_days} 天内未使用可全额退款。",
            "en": "Refund = each item's share of the price − sessions used × the unit price paid (share ÷ "
            f"sessions), at least 0; unused within {package.cooling_off_days} days of purchase: a full refund.",
        }
    validity = {
        "zh-hans": "；".join(f"{i.name}：{_validity_text(i)['zh-hans']}" for i in items),
        "en": "; ".join(f"{i.name}: {_validity_text(i)['en']}" for i in items),
    }
    member = Member.objects.get(pk=package.member_id)
    return contract_create(
        actor=actor,
        member=member,
        store=store,
        kind="package",
        reference_type="packages.MemberPackage",
        reference_id=package.pk,
        price_fen=package.price_paid_fen,
        items=[ContractItem(name=i.name, quantity=i.count or 1, detail=_validity_text(i)) for i in items],
        validity=validity,
        refund_method=refund,
    )


# --- sessions ----------------------------------------------------------------------------------------------------


def package_sessions_use(
    *,
    actor: Actor,
    member: Member,
    member_item_id: int,
    sessions: int,
    on: date,
    performed_by_id: int | None,
    bill_id: int | None = None,
    idempotency_key: str,
) -> SessionUse:
    """Use ``sessions`` of one package item on ``on`` (at checkout with ``bill_id``, or a quick 划卡).

    Refuses ``package.not_found``, ``package.frozen``, ``package.expired``, ``package.insufficient_sessions``,
    ``package.daily_limit`` and ``package.too_soon``. Posts ``packages.use`` (member −n, source +n) for a
    counted item; a time card item records the use only. ``SessionUse.value_fen`` is the part of the item's
    share the sessions used (the checkout posts it: store ``package_sessions`` −x, ``revenue`` +x).

    Idempotent per (organisation, key): a replay returns the first use; a different request is refused."""
    actor.require(Perm.CHECKOUT)
    key = validate_key(idempotency_key)
    if not isinstance(sessions, int) or isinstance(sessions, bool) or not 1 <= sessions <= 1000:
        raise ValidationFailed(
            "package.invalid_sessions",
            zh="次数：应为 1 到 1000 的整数。",
            en="sessions: a whole number from 1 to 1000.",
            field="sessions",
        )
    member = member_get(actor, member.pk)
    request = {
        "member_item_id": int(member_item_id),
        "quantity": sessions,
        "on": on.isoformat(),
        "performed_by_id": performed_by_id,
        "bill_id": bill_id,
    }
    try:
        return _sessions_use(actor, member, member_item_id, sessions, on, performed_by_id, bill_id, key, request)
    except IntegrityError:
        # The same key was written by a request that committed while this one ran: a replay (or a conflict).
        first = _use_replay(actor, key, request)
        if first is None:
            raise
        return first


def _sessions_use(
    actor: Actor,
    member: Member,
    member_item_id: int,
    sessions: int,
    on: date,
    performed_by_id: int | None,
    bill_id: int | None,
    key: str,
    request: dict[str, Any],
) -> SessionUse:
    with transaction.atomic():
        item = (
            MemberPackageItem.objects.select_for_update()
            .filter(
                pk=member_item_id,
                member_package__organisation=actor.organisation,
                member_package__member_id=member.pk,
            )
            .first()
        )
        if item is None:
            raise NotFound(
                "package.not_found",
                zh="找不到该会员的这个次卡项目。",
                en="This package item was not found for the member.",
                field="member_item_id",
            )
        # Looked for under the item's lock: a request with the same key that held it has committed by now.
        first = _use_replay(actor, key, request)
        if first is not None:
            return first
        package = MemberPackage.objects.get(pk=item.member_package_id)
        performer = _performer(actor, performed_by_id)
        _check_use(package, item, sessions, on)
        used_before = item.used
        item.used += sessions
        value = 0
        journal_id = None
        if item.count is not None:
            value = (item.share_fen * item.used) // item.count - (item.share_fen * used_before) // item.count
            item.remaining -= sessions
            journal = journal_post(
                organisation_id=actor.organisation.pk,
                code="packages.use",
                entries=[
                    Leg(_account(item.account_id), -sessions),
                    Leg(_account(item.source_account_id), sessions),
                ],
                reference_type="sales.Bill" if bill_id else "packages.MemberPackageItem",
                reference_id=str(bill_id or item.pk),
                staff_id=_staff_id(actor),
                store_id=actor.store.pk if actor.store is not None else None,
                idempotency_key=_derived_key(key, "ses"),
                memo=item.name[:255],
            )
            journal_id = journal.pk
        if item.first_used_on is None:
            item.first_used_on = on
            if item.from_first_use and item.valid_until is None:
                item.valid_from = on
                item.valid_until = valid_until_for(on, item.validity_value, item.validity_unit)
        item.last_used_on = max(item.last_used_on or on, on)
        item.save(update_fields=["used", "remaining", "first_used_on", "last_used_on", "valid_from", "valid_until"])
        use = SessionUse.objects.create(
            organisation=actor.organisation,
            member_item=item,
            quantity=sessions,
            on=on,
            value_fen=value,
            performed_by=performer,
            recorded_by=actor.staff,
            store=actor.store,
            bill_id=bill_id,
            journal_id=journal_id,
            idempotency_key=key,
        )
        audit_record(
            actor=actor,
            action="packages.use",
            obj=use,
            detail={
                "member": member.member_no,
                "item": item.name,
                "sessions": sessions,
                "left": item.remaining if item.count is not None else None,
                "performed_by": performer.pk if performer is not None else None,
                "bill_id": bill_id,
            },
        )
    return use


def package_quick_use(
    *,
    actor: Actor,
    member: Member,
    member_item_id: int,
    sessions: int,
    performed_by_id: int | None,
    idempotency_key: str,
    on: date | None = None,
) -> SessionUse:
    """A quick 划卡 at the desk, outside a bill: today's use, recording the beautician."""
    return package_sessions_use(
        actor=actor,
        member=member,
        member_item_id=member_item_id,
        sessions=sessions,
        on=on or local_today(actor.store),
        performed_by_id=performed_by_id,
        idempotency_key=idempotency_key,
    )


def _account(account_id: int | None) -> Any:
    from meiye.ledger.models import Account

    if account_id is None:
        raise ValueError("a counted package item without its ledger account")
    return Account.objects.get(pk=account_id)


def _performer(actor: Actor, performed_by_id: int | None) -> Staff | None:
    if performed_by_id is None:
        return None
    performer = Staff.objects.filter(organisation=actor.organisation, pk=performed_by_id, is_active=True).first()
    if performer is None:
        raise ValidationFailed(
            "package.invalid_performer",
            zh="服务人员：无效。",
            en="performed_by: not a staff member of this organisation.",
            field="performed_by",
        )
    return performer


def _check_use(package: MemberPackage, item: MemberPackageItem, sessions: int, on: date) -> None:
    if package.status != PackageStatus.ACTIVE:
        raise _not_active(package)
    if item.expired_on is not None or (item.valid_until is not None and on > item.valid_until):
        until = item.valid_until.isoformat() if item.valid_until else "-"
        raise ValidationFailed(
            "package.expired",
            zh=f"“{item.name}”已于 {until} 到期，不能再使用。",
            en=f"{item.name!r} expired on {until} and can no longer be used.",
            field="member_item_id",
            extra={"valid_until": until},
        )
    if on < item.valid_from:
        raise ValidationFailed(
            "package.not_yet_valid",
            zh=f"“{item.name}”自 {item.valid_from.isoformat()} 起才可使用。",
            en=f"{item.name!r} can be used from {item.valid_from.isoformat()}.",
            field="member_item_id",
        )
    if item.count is not None and item.remaining < sessions:
        raise ValidationFailed(
            "package.insufficient_sessions",
            zh=f"次数：“{item.name}”只剩 {item.remaining} 次，不能划 {sessions} 次。",
            en=f"sessions: {item.name!r} has {item.remaining} sessions left, cannot use {sessions}.",
            field="sessions",
            extra={"remaining": item.remaining},
        )
    if item.daily_limit is not None:
        today = sum(
            u.quantity - u.returned
            for u in SessionUse.objects.filter(member_item=item, on=on).only("quantity", "returned")
        )
        if today + sessions > item.daily_limit:
            raise ValidationFailed(
                "package.daily_limit",
                zh=f"次数：“{item.name}”每天最多使用 {item.daily_limit} 次，今天已用 {today} 次。",
                en=f"sessions: {item.name!r} may be used at most {item.daily_limit} times a day; {today} used today.",
                field="sessions",
                extra={"daily_limit": item.daily_limit, "used_today": today},
            )
    if item.min_days_between:
        # Uses on the same day and, for a back-dated use, after it count as well as those before it.
        gap = item.min_days_between
        near = list(
            SessionUse.objects.filter(
                member_item=item,
                on__gt=on - timedelta(days=gap),
                on__lt=on + timedelta(days=gap),
                returned__lt=F("quantity"),
            )
            .order_by("-on")
            .values_list("on", flat=True)
        )
        if near:
            last = near[0]
            earliest = last + timedelta(days=gap)
            if last < on:
                when_zh, when_en = f"上次 {last.isoformat()}", f"last used {last.isoformat()}"
            elif last == on:
                when_zh, when_en = f"{last.isoformat()} 当天已使用", f"already used on {last.isoformat()}"
            else:
                when_zh, when_en = f"{last.isoformat()} 已有使用记录", f"used on {last.isoformat()} (later)"
            raise ValidationFailed(
                "package.too_soon",
                zh=f"“{item.name}”两次使用至少间隔 {gap} 天，{when_zh}，最早 {earliest.isoformat()} 可再用。",
                en=f"{item.name!r} needs {gap} days between sessions; {when_en}, next from {earliest.isoformat()}.",
                field="member_item_id",
                extra={"last_used_on": last.isoformat(), "next_on": earliest.isoformat()},
            )


def _use_replay(actor: Actor, key: str, request: dict[str, Any]) -> SessionUse | None:
    first = SessionUse.objects.filter(organisation=actor.organisation, idempotency_key=key).first()
    if first is None:
        return None
    recorded = {
        "member_item_id": first.member_item_id,
        "quantity": first.quantity,
        "on": first.on.isoformat(),
        "performed_by_id": first.performed_by_id,
        "bill_id": first.bill_id,
    }
    if recorded != request:
        raise conflict_error(key)
    return first


def package_sessions_return_for_bill(
    *, actor: Actor, bill_id: int, quantities: dict[int, int] | None, idempotency_key: str
) -> list[SessionUse]:
    """Give back the sessions a bill used (S-22): all of them (``quantities=None``) or, per member package
    item id, at most that many. One ``packages.use_return`` journal (source −n, member +n). Sessions cannot go
    back to a package refunded, transferred or expired since, nor to an item past its validity: refused with
    Conflict ``refund.package_closed`` (checked under the items' lock; nothing is written). Idempotent: a
    replay of the key, or a bill whose sessions were all returned, writes nothing. Returns the uses that
    changed."""
    actor.require(Perm.CHECKOUT)
    key = validate_key(idempotency_key)
    journal_key = _derived_key(key, "ses_return")
    with transaction.atomic():
        if Journal.objects.filter(organisation_id=actor.organisation.pk, idempotency_key=journal_key).exists():
            return []
        uses = list(
            SessionUse.objects.select_for_update()
            .filter(organisation=actor.organisation, bill_id=bill_id, returned__lt=F("quantity"))
            .order_by("pk")
        )
        if not uses:
            return []
        items = {
            i.pk: i
            for i in MemberPackageItem.objects.select_for_update()
            .filter(pk__in=sorted({u.member_item_id for u in uses}))
            .select_related("member_package")
            .order_by("pk")
        }
        left = dict(quantities) if quantities is not None else None
        changed: list[SessionUse] = []
        legs: list[Leg] = []
        today = local_today(actor.store)
        for use in uses:
            item = items[use.member_item_id]
            n = use.quantity - use.returned
            if left is not None:
                n = min(n, left.get(item.pk, 0))
                left[item.pk] = left.get(item.pk, 0) - n
            if n <= 0:
                continue
            _check_returnable(item, today)
            use.returned += n
            item.used -= n
            if item.count is not None:
                item.remaining += n
                legs += [Leg(_account(item.source_account_id), -n), Leg(_account(item.account_id), n)]
            changed.append(use)
        if not changed:
            return []
        if legs:
            journal_post(
                organisation_id=actor.organisation.pk,
                code="packages.use_return",
                entries=legs,
                reference_type="sales.Bill",
                reference_id=str(bill_id),
                staff_id=_staff_id(actor),
                store_id=actor.store.pk if actor.store is not None else None,
                idempotency_key=journal_key,
            )
        SessionUse.objects.bulk_update(changed, ["returned"])
        MemberPackageItem.objects.bulk_update(list(items.values()), ["used", "remaining"])
        audit_record(
            actor=actor,
            action="packages.use_return",
            object_type="sales.Bill",
            object_id=str(bill_id),
            detail={"uses": {u.pk: u.returned for u in changed}},
        )
    return changed


def _check_returnable(item: MemberPackageItem, today: date) -> None:
    package = item.member_package
    closed = package.status not in (PackageStatus.ACTIVE, PackageStatus.FROZEN)
    if closed or item_expired(item, today, member_package=package):
        raise Conflict(
            "refund.package_closed",
            zh=f"次卡/套餐“{package.name}”的“{item.name}”已退款、转让或过期，次数无法退回：请改用其他方式处理。",
            en=(
                f"{item.name!r} of package {package.name!r} has been refunded, transferred or has expired since: "
                "the sessions cannot go back."
            ),
            field="lines",
            extra={"member_package_id": package.pk, "member_item_id": item.pk, "status": package.status},
        )


# --- refund, freeze, extend, transfer ---------------------------------------------------------------------------


def package_refund(
    *,
    actor: Actor,
    member_package: MemberPackage,
    tender: str,
    idempotency_key: str,
    reason: str,
    on: date | None = None,
) -> MemberPackage:
    """Refund a package (``Perm.PREPAID_REFUND``): the amount of ``selectors.refund_quote`` (cooling-off full
    price, or the product's formula, floored at 0) out of the selling store's ``revenue`` to the refunding
    store's ``tender_<kind>``; the sessions left go back to the source; status refunded. One
    ``packages.refund`` journal. The refunded share of the points and growth the sale earned is taken back
    (``points.take_back``, ``growth.refund``), as a bill refund would. Idempotent per key."""
    actor.require(Perm.PREPAID_REFUND)
    key = validate_key(idempotency_key)
    reason = _require_reason(reason)
    check_tender(tender, code="package.invalid_tender", label_zh="退款方式")
    store = actor.store
    if store is None:
        raise ValidationFailed(
            "package.store_required", zh="请先选择当前门店。", en="Choose the current store first.", field="store"
        )
    package = member_package_get(actor, member_package.pk)
    on = on or local_today(store)
    with transaction.atomic():
        # The store's accounts first, then the package and its items: the order a checkout takes them in
        # (its balances, then ``package_sessions_use``), so a refund and a checkout cannot deadlock.
        keys = [
            store_account_key(store=package.store, kind="revenue"),
            store_account_key(store=store, kind=f"tender_{tender}"),
        ]
        earned_keys: list[AccountKey] = []
        if package.earning_fen or package.points_earned:  # taken back below, as a bill refund would
            holder = member_survivor(package.member)
            earned_keys = [*points_account_keys(member=holder, earn=True), *growth_account_keys(member=holder)]
        locked = accounts_lock(organisation_id=actor.organisation.pk, keys=[*keys, *earned_keys])
        package = MemberPackage.objects.select_for_update().get(pk=package.pk)
        done = PackageAdjustment.objects.filter(member_package=package, idempotency_key=key).first()
        if done is not None:
            if done.kind != AdjustmentKind.REFUND:
                raise conflict_error(key)
            return package
        if package.status not in (PackageStatus.ACTIVE, PackageStatus.FROZEN):
            raise _not_active(package)
        items = list(MemberPackageItem.objects.select_for_update().filter(member_package=package).order_by("pk"))
        quote = refund_quote(package, items, on)
        legs: list[Leg] = []
        if quote.amount_fen:
            legs += [Leg(locked.get(keys[0]), -quote.amount_fen), Leg(locked.get(keys[1]), quote.amount_fen)]
        returned = {}
        for item in items:
            if item.count is not None and item.remaining:
                legs += [
                    Leg(_account(item.account_id), -item.remaining),
                    Leg(_account(item.source_account_id), item.remaining),
                ]
                returned[item.pk] = item.remaining
                item.remaining = 0
        journal = None
        if legs:
            journal = journal_post(
                organisation_id=actor.organisation.pk,
                code="packages.refund",
                entries=legs,
                reference_type="packages.MemberPackage",
                reference_id=str(package.pk),
                staff_id=_staff_id(actor),
                store_id=store.pk,
                idempotency_key=_derived_key(key, "refund"),
                memo=f"{tender} {quote.formula}"[:255],
            )
        MemberPackageItem.objects.bulk_update(items, ["remaining"])
        package.status = PackageStatus.REFUNDED
        package.refunded_fen = quote.amount_fen
        package.refund_journal_id = journal.pk if journal is not None else None
        package.save(update_fields=["status", "refunded_fen", "refund_journal_id"])
        _take_back_earnings(actor, package, quote.amount_fen, key)
        PackageAdjustment.objects.create(
            member_package=package,
            kind=AdjustmentKind.REFUND,
            amount_fen=quote.amount_fen,
            reason=reason,
            detail={
                "formula": quote.formula,
                "text_zh": quote.text_zh,
                "text_en": quote.text_en,
                "tender": tender,
                "sessions_returned": returned,
            },
            staff=actor.staff,
            idempotency_key=key,
        )
        audit_record(
            actor=actor,
            action="packages.refund",
            obj=package,
            detail={"amount_fen": quote.amount_fen, "formula": quote.formula, "tender": tender, "reason": reason},
        )
    return package


def _take_back_earnings(actor: Actor, package: MemberPackage, refunded_fen: int, key: str) -> None:
    """The refunded share of what the sale earned: growth value and points, floored (the member keeps a
    rounding fen rather than losing one). A full refund takes back everything the sale earned."""
    if package.price_paid_fen <= 0 or refunded_fen <= 0:
        return
    growth = package.earning_fen * refunded_fen // package.price_paid_fen
    points = package.points_earned * refunded_fen // package.price_paid_fen
    reference = {"reference_type": "packages.MemberPackage", "reference_id": str(package.pk)}
    if growth:
        growth_add(
            actor=actor,
            member=package.member,
            amount_fen=-growth,
            idempotency_key=_derived_key(key, "grw"),
            **reference,
        )
    if points:
        points_take_back_part(
            actor=actor,
            member=package.member,
            points=points,
            idempotency_key=_derived_key(key, "pts"),
            memo=f"package refund {package.pk}",
            **reference,
        )


def package_freeze(
    *, actor: Actor, member_package: MemberPackage, reason: str, on: date | None = None
) -> MemberPackage:
    """Freeze an active package (``Perm.PACKAGE_ADJUST``): no sessions, no expiry, until unfrozen."""
    actor.require(Perm.PACKAGE_ADJUST)
    reason = _require_reason(reason)
    package = member_package_get(actor, member_package.pk)
    on = on or local_today(actor.store)
    with transaction.atomic():
        package = MemberPackage.objects.select_for_update().get(pk=package.pk)
        if package.status != PackageStatus.ACTIVE:
            raise _not_active(package)
        package.status, package.frozen_on = PackageStatus.FROZEN, on
        package.save(update_fields=["status", "frozen_on"])
        PackageAdjustment.objects.create(
            member_package=package, kind=AdjustmentKind.FREEZE, reason=reason, staff=actor.staff
        )
        audit_record(
            actor=actor, action="packages.freeze", obj=package, detail={"reason": reason, "on": on.isoformat()}
        )
    return package


def package_unfreeze(
    *, actor: Actor, member_package: MemberPackage, reason: str = "", on: date | None = None
) -> MemberPackage:
    """Unfreeze: the days it was frozen are added to every item's validity (a freeze pauses the clock)."""
    actor.require(Perm.PACKAGE_ADJUST)
    package = member_package_get(actor, member_package.pk)
    on = on or local_today(actor.store)
    with transaction.atomic():
        package = MemberPackage.objects.select_for_update().get(pk=package.pk)
        if package.status != PackageStatus.FROZEN:
            raise ValidationFailed("package.not_frozen", zh="该次卡/套餐未冻结。", en="This package is not frozen.")
        days = max((on - package.frozen_on).days, 0) if package.frozen_on else 0
        if days:
            MemberPackageItem.objects.filter(member_package=package, valid_until__isnull=False).update(
                valid_until=F("valid_until") + timedelta(days=days)
            )
        package.status, package.frozen_on = PackageStatus.ACTIVE, None
        package.save(update_fields=["status", "frozen_on"])
        PackageAdjustment.objects.create(
            member_package=package,
            kind=AdjustmentKind.UNFREEZE,
            days=days,
            reason=reason.strip()[:200],
            staff=actor.staff,
        )
        audit_record(actor=actor, action="packages.unfreeze", obj=package, detail={"days_added": days})
    return package


def package_extend(*, actor: Actor, member_package: MemberPackage, days: int, reason: str) -> MemberPackage:
    """Add ``days`` (1–3650) to the validity of every item not yet expired (``Perm.PACKAGE_ADJUST``)."""
    actor.require(Perm.PACKAGE_ADJUST)
    reason = _require_reason(reason)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650:
        raise ValidationFailed("package.invalid_days", zh="延期天数：1 到 3650。", en="days: 1 to 3650.", field="days")
    package = member_package_get(actor, member_package.pk)
    with transaction.atomic():
        package = MemberPackage.objects.select_for_update().get(pk=package.pk)
        if package.status not in (PackageStatus.ACTIVE, PackageStatus.FROZEN):
            raise _not_active(package)
        changed = MemberPackageItem.objects.filter(
            member_package=package, valid_until__isnull=False, expired_on__isnull=True
        ).update(valid_until=F("valid_until") + timedelta(days=days))
        PackageAdjustment.objects.create(
            member_package=package, kind=AdjustmentKind.EXTEND, days=days, reason=reason, staff=actor.staff
        )
        audit_record(
            actor=actor,
            action="packages.extend",
            obj=package,
            detail={"days": days, "reason": reason, "items": changed},
        )
    return package


def package_transfer(
    *, actor: Actor, member_package: MemberPackage, to_member: Member, idempotency_key: str, reason: str
) -> MemberPackage:
    """Transfer what is left of a transferable package to another member (``Perm.PREPAID_REFUND``): a new
    package for her with the sessions left (its price = the value left, item by item), the old one marked
    transferred. One ``packages.transfer`` journal. Returns the new package; idempotent per key."""
    actor.require(Perm.PREPAID_REFUND)
    key = validate_key(idempotency_key)
    reason = _require_reason(reason)
    package = member_package_get(actor, member_package.pk)
    to_member = member_get(actor, to_member.pk)
    on = local_today(actor.store)
    with transaction.atomic():
        package = MemberPackage.objects.select_for_update().get(pk=package.pk)
        done = PackageAdjustment.objects.filter(member_package=package, idempotency_key=key).first()
        if done is not None:
            if done.kind != AdjustmentKind.TRANSFER or done.detail.get("to_member_id") != to_member.pk:
                raise conflict_error(key)
            return MemberPackage.objects.get(pk=done.detail["new_package_id"])
        if not package.transferable:
            raise ValidationFailed(
                "package.not_transferable",
                zh=f"“{package.name}”不可转让。",
                en=f"Package {package.name!r} is not transferable.",
            )
        if package.status != PackageStatus.ACTIVE:
            raise _not_active(package)
        if to_member.pk == package.member_id:
            raise ValidationFailed(
                "package.transfer_self",
                zh="转让对象：不能转给本人。",
                en="to_member: cannot transfer to the same member.",
                field="to_member",
            )
        items = list(MemberPackageItem.objects.select_for_update().filter(member_package=package).order_by("pk"))
        values = {i.pk: item_value_fen(i, on, member_package=package) for i in items}
        live = [i for i in items if values[i.pk] > 0 or (i.count is not None and i.remaining > 0)]
        new = MemberPackage.objects.create(
            organisation=actor.organisation,
            store=package.store,
            member=to_member,
            product=package.product,
            name=package.name,
            price_paid_fen=sum(values.values()),
            purchased_on=package.purchased_on,
            refund_formula=package.refund_formula,
            cooling_off_days=0,
            transferable=False,
            transferred_from=package,
            sold_by=actor.staff,
        )
        new_items = MemberPackageItem.objects.bulk_create(
            [
                MemberPackageItem(
                    member_package=new,
                    service_id=i.service_id,
                    name=i.name,
                    count=i.remaining if i.count is not None else None,
                    remaining=i.remaining if i.count is not None else 0,
                    share_fen=values[i.pk],
                    unit_price_fen=i.unit_price_fen,
                    list_price_fen=i.list_price_fen,
                    validity_value=i.validity_value,
                    validity_unit=i.validity_unit,
                    from_first_use=i.from_first_use,
                    daily_limit=i.daily_limit,
                    min_days_between=i.min_days_between,
                    # The new item's share is the value left today, so its clock starts today (a time card
                    # is valued by the days elapsed from valid_from); it ends when the old one would have.
                    valid_from=on,
                    valid_until=i.valid_until,
                    first_used_on=i.first_used_on,
                    last_used_on=i.last_used_on,
                )
                for i in live
            ]
        )
        if not connection.features.can_return_rows_from_bulk_insert:
            new_items = list(MemberPackageItem.objects.filter(member_package=new).order_by("pk"))
        keys: list[AccountKey] = []
        for old, fresh in zip(live, new_items, strict=True):
            if old.count is not None and old.remaining:
                keys += [
                    _member_key(0, to_member.pk, fresh.pk),
                    _source_key(package.store_id, fresh.pk),
                ]
        locked = accounts_lock(organisation_id=actor.organisation.pk, keys=keys)
        legs: list[Leg] = []
        for old, fresh in zip(live, new_items, strict=True):
            if old.count is not None and old.remaining:
                n = old.remaining
                member_account = locked.get(_member_key(0, to_member.pk, fresh.pk))
                source_account = locked.get(_source_key(package.store_id, fresh.pk))
                fresh.account_id, fresh.source_account_id = member_account.pk, source_account.pk
                legs += [
                    Leg(_account(old.account_id), -n),
                    Leg(_account(old.source_account_id), n),
                    Leg(source_account, -n),
                    Leg(member_account, n),
                ]
                old.remaining = 0
        if legs:
            journal_post(
                organisation_id=actor.organisation.pk,
                code="packages.transfer",
                entries=legs,
                reference_type="packages.MemberPackage",
                reference_id=str(package.pk),
                staff_id=_staff_id(actor),
                store_id=actor.store.pk if actor.store is not None else None,
                idempotency_key=_derived_key(key, "transfer"),
            )
        MemberPackageItem.objects.bulk_update(new_items, ["account_id", "source_account_id"])
        MemberPackageItem.objects.bulk_update(items, ["remaining"])
        package.status = PackageStatus.TRANSFERRED
        package.save(update_fields=["status"])
        PackageAdjustment.objects.create(
            member_package=package,
            kind=AdjustmentKind.TRANSFER,
            reason=reason,
            detail={"to_member_id": to_member.pk, "new_package_id": new.pk},
            staff=actor.staff,
            idempotency_key=key,
        )
        audit_record(
            actor=actor,
            action="packages.transfer",
            obj=package,
            detail={"to_member": to_member.member_no, "new_package_id": new.pk, "reason": reason},
        )
    return new


# --- expiry job ---------------------------------------------------------------------------------------------------


def packages_expiry_items(*, on: date, organisation_id: int | None = None) -> list[int]:
    """Ids of the counted items due to expire on ``on`` (last valid day before it, sessions left, package
    active — a frozen package does not expire — or already expired: sessions a bill refund gave back to an
    expired item expire on the next run)."""
    qs = MemberPackageItem.objects.filter(
        valid_until__lt=on,
        remaining__gt=0,
        member_package__status__in=[PackageStatus.ACTIVE, PackageStatus.EXPIRED],
    )
    if organisation_id is not None:
        qs = qs.filter(member_package__organisation_id=organisation_id)
    return list(qs.order_by("pk").values_list("pk", flat=True))


def packages_expire_due(
    *,
    on: date,
    organisation_id: int | None = None,
    batch_size: int = EXPIRY_BATCH,
    item_ids: Sequence[int] | None = None,
    progress: Callable[[int], None] | None = None,
    skipped: list[int] | None = None,
) -> int:
    """The nightly job: expire, item by item, the sessions left on every item whose last valid day is before
    ``on``; returns the number of sessions expired. Set-based in batches of ``batch_size`` items, one
    transaction each: lock the batch's items and balance rows (account order), post one ``packages.expire``
    journal per organisation and batch with two legs per item (member −n, source +n) through ``journals_post``,
    then one UPDATE zeroes the items (``expired_sessions``, ``expired_on`` record what each lost).
    Idempotent: an expired item has nothing left to expire, so a second run the same day posts nothing and a
    run that stopped half-way resumes with the batches it had not committed. Packages whose every item is
    past its validity become ``expired``. An item whose ``remaining`` differs from its ledger balance
    (``package.sessions_out_of_step``) is left out, logged, and its id appended to ``skipped`` if given; the
    others expire. 1,000,000 sessions: see benchmarks/packages_expiry.py."""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    ids = (
        sorted(set(item_ids)) if item_ids is not None else packages_expiry_items(on=on, organisation_id=organisation_id)
    )
    expired = 0
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        expired += _expire_batch(on, batch, skipped)
        if progress is not None:
            progress(len(batch))
    _mark_expired_packages(on, organisation_id)
    return expired


def _expire_batch(on: date, ids: list[int], skipped: list[int] | None = None) -> int:
    """One batch of ``packages_expire_due``, in one transaction: lock the items (PostgreSQL) and their two
    accounts' balance rows in account order, post one ``packages.expire`` journal per organisation with two
    legs per item, zero the items. Hand-written SQL for the reads: this runs over a million sessions."""
    qn = connection.ops.quote_name
    items_table, packages_table = qn(MemberPackageItem._meta.db_table), qn(MemberPackage._meta.db_table)
    account_table, balance_table = qn(Account._meta.db_table), qn(Balance._meta.db_table)
    marks = ", ".join(["%s"] * len(ids))
    with transaction.atomic():
        sql = (
            f"SELECT i.id, p.organisation_id, i.account_id, i.source_account_id, i.remaining, "  # noqa: S608
            f"i.expired_sessions "
            f"FROM {items_table} i JOIN {packages_table} p ON p.id = i.member_package_id "
            f"WHERE i.id IN ({marks}) AND i.valid_until < %s AND i.remaining > 0 AND p.status IN (%s, %s) "
            f"AND i.account_id IS NOT NULL AND i.source_account_id IS NOT NULL ORDER BY i.id"
        )
        if connection.features.has_select_for_update:
            sql += " FOR UPDATE OF i" if connection.features.has_select_for_update_of else " FOR UPDATE"
        with connection.cursor() as cursor:
            cursor.execute(sql, [*ids, on, PackageStatus.ACTIVE, PackageStatus.EXPIRED])
            rows: list[tuple[int, int, int, int, int, int]] = cursor.fetchall()
        if not rows:
            return 0
        account_ids = sorted({r[2] for r in rows} | {r[3] for r in rows})
        sql = (
            f"SELECT a.id, a.organisation_id, a.owner_type, a.owner_id, a.asset, a.kind, a.may_go_negative, "  # noqa: S608
            f"b.amount, b.version FROM {balance_table} b JOIN {account_table} a ON a.id = b.account_id "
            f"WHERE b.account_id IN ({', '.join(['%s'] * len(account_ids))}) ORDER BY b.account_id"
        )
        if connection.features.has_select_for_update:
            sql += " FOR UPDATE OF b" if connection.features.has_select_for_update_of else " FOR UPDATE"
        by_account: dict[int, Balance] = {}
        with connection.cursor() as cursor:
            cursor.execute(sql, account_ids)
            for pk, org_id, owner_type, owner_id, asset, kind, flag, amount, version in cursor.fetchall():
                account = Account.from_db(
                    connection.alias, _ACCOUNT_FIELDS, (pk, org_id, owner_type, owner_id, asset, kind, bool(flag))
                )
                balance = Balance.from_db(connection.alias, _BALANCE_FIELDS, (pk, amount, bool(flag), version))
                balance.account = account
                by_account[pk] = balance
        by_org: dict[int, list[tuple[int, int, int, int, int]]] = {}
        for pk, org_id, account_id, source_id, remaining, expired_before in rows:
            held = by_account[account_id].amount
            if held != remaining:
                # One item out of step with the ledger must not stop the expiry of every other: left out
                # (and logged) until someone puts it right (``packages_verify`` lists it too).
                logger.error(
                    "package.sessions_out_of_step: item %s has remaining=%s but the ledger holds %s; not expired",
                    pk,
                    remaining,
                    held,
                )
                if skipped is not None:
                    skipped.append(pk)
                continue
            by_org.setdefault(org_id, []).append((pk, account_id, source_id, remaining, expired_before))
        total = 0
        for org_id, todo in sorted(by_org.items()):
            locked = LockedAccounts(organisation_id=org_id)
            legs: list[Leg] = []
            for _pk, account_id, source_id, n, _before in todo:
                for balance in (by_account[account_id], by_account[source_id]):
                    account = balance.account
                    locked.accounts[(account.owner_type, account.owner_id, account.asset, account.kind)] = account
                    locked.balances[account.pk] = balance
                legs += [Leg(by_account[account_id].account, -n), Leg(by_account[source_id].account, n)]
                total += n
            # The batch's content names its key: each item with the sessions it loses and those it had lost
            # before (which only grow), so an item that expires, gets sessions back and expires again the
            # same day makes a new key; the unique index still refuses a true duplicate.
            digest = hashlib.sha256(",".join(f"{t[0]}:{t[3]}:{t[4]}" for t in todo).encode()).hexdigest()[:32]
            posting = Posting(
                code="packages.expire",
                entries=legs,
                reference_type="packages.MemberPackageItem",
                reference_id=f"{todo[0][0]}-{todo[-1][0]}",
                idempotency_key=f"packages.expire:{on.isoformat()}:{digest}",
                memo=f"{len(todo)} items expired before {on.isoformat()}",
            )
            journals_post(organisation_id=org_id, postings=[posting], locked=locked, keys_claimed=True)
        done = [t[0] for todo in by_org.values() for t in todo]
        if not done:
            return 0
        MemberPackageItem.objects.filter(pk__in=done).update(
            expired_sessions=F("expired_sessions") + F("remaining"), remaining=0, expired_on=on
        )
    return total


_ACCOUNT_FIELDS = ["id", "organisation_id", "owner_type", "owner_id", "asset", "kind", "may_go_negative"]
_BALANCE_FIELDS = ["account_id", "amount", "may_go_negative", "version"]


def _mark_expired_packages(on: date, organisation_id: int | None) -> int:
    alive = MemberPackageItem.objects.filter(member_package=OuterRef("pk")).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gte=on)
    )
    qs = MemberPackage.objects.filter(status=PackageStatus.ACTIVE).exclude(Exists(alive))
    if organisation_id is not None:
        qs = qs.filter(organisation_id=organisation_id)
    return qs.update(status=PackageStatus.EXPIRED)


REMIND_DAYS = 7


def packages_expiry_remind(*, on: date, organisation_id: int | None = None, days: int = REMIND_DAYS) -> int:
    """Remind members whose counted items expire ``days`` days after ``on`` with sessions left (event
    ``package.expiring``). Once per item and last valid day (the key names both); returns messages asked."""
    from meiye.notify.events import PACKAGE_EXPIRING
    from meiye.notify.services import notify_event

    target = on + timedelta(days=days)
    qs = MemberPackageItem.objects.filter(
        valid_until=target, remaining__gt=0, member_package__status=PackageStatus.ACTIVE
    ).select_related("member_package__member", "member_package__store")
    if organisation_id is not None:
        qs = qs.filter(member_package__organisation_id=organisation_id)
    count = 0
    for item in qs.order_by("pk").iterator(chunk_size=500):
        package = item.member_package
        with transaction.atomic(), contextlib.suppress(ApplicationError):
            notify_event(
                organisation_id=package.organisation_id,
                member=package.member,
                store=package.store,
                event=PACKAGE_EXPIRING,
                context={
                    "package": f"{package.name}（{item.name}）",
                    "sessions": item.remaining,
                    "date": target.isoformat(),
                },
                idempotency_key=f"{PACKAGE_EXPIRING}:{item.pk}:{target.isoformat()}",
            )
            count += 1
    return count


# --- member merge / export / verification -------------------------------------------------------------------


def packages_merge(actor: Actor, survivor: Member, merged: Member) -> dict[str, Any]:
    """``members.services.MERGE_HOOKS`` entry: the merged member's packages become the survivor's, with
    their sessions (one ``packages.merge`` journal, merged −n / survivor +n per item)."""
    packages = list(MemberPackage.objects.filter(member=merged).order_by("pk"))
    if not packages:
        return {"packages": 0}
    items = list(
        MemberPackageItem.objects.select_for_update()
        .filter(member_package__in=packages, account_id__isnull=False)
        .order_by("pk")
    )
    organisation_id = merged.organisation_id
    keys = [_member_key(0, merged.pk, i.pk) for i in items] + [_member_key(0, survivor.pk, i.pk) for i in items]
    if items:
        locked = accounts_lock(organisation_id=organisation_id, keys=keys)
        legs: list[Leg] = []
        for item in items:
            target = locked.get(_member_key(0, survivor.pk, item.pk))
            n = locked.balance(locked.get(_member_key(0, merged.pk, item.pk)))
            if n:
                legs += [Leg(locked.get(_member_key(0, merged.pk, item.pk)), -n), Leg(target, n)]
            item.account_id = target.pk
        if legs:
            journal_post(
                organisation_id=organisation_id,
                code="packages.merge",
                entries=legs,
                reference_type="members.Member",
                reference_id=str(merged.pk),
                staff_id=_staff_id(actor),
                idempotency_key=f"packages.merge:{merged.pk}:{survivor.pk}",
            )
        MemberPackageItem.objects.bulk_update(items, ["account_id"])
    moved = MemberPackage.objects.filter(member=merged).update(member=survivor)
    return {"packages": moved}


def packages_export_section(member: Member) -> tuple[str, Any]:
    """``members.services.EXPORT_SECTIONS`` entry: every package of the member, its items and uses."""
    rows = []
    for package in MemberPackage.objects.filter(member=member).prefetch_related("items__uses").order_by("pk"):
        rows.append(
            {
                "id": package.pk,
                "name": package.name,
                "status": package.status,
                "purchased_on": package.purchased_on.isoformat(),
                "price_paid": Money(package.price_paid_fen).as_decimal_string(),
                "refunded": Money(package.refunded_fen).as_decimal_string()
                if package.refunded_fen is not None
                else None,
                "items": [
                    {
                        "name": item.name,
                        "count": item.count,
                        "used": item.used,
                        "remaining": item.remaining,
                        "valid_until": item.valid_until.isoformat() if item.valid_until else None,
                        "uses": [
                            {"on": u.on.isoformat(), "quantity": u.quantity, "returned": u.returned}
                            for u in item.uses.all()
                        ],
                    }
                    for item in package.items.all()
                ],
            }
        )
    return "packages", rows


def packages_verify(*, organisation_id: int | None = None) -> list[int]:
    """Ids of counted items whose ``remaining`` differs from the member account's balance (should be [])."""
    qs = MemberPackageItem.objects.filter(account_id__isnull=False)
    if organisation_id is not None:
        qs = qs.filter(member_package__organisation_id=organisation_id)
    amounts = dict(Balance.objects.filter(account_id__in=qs.values("account_id")).values_list("account_id", "amount"))
    return [
        pk
        for pk, account_id, remaining in qs.values_list("pk", "account_id", "remaining")
        if account_id is not None and amounts.get(account_id) != remaining
    ]


__all__ = [
    "Conflict",
    "ProductItemInput",
    "package_extend",
    "package_freeze",
    "package_product_save",
    "package_quick_use",
    "package_refund",
    "package_sessions_return_for_bill",
    "package_sessions_use",
    "package_transfer",
    "package_unfreeze",
    "packages_expire_due",
    "packages_export_section",
    "packages_issue_for_bill",
    "packages_merge",
    "packages_verify",
]
