"""Reads of the points mall: items (with their stock from the ledger), the rules, and redemptions.

Items belong to the organisation; ``mall_items(actor, store=…)`` narrows them to what a store offers.
Redemptions are scoped to the stores the actor may see (``org.selectors.visible_store_ids``); one outside
them is "not found". ``member_redemptions`` takes a member the caller obtained through ``member_get``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q, QuerySet, Sum

from meiye.core.errors import not_found
from meiye.ledger.models import Balance
from meiye.ledger.services import AccountKey
from meiye.mall.models import (
    DEFAULT_APPROVAL_THRESHOLD_POINTS,
    DEFAULT_MIN_REDEEM_POINTS,
    MallItem,
    MallRedemption,
    MallSettings,
    RedemptionStatus,
    stock_asset,
)
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.org.roles import Perm
from meiye.org.selectors import visible_store_ids

# Ledger accounts of an item's stock (ADR 0003 style: the item's shelf may not go negative).
ITEM_OWNER = "mall_item"
STOCK = "mall_stock"
STOCK_SOURCE = "mall_stock_source"
STOCK_HELD = "mall_stock_held"
STOCK_REDEEMED = "mall_stock_redeemed"


def stock_key(item: MallItem) -> AccountKey:
    """What is on the shelf: ("mall_item", id, "STK:mall:<id>", "mall_stock"), never negative."""
    return AccountKey(ITEM_OWNER, item.pk, stock_asset(item.pk), STOCK, may_go_negative=False)


def stock_org_key(item: MallItem, kind: str) -> AccountKey:
    """The organisation's counter-accounts of the item's stock: source and redeemed may go negative (they
    record where stock came from and went to), held (reserved for pending redemptions) may not."""
    return AccountKey(
        "organisation", item.organisation_id, stock_asset(item.pk), kind, may_go_negative=kind != STOCK_HELD
    )


@dataclass(frozen=True, slots=True)
class MallRules:
    min_redeem_points: int
    approval_threshold_points: int | None

    def needs_approval(self, points: int) -> bool:
        return self.approval_threshold_points is not None and points >= self.approval_threshold_points


def mall_rules(organisation_id: int) -> MallRules:
    """The organisation's minimum redemption and approval threshold (S-07 defaults: 500 and 20,000)."""
    row = (
        MallSettings.objects.filter(organisation_id=organisation_id)
        .values_list("min_redeem_points", "approval_threshold_points")
        .first()
    )
    if row is None:
        return MallRules(DEFAULT_MIN_REDEEM_POINTS, DEFAULT_APPROVAL_THRESHOLD_POINTS)
    return MallRules(row[0], row[1])


def mall_items(actor: Actor, *, store: Store | None = None, active_only: bool = True) -> QuerySet[MallItem]:
    """The organisation's mall items; with ``store`` only those offered there (no stores listed: everywhere)."""
    qs = MallItem.objects.filter(organisation=actor.organisation).select_related("catalog_item")
    if active_only:
        qs = qs.filter(is_active=True)
    if store is not None:
        qs = qs.filter(Q(stores__isnull=True) | Q(stores=store)).distinct()
    return qs.prefetch_related("stores").order_by("points_price", "id")


def mall_item_get(actor: Actor, item_id: int | str) -> MallItem:
    try:
        return mall_items(actor, active_only=False).get(pk=int(item_id))
    except (MallItem.DoesNotExist, ValueError, TypeError):
        raise not_found("mall.item_not_found", "积分商城商品", "Mall item") from None


def item_offered_in(item: MallItem, store: Store) -> bool:
    """Whether the item may be redeemed in ``store`` (its store list is empty or names the store)."""
    return item.organisation_id == store.organisation_id and (
        not item.stores.exists() or item.stores.filter(pk=store.pk).exists()
    )


def mall_stock(items: Iterable[MallItem]) -> dict[int, int | None]:
    """Stock on the shelf per item id, from the ledger in one query; None for unlimited items."""
    items = list(items)
    limited = [item for item in items if item.stock_limited]
    found: dict[int, int] = {}
    if limited:
        found = dict(
            Balance.objects.filter(
                account__organisation_id=limited[0].organisation_id,
                account__owner_type=ITEM_OWNER,
                account__owner_id__in=[item.pk for item in limited],
                account__kind=STOCK,
            ).values_list("account__owner_id", "amount")
        )
    return {item.pk: (found.get(item.pk, 0) if item.stock_limited else None) for item in items}


def mall_item_stock(item: MallItem) -> int | None:
    return mall_stock([item])[item.pk]


def mall_stock_held(items: Iterable[MallItem]) -> dict[int, int]:
    """Units reserved for redemptions awaiting approval, per item id (the ledger's held accounts)."""
    items = list(items)
    if not items:
        return {}
    by_asset = {stock_asset(item.pk): item.pk for item in items}
    rows = Balance.objects.filter(
        account__organisation_id=items[0].organisation_id,
        account__owner_type="organisation",
        account__kind=STOCK_HELD,
        account__asset__in=list(by_asset),
    ).values_list("account__asset", "amount")
    held = {by_asset[asset]: amount for asset, amount in rows}
    return {item.pk: held.get(item.pk, 0) for item in items}


def member_redeemed_quantity(member: Member, item: MallItem) -> int:
    """Units of ``item`` the member has redeemed or is waiting for (rejections do not count)."""
    total = (
        MallRedemption.objects.filter(member=member, item=item)
        .exclude(status=RedemptionStatus.REJECTED)
        .aggregate(total=Sum("quantity"))["total"]
    )
    return int(total or 0)


def redemptions_visible(actor: Actor) -> QuerySet[MallRedemption]:
    """Redemptions made in the stores the actor may see, newest first."""
    actor.require(Perm.MEMBER_VIEW)
    qs = MallRedemption.objects.filter(organisation=actor.organisation)
    if actor.staff is not None and not actor.staff.sees_all_stores:
        qs = qs.filter(store_id__in=visible_store_ids(actor))
    return qs.select_related("store", "member", "item", "requested_by", "decided_by").order_by("-created_at", "-id")


def redemption_get(actor: Actor, redemption_id: int | str) -> MallRedemption:
    try:
        return redemptions_visible(actor).get(pk=int(redemption_id))
    except (MallRedemption.DoesNotExist, ValueError, TypeError):
        raise not_found("mall.redemption_not_found", "兑换记录", "Redemption") from None


def store_redemptions(
    actor: Actor, *, store_id: int | None = None, status: str = "", member_id: int | None = None
) -> QuerySet[MallRedemption]:
    """The redemption history of the visible stores (or one of them), optionally by status or member."""
    qs = redemptions_visible(actor)
    if store_id is not None:
        qs = qs.filter(store_id=store_id)
    if status:
        qs = qs.filter(status=status)
    if member_id is not None:
        qs = qs.filter(member_id=member_id)
    return qs


def pending_redemptions(actor: Actor) -> QuerySet[MallRedemption]:
    """What waits for a store manager's approval, oldest first."""
    return redemptions_visible(actor).filter(status=RedemptionStatus.PENDING).order_by("created_at", "id")


def member_redemptions(member: Member) -> QuerySet[MallRedemption]:
    """Every redemption of the member (obtained through ``member_get``), in any store, newest first."""
    return (
        MallRedemption.objects.filter(member=member)
        .select_related("store", "item", "decided_by")
        .order_by("-created_at", "-id")
    )
