"""Writes for the points mall (S-07): the rules, items and their stock, redemptions, approval and rejection.

Ledger (ADR 0003), all in the transaction of the operation that posts them:

- ``mall.redeem`` (through loyalty's ``points_spend_prepare``): member points −p, organisation
  ``points_redeemed`` +p; the points come off the lots expiring first (``PointsLotUse`` rows);
- ``mall.stock_redeem``: item ``mall_stock`` −q, organisation ``mall_stock_redeemed`` +q (completed at once), or
  ``mall.stock_hold``: item ``mall_stock`` −q, organisation ``mall_stock_held`` +q (waiting for approval);
- ``mall.cash`` (points+cash items): store ``tender_<kind>`` −cash, store ``revenue`` +cash;
- approval: ``mall.stock_release`` held −q, redeemed +q; rejection: ``mall.redeem.reversal`` (``points_restore``:
  the same lots get their points back), ``mall.stock_return`` held −q, shelf +q, ``mall.cash.reversal``;
- ``mall.stock_in`` / ``mall.stock_out``: organisation ``mall_stock_source`` ∓q, item ``mall_stock`` ±q.

Held points: a redemption at or above the approval threshold spends the points at once into the redemption
(status ``pending``), so they cannot be spent twice while it waits; the stock is reserved at the same moment
(moved to the held account), so an approval can never fail for lack of stock and two pending redemptions
cannot promise the same last unit. Approval only releases the held stock; rejection gives everything back.

Locking: a redemption locks, in one statement and in primary-key order (``ledger.services.accounts_lock``),
the member's points, the organisation's ``points_redeemed``, the item's stock accounts and the store's cash
accounts; then it checks for a replay, the rules and the balances. Two redemptions of the last unit, or two
of one member, therefore run one after the other. A decision locks the redemption row first, then the same
kind of account set in one statement.

Idempotency: ``mall_redeem`` and ``mall_item_create`` claim the caller's key with a unique row (same key and
same request: the first result; a different request: ``idempotency.key_reused``); their journals use keys
derived from the row's id. ``mall_stock_add`` uses the caller's key on its journal. Approving or rejecting
twice returns the first decision (the journals' keys are derived from the redemption, so the ledger would
refuse a second posting anyway); the opposite decision afterwards is ``mall.already_decided``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.catalog.selectors import item_get
from meiye.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from meiye.core.idempotency import conflict_error, validate_key
from meiye.core.money import Money
from meiye.ledger.models import Journal
from meiye.ledger.selectors import journal_by_idempotency_key, journal_entries
from meiye.ledger.services import AccountKey, Leg, Posting, accounts_lock, journal_reverse, journals_post
from meiye.loyalty.services import points_account_keys, points_restore, points_spend_prepare
from meiye.mall.models import MallItem, MallItemKind, MallRedemption, MallSettings, RedemptionStatus
from meiye.mall.selectors import (
    STOCK_HELD,
    STOCK_REDEEMED,
    STOCK_SOURCE,
    item_offered_in,
    mall_item_get,
    mall_rules,
    member_redeemed_quantity,
    member_redemptions,
    redemptions_visible,
    stock_key,
    stock_org_key,
)
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_get, member_survivor
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.org.roles import Perm
from meiye.org.selectors import stores_visible
from meiye.wallet.models import Tender
from meiye.wallet.services import store_account_key

__all__ = [
    "MallItemInput",
    "mall_export_section",
    "mall_item_create",
    "mall_item_update",
    "mall_merge",
    "mall_redeem",
    "mall_redemption_approve",
    "mall_redemption_reject",
    "mall_settings_set",
    "mall_stock_add",
]

MAX_POINTS_PRICE = 100_000_000
MAX_CASH_FEN = 10_000_000_000  # 100,000,000.00 元
MAX_QUANTITY = 999
MAX_STOCK_CHANGE = 1_000_000
REFERENCE = "mall.MallRedemption"
ITEM_REFERENCE = "mall.MallItem"


# --- Rules ---------------------------------------------------------------------------------------------------


def mall_settings_set(*, actor: Actor, min_redeem_points: int, approval_threshold_points: int | None) -> MallSettings:
    """Set the minimum redemption (S-07: 500) and the approval threshold (S-07: 20,000; None: never)."""
    actor.require(Perm.CATALOG_MANAGE)
    _check_whole("min_redeem_points", min_redeem_points, low=0, high=MAX_POINTS_PRICE, zh="最低兑换积分")
    if approval_threshold_points is not None:
        _check_whole(
            "approval_threshold_points", approval_threshold_points, low=1, high=MAX_POINTS_PRICE * 10, zh="审批门槛"
        )
    with transaction.atomic():
        settings, _ = MallSettings.objects.select_for_update().get_or_create(organisation=actor.organisation)
        before = [settings.min_redeem_points, settings.approval_threshold_points]
        settings.min_redeem_points = min_redeem_points
        settings.approval_threshold_points = approval_threshold_points
        settings.save(update_fields=["min_redeem_points", "approval_threshold_points"])
        audit_record(
            actor=actor,
            action="mall.settings_set",
            obj=settings,
            detail={"before": before, "after": [min_redeem_points, approval_threshold_points]},
        )
    return settings


# --- Items and stock ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MallItemInput:
    """What an item is; its stock changes only through ``mall_stock_add`` (or the initial stock at creation)."""

    kind: str
    name: str
    points_price: int
    cash_fen: int = 0
    catalog_item_id: int | None = None
    stock_limited: bool = True
    per_member_limit: int | None = None
    store_ids: Sequence[int] = field(default_factory=tuple)
    is_active: bool = True


def mall_item_create(*, actor: Actor, data: MallItemInput, initial_stock: int = 0, idempotency_key: str) -> MallItem:
    """Create a mall item, with ``initial_stock`` units on the shelf (one ``mall.stock_in`` journal) when its
    stock is limited. The same key again returns the first item; with different data it is refused."""
    actor.require(Perm.CATALOG_MANAGE)
    values, stores = _clean_item(actor, data)
    _check_whole("initial_stock", initial_stock, low=0, high=MAX_STOCK_CHANGE, zh="初始库存")
    if initial_stock and not data.stock_limited:
        raise ValidationFailed(
            "mall.stock_unlimited",
            zh="初始库存：不限量的商品没有库存。",
            en="initial_stock: an item with unlimited stock has no stock to set.",
            field="initial_stock",
        )
    key = validate_key(idempotency_key)
    request = {**values, "store_ids": sorted(s.pk for s in stores), "initial_stock": initial_stock}
    with transaction.atomic():
        first = _item_replay(actor, key, request)
        if first is not None:
            return first
        try:
            with transaction.atomic():
                item = MallItem.objects.create(organisation=actor.organisation, create_key=key, **values)
        except IntegrityError:
            first = _item_replay(actor, key, request)
            if first is None:
                raise
            return first
        item.stores.set(stores)
        if initial_stock:
            _post_stock_change(actor, item, initial_stock, idempotency_key=f"mall.item:{item.pk}:stk")
        audit_record(
            actor=actor,
            action="mall.item_create",
            obj=item,
            detail={**_audit_values(values), "stores": request["store_ids"], "initial_stock": initial_stock},
        )
    return item


def mall_item_update(*, actor: Actor, item: MallItem, data: MallItemInput) -> MallItem:
    """Change what an item is, its price, limit, stores or whether it is offered. Its stock is untouched;
    redemptions already made keep the price they were made at."""
    actor.require(Perm.CATALOG_MANAGE)
    values, stores = _clean_item(actor, data)
    with transaction.atomic():
        item = MallItem.objects.select_for_update().get(pk=mall_item_get(actor, item.pk).pk)
        before = {name: getattr(item, name) for name in values}
        before_stores = sorted(item.stores.values_list("pk", flat=True))
        for name, value in values.items():
            setattr(item, name, value)
        item.save()
        item.stores.set(stores)
        after_stores = sorted(s.pk for s in stores)
        changed = {
            name: [_audit_value(before[name]), _audit_value(value)]
            for name, value in values.items()
            if before[name] != value
        }
        if before_stores != after_stores:
            changed["stores"] = [before_stores, after_stores]
        audit_record(actor=actor, action="mall.item_update", obj=item, detail=changed)
    return item


def mall_stock_add(*, actor: Actor, item: MallItem, quantity: int, idempotency_key: str, memo: str = "") -> Journal:
    """Put ``quantity`` units on the shelf (``mall.stock_in``), or take them off with a negative quantity
    (``mall.stock_out``: damaged, counted short). The shelf may not go below 0 (``mall.insufficient_stock``)."""
    actor.require(Perm.CATALOG_MANAGE)
    item = mall_item_get(actor, item.pk)
    if not item.stock_limited:
        raise ValidationFailed(
            "mall.stock_unlimited",
            zh="库存：该商品不限量，没有库存可调整。",
            en="quantity: this item has unlimited stock; there is nothing to adjust.",
            field="quantity",
        )
    _check_whole("quantity", quantity, low=-MAX_STOCK_CHANGE, high=MAX_STOCK_CHANGE, zh="数量")
    if quantity == 0:
        raise ValidationFailed(
            "mall.invalid_quantity", zh="数量：不能为 0。", en="quantity: must not be 0.", field="quantity"
        )
    memo = (memo or "").strip()[:200]
    key = validate_key(idempotency_key)
    with transaction.atomic():
        first = journal_by_idempotency_key(organisation_id=actor.organisation.pk, key=key)
        journal = _post_stock_change(actor, item, quantity, idempotency_key=key, memo=memo)
        if first is None:
            audit_record(
                actor=actor,
                action="mall.stock_add",
                obj=item,
                detail={"quantity": quantity, "memo": memo, "journal": journal.pk},
            )
    return journal


# --- Redemption -----------------------------------------------------------------------------------------------------


def mall_redeem(
    *,
    actor: Actor,
    member: Member,
    item: MallItem,
    quantity: int = 1,
    tender: str = "",
    idempotency_key: str,
) -> MallRedemption:
    """Redeem ``quantity`` of ``item`` for ``member`` in the actor's store (S-07).

    Refused, writing nothing, when: the item is inactive or not offered in this store
    (``mall.item_unavailable``), the points are below the minimum (``mall.below_minimum``), the member's limit
    for the item would be exceeded (``mall.limit_reached``), the shelf holds too few (``mall.out_of_stock``),
    the member has too few points (``points.insufficient``), or a points+cash item comes without a tender.
    Below the approval threshold the redemption is ``completed`` at once; at or above it is ``pending`` with
    the points spent into it and the stock held until a store manager decides.
    """
    actor.require(Perm.CHECKOUT)
    member = member_get(actor, member.pk)
    item = mall_item_get(actor, item.pk)
    store = _current_store(actor)
    _check_whole("quantity", quantity, low=1, high=MAX_QUANTITY, zh="数量")
    tender = (tender or "").strip()
    key = validate_key(idempotency_key)
    request = {"member_id": member.pk, "item_id": item.pk, "store_id": store.pk, "quantity": quantity, "tender": tender}
    cash_fen = item.cash_fen * quantity
    keys = [*points_account_keys(member=member, spend=True)]
    if item.stock_limited:
        keys += [stock_key(item), stock_org_key(item, STOCK_HELD), stock_org_key(item, STOCK_REDEEMED)]
    if cash_fen and tender in Tender.values:
        keys += [
            store_account_key(store=store, kind=f"tender_{tender}"),
            store_account_key(store=store, kind="revenue"),
        ]
    with transaction.atomic():
        locked = accounts_lock(organisation_id=actor.organisation.pk, keys=keys)
        first = _redemption_replay(actor, key, request)
        if first is not None:
            return first
        if member.status != MemberStatus.ACTIVE:
            raise ValidationFailed(
                "mall.member_inactive",
                zh="会员状态不是“正常”，不能兑换。",
                en="The member is not active and cannot redeem.",
                field="member",
            )
        if not item.is_active or not item_offered_in(item, store):
            raise ValidationFailed(
                "mall.item_unavailable",
                zh=f"“{item.name}”目前不在本店兑换。",
                en=f"“{item.name}” cannot be redeemed in this store now.",
                field="item",
            )
        _check_tender(item, tender)
        points = item.points_price * quantity
        rules = mall_rules(actor.organisation.pk)
        if points < rules.min_redeem_points:
            raise ValidationFailed(
                "mall.below_minimum",
                zh=f"兑换积分不能少于 {rules.min_redeem_points}（本次 {points}）。",
                en=f"A redemption needs at least {rules.min_redeem_points} points (this one is {points}).",
                field="quantity",
                extra={"minimum": rules.min_redeem_points, "points": points},
            )
        if item.per_member_limit is not None:
            already = member_redeemed_quantity(member, item)
            if already + quantity > item.per_member_limit:
                raise Conflict(
                    "mall.limit_reached",
                    zh=f"“{item.name}”每人限兑 {item.per_member_limit} 件，该会员已兑 {already} 件。",
                    en=f"“{item.name}” is limited to {item.per_member_limit} per member; she has {already}.",
                    field="quantity",
                    extra={"limit": item.per_member_limit, "already": already},
                )
        if item.stock_limited:
            on_shelf = locked.balance(locked.get(stock_key(item)))
            if quantity > on_shelf:
                raise Conflict(
                    "mall.out_of_stock",
                    zh=f"“{item.name}”库存不足：剩 {on_shelf} 件，需要 {quantity} 件。",
                    en=f"Not enough “{item.name}” in stock: {on_shelf} left, {quantity} wanted.",
                    field="quantity",
                    extra={"stock": on_shelf, "quantity": quantity},
                )
        status = RedemptionStatus.PENDING if rules.needs_approval(points) else RedemptionStatus.COMPLETED
        try:
            with transaction.atomic():
                redemption = MallRedemption.objects.create(
                    organisation=actor.organisation,
                    store=store,
                    member=member,
                    item=item,
                    item_name=item.name,
                    quantity=quantity,
                    points=points,
                    cash_fen=cash_fen,
                    tender=tender if cash_fen else "",
                    status=status,
                    idempotency_key=key,
                    requested_by=actor.staff,
                )
        except IntegrityError:
            first = _redemption_replay(actor, key, request)
            if first is None:
                raise
            return first
        ref = str(redemption.pk)
        spending = points_spend_prepare(
            actor=actor,
            member=member,
            points=points,
            locked=locked,
            reference_type=REFERENCE,
            reference_id=ref,
            idempotency_key=f"mall.redeem:{ref}:pts",
            code="mall.redeem",
        )
        postings = [spending.posting]
        if item.stock_limited:
            to = STOCK_HELD if status == RedemptionStatus.PENDING else STOCK_REDEEMED
            postings.append(
                _posting(
                    actor,
                    code="mall.stock_hold" if status == RedemptionStatus.PENDING else "mall.stock_redeem",
                    legs=[
                        Leg(locked.get(stock_key(item)), -quantity),
                        Leg(locked.get(stock_org_key(item, to)), quantity),
                    ],
                    reference=(REFERENCE, ref),
                    key=f"mall.redeem:{ref}:stk",
                )
            )
        if cash_fen:
            postings.append(
                _posting(
                    actor,
                    code="mall.cash",
                    legs=[
                        Leg(locked.get(store_account_key(store=store, kind=f"tender_{tender}")), -cash_fen),
                        Leg(locked.get(store_account_key(store=store, kind="revenue")), cash_fen),
                    ],
                    reference=(REFERENCE, ref),
                    key=f"mall.redeem:{ref}:cny",
                    memo=tender,
                )
            )
        journals = journals_post(
            organisation_id=actor.organisation.pk, postings=postings, locked=locked, keys_claimed=True
        )
        spending.take_from_lots(journals[0])
        redemption.points_journal = journals[0]
        redemption.stock_journal = journals[1] if item.stock_limited else None
        redemption.cash_journal = journals[-1] if cash_fen else None
        redemption.save(update_fields=["points_journal", "stock_journal", "cash_journal"])
        audit_record(
            actor=actor,
            action="mall.redeem",
            obj=redemption,
            detail={
                "member": member.member_no,
                "item": item.pk,
                "item_name": item.name,
                "quantity": quantity,
                "points": points,
                "cash": Money(cash_fen).as_decimal_string(),
                "tender": redemption.tender,
                "status": status,
            },
        )
    return redemption


def mall_redemption_approve(*, actor: Actor, redemption: MallRedemption, note: str = "") -> MallRedemption:
    """A store manager completes a pending redemption: the held stock is handed out (``mall.stock_release``).

    Whoever asked for it may not approve it (``mall.self_approval``). Approving it again returns it unchanged;
    a rejected or never-pending redemption is ``mall.already_decided`` / ``mall.not_pending``.
    """
    actor.require(Perm.MALL_APPROVE)
    note = _clean_note(note, required=False)
    with transaction.atomic():
        redemption = _lock_redemption(actor, redemption.pk)
        if redemption.status == RedemptionStatus.COMPLETED and redemption.decided_at is not None:
            return redemption
        _check_pending(redemption)
        if actor.staff is not None and redemption.requested_by_id == actor.staff.pk:
            raise PermissionDenied(
                "mall.self_approval",
                zh="不能审批自己提交的兑换，请由另一位店长审批。",
                en="You cannot approve a redemption you asked for; another manager must approve it.",
            )
        if redemption.stock_journal_id is not None:
            item = redemption.item
            locked = accounts_lock(
                organisation_id=actor.organisation.pk,
                keys=[stock_org_key(item, STOCK_HELD), stock_org_key(item, STOCK_REDEEMED)],
            )
            journals_post(
                organisation_id=actor.organisation.pk,
                postings=[
                    _posting(
                        actor,
                        code="mall.stock_release",
                        legs=[
                            Leg(locked.get(stock_org_key(item, STOCK_HELD)), -redemption.quantity),
                            Leg(locked.get(stock_org_key(item, STOCK_REDEEMED)), redemption.quantity),
                        ],
                        reference=(REFERENCE, str(redemption.pk)),
                        key=f"mall.redemption:{redemption.pk}:approve:stk",
                        store_id=redemption.store_id,
                    )
                ],
                locked=locked,
            )
        _decide(actor, redemption, RedemptionStatus.COMPLETED, note)
        audit_record(
            actor=actor,
            action="mall.approve",
            obj=redemption,
            detail={"member": redemption.member.member_no, "points": redemption.points, "note": note},
        )
    return redemption


def mall_redemption_reject(*, actor: Actor, redemption: MallRedemption, reason: str) -> MallRedemption:
    """A store manager rejects a pending redemption: the points return in full to the lots they came from
    (``points_restore``), the held stock goes back on the shelf and any cash part back to its tender.
    Rejecting it again returns it unchanged."""
    actor.require(Perm.MALL_APPROVE)
    reason = _clean_note(reason, required=True)
    with transaction.atomic():
        redemption = _lock_redemption(actor, redemption.pk)
        if redemption.status == RedemptionStatus.REJECTED:
            return redemption
        _check_pending(redemption)
        if redemption.points_journal is None:  # pragma: no cover - set in the transaction that created it
            raise ApplicationError("mall.corrupt", zh="兑换记录不完整。", en="The redemption record is incomplete.")
        item = redemption.item
        ref = str(redemption.pk)
        keys = _journal_account_keys(redemption.points_journal)
        keys += points_account_keys(member=member_survivor(redemption.member), spend=True)
        if redemption.stock_journal_id is not None:
            keys += [stock_key(item), stock_org_key(item, STOCK_HELD)]
        if redemption.cash_journal is not None:
            keys += _journal_account_keys(redemption.cash_journal)
        # Every row this rejection touches, locked at once in the ledger's order (points_restore and the
        # reversal lock some of them again, which is a no-op once they are held).
        locked = accounts_lock(organisation_id=actor.organisation.pk, keys=keys)
        points_restore(
            actor=actor, spend_journal=redemption.points_journal, idempotency_key=f"mall.redemption:{ref}:reject:pts"
        )
        if redemption.stock_journal_id is not None:
            journals_post(
                organisation_id=actor.organisation.pk,
                postings=[
                    _posting(
                        actor,
                        code="mall.stock_return",
                        legs=[
                            Leg(locked.get(stock_org_key(item, STOCK_HELD)), -redemption.quantity),
                            Leg(locked.get(stock_key(item)), redemption.quantity),
                        ],
                        reference=(REFERENCE, ref),
                        key=f"mall.redemption:{ref}:reject:stk",
                        store_id=redemption.store_id,
                    )
                ],
                locked=locked,
            )
        if redemption.cash_journal is not None:
            journal_reverse(
                journal=redemption.cash_journal,
                staff_id=actor.staff.pk if actor.staff is not None else None,
                idempotency_key=f"mall.redemption:{ref}:reject:cny",
            )
        _decide(actor, redemption, RedemptionStatus.REJECTED, reason)
        audit_record(
            actor=actor,
            action="mall.reject",
            obj=redemption,
            detail={
                "member": redemption.member.member_no,
                "points": redemption.points,
                "cash": Money(redemption.cash_fen).as_decimal_string(),
                "reason": reason,
            },
        )
    return redemption


# --- Member merge, export -----------------------------------------------------------------------------------------


def mall_merge(actor: Actor, survivor: Member, merged: Member) -> dict[str, Any]:
    """``members.services.MERGE_HOOKS`` entry: the merged member's redemptions become the survivor's, so her
    history and per-member limits follow (the points themselves move with loyalty's ``points_merge``)."""
    return {"mall_redemptions": MallRedemption.objects.filter(member=merged).update(member=survivor)}


def mall_export_section(member: Member) -> tuple[str, Any]:
    """``members.services.EXPORT_SECTIONS`` entry: every points-mall redemption of the member."""
    return (
        "mall_redemptions",
        [
            {
                "at": r.created_at.isoformat(),
                "store": r.store.name,
                "item": r.item_name,
                "quantity": r.quantity,
                "points": r.points,
                "cash": Money(r.cash_fen).as_decimal_string(),
                "tender": r.tender,
                "status": r.status,
                "decided_at": r.decided_at.isoformat() if r.decided_at else None,
                "decision_note": r.decision_note,
            }
            for r in member_redemptions(member)
        ],
    )


# --- internals ------------------------------------------------------------------------------------------------------


def _current_store(actor: Actor) -> Store:
    store = actor.store
    if store is None or store.organisation_id != actor.organisation.pk:
        raise ValidationFailed(
            "mall.store_required",
            zh="请先选择当前门店再兑换。",
            en="Choose the current store before redeeming.",
            field="store",
        )
    return store


def _check_tender(item: MallItem, tender: str) -> None:
    if item.cash_fen:
        if tender not in Tender.values:
            raise ValidationFailed(
                "mall.tender_required",
                zh=f"支付方式：该商品需另付现金 {Money(item.cash_fen)}/件，请选择现金、银行卡、微信或支付宝。",
                en=f"tender: this item also costs {Money(item.cash_fen)} each; choose cash, card, wechat or alipay.",
                field="tender",
                extra={"choices": list(Tender.values)},
            )
    elif tender:
        raise ValidationFailed(
            "mall.tender_not_needed",
            zh="支付方式：该商品只需积分，不收现金。",
            en="tender: this item costs points only; no payment is taken.",
            field="tender",
        )


def _redemption_replay(actor: Actor, key: str, request: dict[str, Any]) -> MallRedemption | None:
    first = MallRedemption.objects.filter(organisation=actor.organisation, idempotency_key=key).first()
    if first is None:
        return None
    recorded = {
        "member_id": first.member_id,
        "item_id": first.item_id,
        "store_id": first.store_id,
        "quantity": first.quantity,
        "tender": first.tender,
    }
    if recorded != request:
        raise conflict_error(key)
    return first


def _item_replay(actor: Actor, key: str, request: dict[str, Any]) -> MallItem | None:
    first = MallItem.objects.filter(organisation=actor.organisation, create_key=key).first()
    if first is None:
        return None
    recorded = {
        name: getattr(first, name)
        for name in ("kind", "name", "points_price", "cash_fen", "catalog_item_id", "stock_limited", "per_member_limit")
    }
    recorded["is_active"] = first.is_active
    recorded["store_ids"] = sorted(first.stores.values_list("pk", flat=True))
    stock_journal = journal_by_idempotency_key(organisation_id=actor.organisation.pk, key=f"mall.item:{first.pk}:stk")
    recorded["initial_stock"] = (
        sum(e.amount for e in journal_entries(stock_journal) if e.account.owner_type != "organisation")
        if stock_journal is not None
        else 0
    )
    if recorded != request:
        raise conflict_error(key)
    return first


def _clean_item(actor: Actor, data: MallItemInput) -> tuple[dict[str, Any], list[Store]]:
    if data.kind not in MallItemKind.values:
        raise ValidationFailed(
            "mall.invalid_kind",
            zh=f"类型：{data.kind!r} 不是有效选项。",
            en=f"kind: {data.kind!r} is not a valid choice.",
            field="kind",
        )
    name = (data.name or "").strip()
    if not name or len(name) > 80:
        raise ValidationFailed(
            "input.invalid", zh="名称：需要 1 到 80 个字符。", en="name: must be 1 to 80 characters.", field="name"
        )
    _check_whole("points_price", data.points_price, low=1, high=MAX_POINTS_PRICE, zh="所需积分")
    _check_whole("cash_fen", data.cash_fen, low=0, high=MAX_CASH_FEN, zh="现金部分")
    if data.kind == MallItemKind.POINTS_CASH and data.cash_fen <= 0:
        raise ValidationFailed(
            "mall.cash_required",
            zh="现金部分：积分+现金商品需要填写大于 0 的现金金额。",
            en="cash: a points + cash item needs a cash part above 0.",
            field="cash_fen",
        )
    if data.kind != MallItemKind.POINTS_CASH and data.cash_fen:
        raise ValidationFailed(
            "mall.cash_not_allowed",
            zh="现金部分：只有“积分+现金”类型的商品可以收现金。",
            en="cash: only a points + cash item has a cash part.",
            field="cash_fen",
        )
    if data.per_member_limit is not None:
        _check_whole("per_member_limit", data.per_member_limit, low=1, high=MAX_QUANTITY, zh="每人限兑")
    catalog_item_id = None
    if data.catalog_item_id is not None:
        try:
            catalog_item_id = item_get(actor, data.catalog_item_id).pk
        except NotFound:
            raise ValidationFailed(
                "mall.invalid_catalog_item",
                zh="关联项目：找不到该项目或产品。",
                en="catalog_item_id: no such catalogue item.",
                field="catalog_item_id",
            ) from None
    wanted = sorted(set(data.store_ids))
    stores = list(stores_visible(actor).filter(pk__in=wanted).order_by("pk"))
    if len(stores) != len(wanted):
        raise ValidationFailed(
            "mall.invalid_store",
            zh="可兑换门店：包含找不到或无权管理的门店。",
            en="store_ids: contains a store that does not exist or is not yours.",
            field="store_ids",
        )
    values = {
        "kind": data.kind,
        "name": name,
        "points_price": data.points_price,
        "cash_fen": data.cash_fen,
        "catalog_item_id": catalog_item_id,
        "stock_limited": bool(data.stock_limited),
        "per_member_limit": data.per_member_limit,
        "is_active": bool(data.is_active),
    }
    return values, stores


def _audit_value(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, str)) else str(value)


def _audit_values(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _audit_value(value) for name, value in values.items()}


def _post_stock_change(actor: Actor, item: MallItem, quantity: int, *, idempotency_key: str, memo: str = "") -> Journal:
    """One ``mall.stock_in`` / ``mall.stock_out`` journal; a replay (same key, same change) returns the first."""
    source, shelf = stock_org_key(item, STOCK_SOURCE), stock_key(item)
    locked = accounts_lock(organisation_id=item.organisation_id, keys=[source, shelf])
    on_shelf = locked.balance(locked.get(shelf))
    replay = journal_by_idempotency_key(organisation_id=item.organisation_id, key=idempotency_key)
    if quantity < 0 and on_shelf + quantity < 0 and replay is None:
        raise Conflict(
            "mall.insufficient_stock",
            zh=f"库存：只剩 {on_shelf} 件，不能减少 {-quantity} 件。",
            en=f"quantity: only {on_shelf} in stock; cannot take off {-quantity}.",
            field="quantity",
            extra={"stock": on_shelf},
        )
    (journal,) = journals_post(
        organisation_id=item.organisation_id,
        postings=[
            _posting(
                actor,
                code="mall.stock_in" if quantity > 0 else "mall.stock_out",
                legs=[Leg(locked.get(source), -quantity), Leg(locked.get(shelf), quantity)],
                reference=(ITEM_REFERENCE, str(item.pk)),
                key=idempotency_key,
                memo=memo,
            )
        ],
        locked=locked,
    )
    return journal


def _posting(
    actor: Actor,
    *,
    code: str,
    legs: list[Leg],
    reference: tuple[str, str],
    key: str,
    memo: str = "",
    store_id: int | None = None,
) -> Posting:
    return Posting(
        code=code,
        entries=legs,
        reference_type=reference[0],
        reference_id=reference[1],
        staff_id=actor.staff.pk if actor.staff is not None else None,
        store_id=store_id if store_id is not None else (actor.store.pk if actor.store is not None else None),
        idempotency_key=key,
        memo=memo,
    )


def _journal_account_keys(journal: Journal) -> list[AccountKey]:
    return [
        AccountKey(e.account.owner_type, e.account.owner_id, e.account.asset, e.account.kind, e.account.may_go_negative)
        for e in journal_entries(journal)
    ]


def _lock_redemption(actor: Actor, redemption_id: int) -> MallRedemption:
    """The redemption, if it is in a store the actor may see, locked until the end of the transaction."""
    visible = redemptions_visible(actor).filter(pk=redemption_id).values_list("pk", flat=True)
    found = (
        MallRedemption.objects.select_for_update(of=("self",))
        .select_related("item", "member", "points_journal", "cash_journal")
        .filter(pk__in=list(visible))
        .first()
    )
    if found is None:
        raise NotFound(
            "mall.redemption_not_found",
            zh="找不到兑换记录，或您无权查看。",
            en="Redemption not found, or not visible to you.",
        )
    return found


def _check_pending(redemption: MallRedemption) -> None:
    if redemption.status == RedemptionStatus.PENDING:
        return
    if redemption.decided_at is not None:
        raise Conflict(
            "mall.already_decided",
            zh=f"兑换 #{redemption.pk} 已经处理过（{redemption.get_status_display()}）。",
            en=f"Redemption #{redemption.pk} has already been decided ({redemption.status}).",
        )
    raise Conflict(
        "mall.not_pending",
        zh=f"兑换 #{redemption.pk} 不需要审批。",
        en=f"Redemption #{redemption.pk} does not wait for approval.",
    )


def _decide(actor: Actor, redemption: MallRedemption, status: str, note: str) -> None:
    redemption.status = status
    redemption.decided_by = actor.staff
    redemption.decided_at = timezone.now()
    redemption.decision_note = note
    redemption.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])


def _clean_note(note: str, *, required: bool) -> str:
    note = (note or "").strip()
    if required and not note:
        raise ValidationFailed(
            "input.required", zh="驳回原因：必填。", en="reason: this field is required.", field="reason"
        )
    if len(note) > 200:
        raise ValidationFailed(
            "input.too_long", zh="说明：最多 200 个字符。", en="note: at most 200 characters.", field="reason"
        )
    return note


def _check_whole(field: str, value: Any, *, low: int, high: int, zh: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(
            "mall.invalid_number",
            zh=f"{zh}：需要 {low} 到 {high} 之间的整数。",
            en=f"{field}: must be a whole number from {low} to {high}.",
            field=field,
        )
