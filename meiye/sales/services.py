"""Checkout and refunds: the only code that writes bills, and the one place a sale moves money.

Every service is keyword-only with ``actor`` first and runs in ONE transaction; a refused call has
written nothing. Completing a bill posts, in that transaction (ADR 0003):

- one CNY journal ``sales.bill``: each external tender's store account −amount, the wallet's
  principal and bonus −(their split), the store's ``points_offset`` −(value of the points), and the
  store's ``revenue`` +payable — it nets to zero;
- a PTS journal for the points offset (as ``loyalty.points_spend``);
- the points earned (as ``loyalty.points_earn``) on the earning money only — cash, card, WeChat, Alipay
  and stored-value principal — allocated over the lines by the largest remainder, one floor per line;
- the growth value (as ``loyalty.growth_add``) of the same earning money.

They are written together by one ``ledger.services.journals_post`` over balance rows locked once
(``accounts_lock``), with the loyalty and wallet apps' ``*_prepare`` / ``*_locked`` building blocks doing
their checks and arithmetic: the same journals, entries, lots and errors as the one-by-one services.

Refunding (``bill_refund``) reverses exactly what the bill did for the part refunded: one CNY journal
``sales.refund`` (the bill's journal reversed line for line when the whole bill is refunded at once to
the original tenders; otherwise the mirrored legs of the refunded share), the offset points back, the
earned points and the growth taken back (see ``_refund_points`` for partial refunds).

Idempotency: a completion claims its key on the ``Bill`` row (``bill_checkout`` when it inserts the
bill), a refund on the ``Refund`` row, inside the same transaction, so a replay returns the first
result and writes nothing and the same key with another request is ``idempotency.key_reused``.
The ledger journals carry keys derived from the operation's key (``<key>:cny`` …, ADR 0003).

Locks are taken in one order by every sales operation, so two of them cannot deadlock: the bill (a
refund) or the store's bill sequence (a new bill), then every balance row the operation posts to — the
store's accounts, the member's wallet, points and growth, the organisation's points and growth accounts —
in ONE statement, in primary-key order (the ledger's order, as ``journal_post`` and ``wallet_recharge``
lock); the services called afterwards only meet rows already held. Points lots come after the balances.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings as django_settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.catalog.models import Item, StorePrice
from meiye.catalog.selectors import catalog_version_subquery, store_prices
from meiye.core.db.cursors import hot_cursor
from meiye.core.db.fastwrite import insert_rows, insert_rows_or_skip, update_assignments, update_row
from meiye.core.db.pipeline import pipelined, settle
from meiye.core.db.prepared import PreparedQuery
from meiye.core.errors import ApplicationError, Conflict, NotFound, ValidationFailed, not_found
from meiye.core.idempotency import canonical_hash, conflict_error, validate_key
from meiye.core.money import Money, allocate_int
from meiye.giftcards.models import GiftCard
from meiye.giftcards.selectors import gift_card_account_key
from meiye.giftcards.services import gift_card_after_refund, gift_card_after_use
from meiye.ledger.models import Account, Journal
from meiye.ledger.services import AccountKey, Leg, Posting, accounts_lock, journal_post, journal_reverse, journals_post
from meiye.loyalty.models import PointsLot
from meiye.loyalty.rules import (
    referral_reversal_account_keys,
    rewards_after_bill,
    rewards_reverse_for_bill,
    rules_view_known,
)
from meiye.loyalty.selectors import (
    earning_rate_subquery,
    earning_rates,
    growth_seen_annotations,
    growth_window_bounds,
    held_tier_subquery,
    points_lifetime_months,
    points_lifetime_or_default,
    points_lifetime_subquery,
    rules_version_subquery,
    tiers_version_subquery,
)
from meiye.loyalty.services import (
    growth_account_keys,
    growth_add,
    growth_add_prepare,
    growth_version_locked,
    points_account_keys,
    points_earn,
    points_earn_prepare,
    points_restore,
    points_restore_part,
    points_spend_prepare,
    points_take_back,
)
from meiye.loyalty.tiers import GrowthSeen, member_tier_info, tier_after_bill, tier_view_known
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_get, merge_chain
from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.org.roles import Perm
from meiye.org.selectors import first_in_scope, store_get, store_pk, stores_visible, stores_visible_by_ids
from meiye.packages.services import package_sessions_return_for_bill, packages_issue_for_bill
from meiye.promotions.models import Coupon
from meiye.promotions.offers import OfferLine, evaluate
from meiye.promotions.selectors import (
    promotions_live_cached,
    promotions_live_with_policy,
    promotions_version_subquery,
)
from meiye.promotions.services import coupons_lock_for_bill, coupons_mark_used, coupons_return_for_bill
from meiye.sales.models import (
    EXTERNAL_TENDERS,
    Bill,
    BillLine,
    BillSequence,
    BillStatus,
    Refund,
    RefundDestination,
    RefundLine,
    RefundTender,
    SalesSettings,
    Tender,
    TenderKind,
)
from meiye.sales.notices import bill_notify_member
from meiye.sales.prepaid import (
    PACKAGE_LINE_KIND,
    PackageTenderValue,
    authorize_stored_value,
    check_package_buyer,
    check_prepaid_refundable,
    gift_card_check,
    gift_card_code_index,
    gift_cards_for_tenders,
    needs_stored_value_auth,
    package_lines,
    package_sessions_use,
    package_tender_values,
)
from meiye.sales.pricing import (
    EarningContext,
    LineDraft,
    LineEarning,
    PricingContext,
    allocate_earning,
    earn_line,
    points_offset_cap_fen,
    points_offset_value_fen,
    price_line,
    prorate_cumulative,
)
from meiye.wallet.selectors import spend_order_or_default, spend_order_subquery, wallet_spend_order
from meiye.wallet.services import (
    store_account_key,
    wallet_account_keys,
    wallet_refund_legs,
    wallet_split_locked,
)

# Every journal of a bill, its refunds included, references the bill, so the ledger tells its whole story
# (``ledger.selectors.journals_for_reference``).
BILL_REFERENCE = "sales.Bill"
MAX_QUANTITY = 9_999
MAX_LINES = 200
# Room for the suffix of derived journal keys ("<key>:pts-spend") inside the ledger's 128 characters.
_DERIVED_KEY_BASE_MAX = 100


# --- inputs --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    """One line of a one-shot checkout. Ids, so an API can pass what it received; the service resolves
    and scopes them (items of the organisation, staff of the organisation)."""

    item_id: int
    quantity: int = 1
    performed_by_id: int | None = None
    sold_by_id: int | None = None
    unit_price: Money | None = None  # a manual unit price (S-20)
    approver_id: int | None = None
    approval_pin: str = ""

    def payload(self) -> dict[str, Any]:
        # The PIN is never part of the request hash (a hash of a short PIN is easy to reverse).
        return {
            "item": self.item_id,
            "quantity": self.quantity,
            "performed_by": self.performed_by_id,
            "sold_by": self.sold_by_id,
            "unit_price_fen": self.unit_price.fen if self.unit_price is not None else None,
            "approver": self.approver_id,
        }


@dataclass(frozen=True)
class TenderInput:
    """One way of paying. ``amount`` for money tenders; for ``points`` the number of ``points`` instead
    (their value is points × 100 / points-per-元 fen). ``received`` is the cash handed over."""

    kind: str
    amount: Money | None = None
    points: int | None = None
    external_ref: str = ""
    received: Money | None = None
    # Stored value (S-17): the member's payment password or a one-time code, and the card shown, if any.
    payment_password: str = field(default="", repr=False)
    payment_code: str = field(default="", repr=False)
    card_number: str = ""
    # Count-card sessions: the member's package item and how many sessions (the amount follows from the bill).
    package_item_id: int | None = None
    sessions: int | None = None
    # A gift card: its code (the amount is ``amount``).
    gift_card_code: str = field(default="", repr=False)

    def payload(self) -> dict[str, Any]:
        # The password and the code are never part of the request hash (a hash of 6 digits is easy to reverse);
        # the prepaid fields only when given, so the hashes of earlier requests are unchanged.
        payload: dict[str, Any] = {
            "kind": self.kind,
            "amount_fen": self.amount.fen if self.amount is not None else None,
            "points": self.points,
            "external_ref": self.external_ref,
            "received_fen": self.received.fen if self.received is not None else None,
        }
        if self.card_number:
            payload["card_number"] = self.card_number
        if self.package_item_id is not None or self.sessions is not None:
            payload["package_item"] = self.package_item_id
            payload["sessions"] = self.sessions
        if self.gift_card_code:
            # The card's keyed index: the same card however the code was typed, and never the code itself.
            payload["gift_card"] = gift_card_code_index(self.gift_card_code)
        return payload


class Clear(Enum):
    """``CLEAR`` takes a value off a line in ``bill_line_update``, where ``None`` leaves it as it is."""

    CLEAR = "clear"


CLEAR = Clear.CLEAR


# --- opening and building a bill --------------------------------------------------------------------------


def bill_open(*, actor: Actor, member: Member | None = None) -> Bill:
    """Open a bill in the actor's current store, for a member or a walk-in customer (``member=None``)."""
    actor.require(Perm.CHECKOUT)
    with transaction.atomic():
        store = _checkout_store(actor)
        member = _checkout_member(actor, member)
        bill = _insert_bill(actor, store, member, key=None, request_hash="", numbered=False)
        bill.number = _next_number(store)  # the sequence is every transaction's last lock (see _insert_bill)
        update_row(bill, ["number"])
        return bill


def bill_add_line(
    *,
    actor: Actor,
    bill: Bill,
    item: Item,
    quantity: int = 1,
    performed_by: Staff | None = None,
    sold_by: Staff | None = None,
    unit_price: Money | None = None,
    approver: Staff | None = None,
    approval_pin: str = "",
) -> BillLine:
    """Add an item to an open bill, priced by the pricing pipeline; ``unit_price`` sets a manual price."""
    actor.require(Perm.CHECKOUT)
    with transaction.atomic():
        locked = _lock_open_bill(actor, bill)
        ctx = _pricing_context(actor, locked.store, locked.member, locked.member_snapshot, [item])
        line = _build_line(
            ctx,
            item,
            quantity=quantity,
            performed_by=performed_by,
            sold_by=sold_by,
            unit_price=unit_price,
            approver=approver,
            approval_pin=approval_pin,
        )
        line.bill = locked
        line.save()
        _audit_manual_price(actor, locked, [line])
        _recompute_totals(locked)
    return line


def bill_remove_line(*, actor: Actor, bill: Bill, line: BillLine) -> Bill:
    """Take a line off an open bill."""
    actor.require(Perm.CHECKOUT)
    with transaction.atomic():
        locked = _lock_open_bill(actor, bill)
        deleted, _ = BillLine.objects.filter(pk=line.pk, bill=locked).delete()
        if not deleted:
            raise not_found("sales.line_not_found", "消费单明细", "Bill line")
        _recompute_totals(locked)
    return locked


def bill_line_update(
    *,
    actor: Actor,
    bill: Bill,
    line: BillLine,
    quantity: int | None = None,
    unit_price: Money | Clear | None = None,
    performed_by: Staff | Clear | None = None,
    sold_by: Staff | Clear | None = None,
    approver: Staff | None = None,
    approval_pin: str = "",
) -> BillLine:
    """Change a line of an open bill in place: it keeps its id and its place on the bill.

    ``None`` leaves a value as it is; ``CLEAR`` takes the performer, the seller or the manual price off. The
    line is priced again by the pipeline (the store's price and the member's tier as the bill knows them)
    with its manual price, if any, applied last. A manual price that a manager approved stays approved —
    no PIN again — as long as it is not set lower than the approved price (a new quantity, other staff, a
    higher price); lower needs a fresh approval (``pricing.approval_required``), as does naming another
    approver. Audited as ``sales.line_update`` (before and after), plus ``sales.price_override`` when the
    manual price or its approval changes.
    """
    actor.require(Perm.CHECKOUT)
    with transaction.atomic():
        locked = _lock_open_bill(actor, bill)
        current = (
            BillLine.objects.select_related("item__category", "performed_by", "sold_by", "approved_by")
            .filter(pk=line.pk, bill=locked)
            .first()
        )
        if current is None:
            raise not_found("sales.line_not_found", "消费单明细", "Bill line")
        before = _line_state(current)
        manual_fen = before["manual_price_fen"]
        if isinstance(unit_price, Clear):
            requested: Money | None = None
        elif unit_price is None:
            requested = Money(manual_fen) if manual_fen is not None else None
        else:
            requested = unit_price
        item = current.item
        ctx = _pricing_context(actor, locked.store, locked.member, locked.member_snapshot, [item])
        priced = _build_line(
            ctx,
            item,
            quantity=current.quantity if quantity is None else quantity,
            performed_by=_kept_or_new(performed_by, current.performed_by),
            sold_by=_kept_or_new(sold_by, current.sold_by),
            unit_price=requested,
            approver=approver,
            approval_pin=approval_pin,
            approved_earlier=(
                (current.approved_by, manual_fen)
                if current.approved_by is not None and manual_fen is not None
                else None
            ),
        )
        for name in _LINE_PRICED_FIELDS:
            setattr(current, name, getattr(priced, name))
        current.save(update_fields=list(_LINE_PRICED_FIELDS))
        after = _line_state(current)
        audit_record(
            actor=actor,
            action="sales.line_update",
            obj=locked,
            detail={"line": current.pk, "item": item.pk, "before": before, "after": after},
        )
        if after["manual_price_fen"] is not None and (
            after["manual_price_fen"] != manual_fen or after["approved_by"] != before["approved_by"]
        ):
            _audit_manual_price(actor, locked, [current])
        _recompute_totals(locked)
    return current


# What pricing decides on a line; ``bill_line_update`` writes these and nothing else.
_LINE_PRICED_FIELDS = (
    "kind",
    "name",
    "quantity",
    "list_price_fen",
    "unit_price_fen",
    "line_total_fen",
    "price_steps",
    "earning_category",
    "commission_category",
    "performed_by",
    "sold_by",
    "approved_by",
)


def _kept_or_new(value: Staff | Clear | None, current: Staff | None) -> Staff | None:
    if isinstance(value, Clear):
        return None
    return current if value is None else value


def _manual_price_fen(line: BillLine) -> int | None:
    manual = next((s for s in line.price_steps if s.get("step") == "manual_adjustment"), None)
    return int(manual["unit_price_fen"]) if manual is not None else None


def _line_state(line: BillLine) -> dict[str, Any]:
    """What the audit row of a line change records, before and after."""
    return {
        "quantity": line.quantity,
        "unit_price_fen": line.unit_price_fen,
        "line_total_fen": line.line_total_fen,
        "manual_price_fen": _manual_price_fen(line),
        "performed_by": line.performed_by_id,
        "sold_by": line.sold_by_id,
        "approved_by": line.approved_by_id,
    }


def bill_void(*, actor: Actor, bill: Bill, reason: str = "") -> Bill:
    """Void an open bill (nothing was paid). A completed bill is refunded instead."""
    actor.require(Perm.CHECKOUT)
    with transaction.atomic():
        locked = _lock_open_bill(actor, bill)
        locked.status = BillStatus.VOIDED
        locked.voided_at = timezone.now()
        locked.void_reason = reason.strip()[:200]
        locked.save(update_fields=["status", "voided_at", "void_reason"])
        audit_record(actor=actor, action="sales.bill_void", obj=locked, detail={"reason": locked.void_reason})
    return locked


# --- completing -----------------------------------------------------------------------------------------


def bill_complete(
    *,
    actor: Actor,
    bill: Bill,
    tenders: Sequence[TenderInput],
    idempotency_key: str,
    coupon_ids: Sequence[int] = (),
) -> Bill:
    """Take payment and post everything (see the module docstring). Idempotent per key: the same key and
    tenders return the completed bill and post nothing; the same key with another request is refused."""
    actor.require(Perm.CHECKOUT)
    key = _check_key(idempotency_key)
    request: dict[str, Any] = {"op": "sales.bill_complete", "bill": bill.pk, "tenders": [t.payload() for t in tenders]}
    if coupon_ids:
        request["coupons"] = list(coupon_ids)
    request_hash = canonical_hash(request)
    replay = _bill_replay(actor, key, request_hash)
    if replay is not None:
        return replay
    if needs_stored_value_auth(tenders) and bill.member_id is not None:
        authorize_stored_value(actor=actor, member=bill.member, tenders=tenders)
    try:
        with transaction.atomic():
            locked = _lock_bill(actor, bill)
            # A twin request may have completed this bill while we waited for the lock.
            replay = _bill_replay(actor, key, request_hash)
            if replay is not None:
                return replay
            _require_open(locked)
            _lock_live_member(locked)
            # Claim the key first: a concurrent twin waits here on the unique index, then replays.
            Bill.objects.filter(pk=locked.pk).update(idempotency_key=key, request_hash=request_hash)
            locked.idempotency_key, locked.request_hash = key, request_hash
            lines = list(locked.lines.select_related("item").order_by("pk"))
            config = _CheckoutConfig(settings=sales_settings_for(locked.store))
            config.coupons = _apply_offers(actor, locked.store, locked.member, lines, coupon_ids)
            _apply_totals(locked, lines)  # the offers may have changed the lines; _complete saves them
            _complete(actor, locked, lines, tenders, key, config)
    except IntegrityError:
        replay = _bill_replay(actor, key, request_hash)
        if replay is None:
            _explain_key_clash(actor, key)
            raise
        return replay
    return locked


def bill_checkout(
    *,
    actor: Actor,
    member: Member | None = None,
    lines: Sequence[LineInput],
    tenders: Sequence[TenderInput],
    idempotency_key: str,
    coupon_ids: Sequence[int] = (),
    key_unused: bool = False,
    savepoint: bool = True,
) -> Bill:
    """Open, price and complete a bill in ONE transaction (the API's and the benchmark's checkout).
    ``coupon_ids``: the member's coupons the cashier applies (S-05).

    ``savepoint=False``: inside a caller's transaction that rolls back whole when this raises (the API's
    idempotency layer), the checkout takes no savepoint of its own (two statements fewer). A key some bill
    already holds is found without one (the bill's INSERT skips the clash and the bill is replayed or refused),
    and so is a journal key used by anything else (``ledger.idempotency_conflict``, see ``journals_post``).

    ``key_unused``: the caller answers a repeat of the key itself (the API's idempotency record, which commits
    with the bill, and is looked up after any failure), so the replay check before the work is skipped; a bill
    holding the key anyway (another channel used it, or the record was purged after its 30 days) is still
    found when its insert clashes on the key, or when a check before the insert refuses (the refusal may come
    from that bill's own effects: its coupon used, its member stopped since). Not when a tender carries a
    payment password or code: a replay must answer before they are checked again (a one-time code is spent; a
    wrong password would count)."""
    actor.require(Perm.CHECKOUT)
    key = _check_key(idempotency_key)
    request: dict[str, Any] = {
        "op": "sales.bill_checkout",
        "store": actor.store.pk if actor.store is not None else None,
        "member": member.pk if member is not None else None,
        "lines": [line.payload() for line in lines],
        "tenders": [t.payload() for t in tenders],
    }
    if coupon_ids:
        request["coupons"] = list(coupon_ids)
    request_hash = canonical_hash(request)
    secrets = any(t.payment_password or t.payment_code for t in tenders)
    replay = None if key_unused and not secrets else _bill_replay(actor, key, request_hash)
    if replay is not None:
        return replay
    if not lines:
        raise ValidationFailed(
            "sales.no_lines", zh="消费单至少需要一项。", en="A bill needs at least one line.", field="lines"
        )
    if len(lines) > MAX_LINES:
        raise ValidationFailed(
            "sales.too_many_lines",
            zh=f"一张消费单最多 {MAX_LINES} 项。",
            en=f"A bill has at most {MAX_LINES} lines.",
            field="lines",
        )
    replay_skipped = key_unused and not secrets
    authorized = None
    try:
        if member is not None and needs_stored_value_auth(tenders):
            authorized = authorize_stored_value(actor=actor, member=member, tenders=tenders)
    except ApplicationError as refusal:
        return _refused_unless_replayed(actor, key, request_hash, refusal, replay_skipped=replay_skipped)
    try:
        with transaction.atomic(savepoint=savepoint):
            try:
                store, config, checked_member, built = _checkout_priced(
                    actor, member, lines, coupon_ids, authorized=authorized
                )
            except ApplicationError as refusal:
                return _refused_unless_replayed(actor, key, request_hash, refusal, replay_skipped=replay_skipped)
            # On PostgreSQL the INSERT travels with _complete's balance lock (key_later): one round trip, not two.
            bill = _insert_bill(
                actor,
                store,
                checked_member,
                key=key,
                request_hash=request_hash,
                lines=built,
                numbered=False,
                unless_key_used=True,
                key_later=True,
            )
            # The lines are written by _complete, once their earnings are known (one INSERT).
            try:
                posted = _complete(actor, bill, built, tenders, key, config)
            except ApplicationError:
                # A refusal before the bill's INSERT was answered: if a bill holds the key, this is its replay
                # (the refusal may come from that bill's own effects), as when the INSERT was waited for.
                if bill.pk is None:
                    settle()
                if bill.pk is None and (replay := _bill_replay(actor, key, request_hash)) is not None:
                    return replay
                raise
            if not posted:  # a bill holds the key: its replay (nothing was written), or key_reused
                replay = _bill_replay(actor, key, request_hash)
                if replay is None:
                    raise IntegrityError(f"sales_bill: key {key!r} is taken, yet no bill holds it")
                return replay
    except IntegrityError:
        if not savepoint and connection.in_atomic_block:
            raise  # the caller's transaction is aborted: it rolls back, and nothing can be read before then
        replay = _bill_replay(actor, key, request_hash)
        if replay is None:
            _explain_key_clash(actor, key)
            raise
        return replay
    return bill


def _refused_unless_replayed(
    actor: Actor, key: str, request_hash: str, refusal: ApplicationError, *, replay_skipped: bool
) -> Bill:
    """A checkout refused before its bill's INSERT, when the replay check was skipped (``key_unused``): the bill
    that holds the key, if one does, answers instead — the refusal may come from that bill's own effects (its
    coupon is used now, its member merged since), and a retry must get its bill back, not the refusal. The
    refusal was raised by code, not by the database, so the transaction can still read."""
    if replay_skipped:
        replay = _bill_replay(actor, key, request_hash)
        if replay is not None:
            return replay
    raise refusal


def _checkout_priced(
    actor: Actor,
    member: Member | None,
    lines: Sequence[LineInput],
    coupon_ids: Sequence[int],
    *,
    authorized: Member | None,
) -> tuple[Store, _CheckoutConfig, Member | None, list[BillLine]]:
    """What ``bill_checkout`` reads and decides before it writes: the store and its rules, the member, the
    items and staff, and the priced lines with the offers applied."""
    store, config = _checkout_store_and_config(actor, member.pk if member is not None else None)
    checked_member = _checkout_member(actor, member, known=authorized)
    if checked_member is not None:  # her tier from the ladder's copy and the row read with the store (no query)
        tier_view_known(
            checked_member, version=config.tiers_version, held_tier_id=config.held_tier_id, seen=config.growth_seen
        )
        rules_view_known(checked_member, version=config.rules_version)  # the earning rules, likewise
    items = _items_by_id(actor, [line.item_id for line in lines], store=store, version=config.catalog_version)
    config.rates = {
        item.category.earning_category: rate
        for item in items.values()
        if (rate := getattr(item, "earning_rate", None)) is not None
    }
    staff = _staff_by_id(
        actor,
        [
            staff_id
            for line in lines
            for staff_id in (line.performed_by_id, line.sold_by_id, line.approver_id)
            if staff_id is not None
        ],
    )
    snapshot = _member_snapshot(checked_member)
    ctx = PricingContext(
        actor=actor,
        store=store,
        member=checked_member,
        settings=config.settings,
        store_prices={
            item.pk: price for item in items.values() if (price := getattr(item, "store_price_fen", None)) is not None
        },
        member_info=dict(snapshot),
    )
    built = [
        _build_line(
            ctx,
            items[line.item_id],
            quantity=line.quantity,
            performed_by=staff.get(line.performed_by_id) if line.performed_by_id else None,
            sold_by=staff.get(line.sold_by_id) if line.sold_by_id else None,
            unit_price=line.unit_price,
            approver=staff.get(line.approver_id) if line.approver_id else None,
            approval_pin=line.approval_pin,
        )
        for line in lines
    ]
    config.coupons = _apply_offers(
        actor,
        store,
        checked_member,
        built,
        coupon_ids,
        version_known=True,
        promotions_version=config.promotions_version,
    )
    return store, config, checked_member, built


@dataclass
class _CheckoutConfig:
    """The store's and organisation's rules a completion reads. ``bill_checkout`` reads them all with the
    store's row; ``bill_complete`` leaves the others None and they are read when needed."""

    settings: SalesSettings
    spend_order: str | None = None
    points_lifetime_months: int | None = None
    rates: dict[str, int] | None = None  # points per 元 of the bill's earning categories
    coupons: list[tuple[Coupon, int]] = field(default_factory=list)  # used on this bill, with what each took off
    promotions_version: int | None = None  # read with the store row: the promotions cache's key
    tiers_version: int | None = None  # read with the store row: the tier ladder's copy's key (None: no tiers)
    held_tier_id: int | None = None  # read with the store row: the tier the checkout's member holds
    rules_version: int | None = None  # read with the store row: the earning rules' copy's key (None: no rules)
    growth_seen: GrowthSeen | None = None  # read with the store row: for the upgrade check after the bill
    catalog_version: int | None = None  # read with the store row: the items' copy's key (None: read them)


@dataclass
class _TenderPlan:
    kind: str
    amount_fen: int
    received_fen: int | None = None
    change_fen: int = 0
    external_ref: str = ""
    points: int = 0
    package: PackageTenderValue | None = None
    gift_card: GiftCard | None = None


def _complete(
    actor: Actor,
    bill: Bill,
    lines: list[BillLine],
    tenders: Sequence[TenderInput],
    key: str,
    config: _CheckoutConfig,
) -> bool:
    """Post a locked open bill whose totals are current. Runs inside the caller's transaction, which has
    just claimed ``key`` on the bill row (so the journals' derived keys are fresh, see ``journals_post``).
    Returns False, having written nothing, when the bill's INSERT was queued (``_insert_bill(key_later=True)``)
    and skipped: another bill holds the key.

    ``lines`` are the bill's lines, saved (``bill_complete``) or not yet (``bill_checkout``: they are
    inserted here with their earnings, in one statement).

    Every balance row the bill posts to — the store's accounts, the member's wallet, points and growth, the
    organisation's points and growth accounts — is locked in ONE statement in primary-key order (the
    ledger's order), and the journals are written by one ``journals_post``: one INSERT for the journals,
    one for their entries, one UPDATE for the balances.
    """
    if not lines:
        raise ValidationFailed("sales.no_lines", zh="消费单至少需要一项。", en="A bill needs at least one line.")
    store, member = bill.store, bill.member
    payable = bill.payable_total_fen
    settings = config.settings
    check_package_buyer(member, lines)
    plans = _plan_tenders(
        bill,
        tenders,
        settings,
        packages=package_tender_values(actor, member, lines, tenders),
        gift_cards=gift_cards_for_tenders(actor, tenders),
    )
    gift_plans = [p for p in plans if p.gift_card is not None]

    sv_plan = next((p for p in plans if p.kind == TenderKind.STORED_VALUE), None)
    sv_balance_after = 0
    points_plan = next((p for p in plans if p.kind == TenderKind.POINTS), None)
    external_fen = sum(p.amount_fen for p in plans if p.kind in EXTERNAL_TENDERS)
    may_earn = member is not None and (external_fen > 0 or sv_plan is not None)

    # 1. Every balance row the bill may post to, locked at once.
    store_keys = {kind: store_account_key(store=store, kind=kind) for kind in _store_account_kinds(plans)}
    keys: list[AccountKey] = list(store_keys.values())
    if member is not None:
        if sv_plan is not None:
            wallet_keys = wallet_account_keys(member=member)
            keys.extend((wallet_keys.principal, wallet_keys.bonus))
        if points_plan is not None or may_earn:
            keys.extend(points_account_keys(member=member, earn=may_earn, spend=points_plan is not None))
        if may_earn:
            keys.extend(growth_account_keys(member=member))
    keys.extend(gift_card_account_key(p.gift_card) for p in gift_plans if p.gift_card is not None)
    locked = accounts_lock(organisation_id=bill.organisation_id, keys=keys)
    growth_version = growth_version_locked(locked, member) if may_earn and member is not None else None
    if bill.pk is None:  # its INSERT was queued (bill_checkout): the answer came with the lock's
        settle()
        if bill.pk is None:
            return False
        for line in lines:
            line.bill = bill  # they were pointed at it before it had its key

    # 2. The CNY journal: external tenders, stored value (principal and bonus by the store's spend order),
    #    the points offset, revenue.
    legs: list[Leg] = []
    principal_fen = bonus_fen = 0
    for plan in plans:
        if plan.kind in EXTERNAL_TENDERS:
            legs.append(Leg(locked.get(store_keys[f"tender_{plan.kind}"]), -plan.amount_fen))
    if sv_plan is not None:
        assert member is not None  # checked by _plan_tenders
        if config.spend_order is None:
            config.spend_order = wallet_spend_order(store)
        split = wallet_split_locked(
            member=member, store=store, amount=Money(sv_plan.amount_fen), locked=locked, spend_order=config.spend_order
        )
        principal_fen, bonus_fen = split.principal.fen, split.bonus.fen
        wallet_keys = wallet_account_keys(member=member)
        sv_balance_after = sum(
            locked.balance(locked.get(account_key)) for account_key in (wallet_keys.principal, wallet_keys.bonus)
        ) - (principal_fen + bonus_fen)
        legs.extend(
            Leg(locked.get(account_key), -part)
            for account_key, part in ((wallet_keys.principal, principal_fen), (wallet_keys.bonus, bonus_fen))
            if part
        )
    if points_plan is not None:
        legs.append(Leg(locked.get(store_keys["points_offset"]), -points_plan.amount_fen))
    for plan in plans:
        if plan.kind == TenderKind.PACKAGE:
            legs.append(Leg(locked.get(store_keys["package_sessions"]), -plan.amount_fen))
    today = timezone.localtime(timezone.now(), _zone(store)).date()
    gift_balances_after: dict[int, int] = {}
    for index, plan in enumerate(plans):
        if plan.gift_card is None:
            continue
        gift_account = locked.get(gift_card_account_key(plan.gift_card))
        gift_balance = locked.balance(gift_account)
        gift_card_check(plan.gift_card, plan.amount_fen, today, gift_balance, index=index)
        gift_balances_after[plan.gift_card.pk] = gift_balance - plan.amount_fen
        legs.append(Leg(gift_account, -plan.amount_fen))
    postings: dict[str, Posting] = {}
    reference = {"reference_type": BILL_REFERENCE, "reference_id": str(bill.pk)}
    if payable > 0:
        legs.append(Leg(locked.get(store_keys["revenue"]), payable))
        postings["cny"] = Posting(
            code="sales.bill",
            entries=legs,
            staff_id=_staff_id(actor),
            store_id=store.pk,
            idempotency_key=_derived_key(key, "cny"),
            **reference,
        )

    # 3. The points offset.
    spending = None
    if points_plan is not None:
        assert member is not None
        spending = points_spend_prepare(
            actor=actor,
            member=member,
            points=points_plan.points,
            locked=locked,
            idempotency_key=_derived_key(key, "pts-spend"),
            code="sales.points_offset",
            **reference,
        )
        postings["pts-spend"] = spending.posting

    # 4. Earning: only real money, allocated over the lines; points credited once the bill is paid.
    earning_fen = external_fen + principal_fen
    points_total = 0
    earning = None
    if member is not None:
        if earning_fen > 0 and config.rates is None:
            config.rates = earning_rates(bill.organisation)
        ctx = EarningContext(
            actor=actor,
            store=store,
            member=member,
            rates=(config.rates or {}) if earning_fen > 0 else {},
            on=today,
            member_info=dict(bill.member_snapshot),
        )
        shares = allocate_earning(earning_fen, [line.line_total_fen for line in lines])
        for line, share in zip(lines, shares, strict=True):
            earned = earn_line(ctx, LineEarning(earning_category=line.earning_category, earning_fen=share))
            line.earning_fen, line.points_earned, line.earning_steps = share, earned.points, earned.steps
            points_total += earned.points
        if points_total > 0:
            lifetime = bill.member_snapshot.get("points_lifetime_months")  # the member's tier's, if any
            if lifetime is None and config.points_lifetime_months is None:
                config.points_lifetime_months = points_lifetime_months(bill.organisation_id)
            earning = points_earn_prepare(
                actor=actor,
                member=member,
                points=points_total,
                locked=locked,
                source_code="sales.bill",
                idempotency_key=_derived_key(key, "pts-earn"),
                earned_on=ctx.on,
                lifetime_months=int(lifetime or config.points_lifetime_months or 0),
                posted_before=-spending.points if spending is not None else 0,
                **reference,
            )
            if earning is not None:
                postings["pts-earn"] = earning.posting
        if earning_fen > 0:
            growth = growth_add_prepare(
                actor=actor,
                member=member,
                amount_fen=earning_fen,
                locked=locked,
                idempotency_key=_derived_key(key, "grw"),
                **reference,
            )
            if growth is not None:
                postings["grw"] = growth

    # From here the writes that return nothing anybody reads at once are queued and reach PostgreSQL with the
    # next statement waited for (meiye.core.db.pipeline): the ledger's entries and balances, the lot, the lines
    # and tenders go with the bill's number, the bill's completion and its audit row when the block ends.
    with pipelined():
        # The journals, in the order the bill has always posted them; their keys derive from the bill's.
        journals = dict(
            zip(
                postings,
                journals_post(
                    organisation_id=bill.organisation_id,
                    postings=list(postings.values()),
                    locked=locked,
                    keys_claimed=True,
                ),
                strict=True,
            )
        )
        cny_journal = journals.get("cny")
        points_spend_journal = journals.get("pts-spend")
        if spending is not None and points_spend_journal is not None:
            spending.take_from_lots(points_spend_journal)
        points_earn_journal_id: int | None = None
        if earning is not None:
            points_earn_journal_id = earning.create_lot(journals["pts-earn"]).journal_id
        growth_journal = journals.get("grw")
        if growth_journal is not None and member is not None:
            tier_after_bill(  # upgrades at once when a threshold is crossed
                actor=actor, member=member, on=ctx.on, locked_version=growth_version, added_fen=earning_fen
            )
        if member is not None and earning_fen > 0:
            rewards_after_bill(  # event rewards a paid bill triggers (S-10 referral), see loyalty.rules
                actor=actor,
                member=member,
                bill_id=bill.pk,
                earning_fen=earning_fen,
                services_fen=sum(line.line_total_fen for line in lines if line.kind == "service"),
                on=ctx.on,
            )

        # 5. The bill's own rows.
        new_lines = lines[0].pk is None
        if new_lines:
            lines = insert_rows(lines, keys_later=True)  # their keys are set at settle(), after the number
        else:  # saved while the bill was open: the offers may have re-priced them, and they earned
            BillLine.objects.bulk_update(
                lines,
                [*REPRICED_FIELDS, "earning_fen", "points_earned", "earning_steps"],
            )
        tender_rows = insert_rows(
            [
                Tender(
                    bill=bill,
                    kind=plan.kind,
                    amount_fen=plan.amount_fen,
                    received_fen=plan.received_fen,
                    change_fen=plan.change_fen,
                    external_ref=plan.external_ref,
                    principal_fen=principal_fen if plan.kind == TenderKind.STORED_VALUE else 0,
                    bonus_fen=bonus_fen if plan.kind == TenderKind.STORED_VALUE else 0,
                    points_used=plan.points,
                    journal=cny_journal,
                    points_journal=points_spend_journal if plan.kind == TenderKind.POINTS else None,
                    package_item_id=plan.package.member_item_id if plan.package is not None else None,
                    sessions=plan.package.sessions if plan.package is not None else 0,
                    gift_card=plan.gift_card,
                )
                for plan in plans
            ],
            keys_later=True,
        )
        # 6. Prepaid: the sessions the bill used, the gift cards it took, the packages it sold (ADR 0006), in the
        #    bill's store whichever store the cashier has chosen. Their services may read the lines' keys.
        sold = package_lines(lines)
        if sold or any(plan.package is not None or plan.gift_card is not None for plan in plans):
            settle()
        prepaid_actor = actor if actor.store == store else replace(actor, store=store)
        # Package items in primary-key order, as every lock is taken, so two checkouts cannot deadlock.
        ordered = sorted(
            enumerate(plans), key=lambda p: (p[1].package is None, p[1].package.member_item_id if p[1].package else 0)
        )
        for index, plan in ordered:
            if plan.package is not None:
                assert member is not None
                package_sessions_use(
                    index=index,
                    actor=prepaid_actor,
                    member=member,
                    member_item_id=plan.package.member_item_id,
                    sessions=plan.package.sessions,
                    on=today,
                    performed_by_id=plan.package.performed_by_id,
                    bill_id=bill.pk,
                    idempotency_key=_derived_key(key, f"ses{index}"),
                )
            elif plan.gift_card is not None:
                gift_card_after_use(
                    actor=prepaid_actor,
                    card=plan.gift_card,
                    amount_fen=plan.amount_fen,
                    bill_id=bill.pk,
                    balance_after_fen=gift_balances_after[plan.gift_card.pk],
                )
        if sold:
            assert member is not None  # check_package_buyer
            packages_issue_for_bill(actor=prepaid_actor, bill_id=bill.pk, member=member, lines=sold)
        _remember_rows(bill, lines=lines, tenders=tender_rows)
        bill.status = BillStatus.COMPLETED
        bill.completed_at = timezone.now()
        bill.earning_total_fen = earning_fen if member is not None else 0
        bill.points_earned = points_total
        bill.cny_journal = cny_journal
        bill.points_spend_journal = points_spend_journal
        bill.points_earn_journal_id = points_earn_journal_id
        bill.growth_journal = growth_journal
        coupons_mark_used(actor=actor, used=config.coupons, bill_id=bill.pk)
        if member is not None and (sv_plan is not None or points_total > 0):
            # S-17's charge message and the points-earned message, queued once the bill has committed.
            charge = (sv_plan.amount_fen, sv_balance_after) if sv_plan is not None else None
            bill_id = bill.pk
            transaction.on_commit(lambda: bill_notify_member(bill_id, charge))
        # Numbered last (_insert_bill). On PostgreSQL the number is written by the statement that takes it, and the
        # lines', tenders' and completion's answers come with it; on SQLite the completion writes it.
        if not bill.number.startswith(PROVISIONAL_NUMBER):
            settle()
            update_row(bill, COMPLETION_FIELDS)
        elif connection.vendor == "postgresql":
            bill.number = _number_bill(store, bill, COMPLETION_FIELDS)  # the completion written with it
            settle()
        else:
            bill.number = _next_number(store)
            settle()
            update_row(bill, (*COMPLETION_FIELDS, "number"))
        if new_lines:
            _audit_manual_price(actor, bill, lines)  # after the number: the audit shows it
        audit_record(
            actor=actor,
            action="sales.bill_complete",
            obj=bill,
            detail={
                "payable_fen": payable,
                "tenders": [[p.kind, p.amount_fen] for p in plans],
                "principal_fen": principal_fen,
                "bonus_fen": bonus_fen,
                "points_used": points_plan.points if points_plan else 0,
                "points_earned": points_total,
            },
        )
    return True


# The prefix of a bill's number until ``_complete`` numbers it (never seen outside the transaction).
PROVISIONAL_NUMBER = "~"
COMPLETION_FIELDS = (
    "list_total_fen",
    "payable_total_fen",
    "discount_total_fen",
    "status",
    "completed_at",
    "earning_total_fen",
    "points_earned",
    "cny_journal",
    "points_spend_journal",
    "points_earn_journal",
    "growth_journal",
)
REPRICED_FIELDS = ["unit_price_fen", "discount_fen", "line_total_fen", "price_steps"]


def _apply_offers(
    actor: Actor,
    store: Store,
    member: Member | None,
    lines: list[BillLine],
    coupon_ids: Sequence[int],
    *,
    version_known: bool = False,
    promotions_version: int | None = None,
) -> list[tuple[Coupon, int]]:
    """Price the whole bill's offers — promotions against the tier discount by the organisation's stacking
    policy, then the coupons applied (``promotions.offers``) — into ``lines`` (unit price, ``discount_fen``,
    line total, a price step per offer). Returns the coupons to mark used, each with what it took off.
    With ``version_known`` (``bill_checkout`` read ``promotions_version`` with the store's row) the live
    promotions and the policy come from the process's cache when current; otherwise in one query; one more query, locking them, when coupons are applied."""
    coupons = coupons_lock_for_bill(actor=actor, member=member, coupon_ids=coupon_ids)
    if version_known:
        live, policy = promotions_live_cached(store.organisation_id, promotions_version)
    else:
        live, policy = promotions_live_with_policy(store.organisation_id)
    if not live and not coupons:
        return []
    offer_lines = []
    for line in lines:
        member_unit, manual = _member_unit_price(line)
        offer_lines.append(
            OfferLine(
                item_id=line.item_id,
                category_id=line.item.category_id,
                kind=line.kind,
                quantity=line.quantity,
                base_unit_fen=member_unit if manual else line.list_price_fen,
                member_unit_fen=member_unit,
                manual=manual,
            )
        )
    on = timezone.localtime(timezone.now(), _zone(store)).date()
    result = evaluate(lines=offer_lines, promotions=live, coupons=coupons, policy=policy, store_id=store.pk, on=on)
    for line, offer_line, outcome in zip(lines, offer_lines, result.lines, strict=True):
        steps = [step for step in line.price_steps if step.get("step") not in ("promotion", "coupon", "offer_choice")]
        if not outcome.use_member_price and offer_line.member_unit_fen != offer_line.base_unit_fen:
            steps.append(
                {
                    "step": "offer_choice",
                    "unit_price_fen": offer_line.base_unit_fen,
                    "reason": "促销优于会员折扣，不叠加 The promotion is better than the member discount; they do not stack",
                }
            )
        line.unit_price_fen = offer_line.member_unit_fen if outcome.use_member_price else offer_line.base_unit_fen
        line.discount_fen = outcome.discount_fen
        line.line_total_fen = line.unit_price_fen * line.quantity - line.discount_fen
        steps.extend(
            {"step": d.step, "discount_fen": d.amount_fen, "unit_price_fen": line.unit_price_fen, "reason": d.reason}
            for d in outcome.discounts
        )
        line.price_steps = steps
    return result.coupons


def _member_unit_price(line: BillLine) -> tuple[int, bool]:
    """From a line's price steps (offers left out): the unit price the per-line pipeline reached — the member
    price after the tier discount, or the cashier's manual price — and whether it is manual (S-20: a manual
    price is final, no offer applies to the line and nothing may replace it)."""
    price, manual = line.list_price_fen, False
    for step in line.price_steps:
        if step.get("step") in ("promotion", "coupon", "offer_choice"):
            continue
        if "unit_price_fen" in step:
            price = step["unit_price_fen"]
        manual = manual or step.get("step") == "manual_adjustment"
    return price, manual


def _reverse_rewards(context: RefundContext) -> None:
    """REFUND_HOOKS: rewards the bill triggered are reversed by a full refund in time (S-10, loyalty.rules)."""
    bill = context.bill
    if bill.member is None or bill.completed_at is None:
        return
    zone = _zone(bill.store)
    rewards_reverse_for_bill(
        actor=context.actor,
        member=bill.member,
        bill_id=bill.pk,
        completed_on=timezone.localtime(bill.completed_at, zone).date(),
        on=timezone.localtime(timezone.now(), zone).date(),
        is_full=context.is_full,
    )


def _return_coupons(context: RefundContext) -> None:
    """REFUND_HOOKS: a full refund gives the bill's coupons back while they are still valid (S-22)."""
    if context.is_full:
        on = timezone.localtime(timezone.now(), _zone(context.bill.store)).date()
        coupons_return_for_bill(actor=context.actor, bill_id=context.bill.pk, on=on)


def _remember_rows(bill: Bill, *, lines: list[BillLine], tenders: list[Tender]) -> None:
    """Leave the rows just written in the bill's related-object cache, as ``prefetch_related`` would, so
    the caller can show the completed bill (``bill.lines.all()``…) without reading it back."""
    cache = bill.__dict__.setdefault("_prefetched_objects_cache", {})
    for name, rows in (("lines", lines), ("tenders", tenders), ("refunds", [])):
        related = getattr(bill, name).all()
        related._result_cache = list(rows)
        related._prefetch_done = True
        cache[name] = related


def _plan_tenders(
    bill: Bill,
    tenders: Sequence[TenderInput],
    settings: SalesSettings,
    packages: dict[int, PackageTenderValue] | None = None,
    gift_cards: dict[int, GiftCard] | None = None,
) -> list[_TenderPlan]:
    """Check the tenders against the bill and the store's rules; nothing is written here. ``packages`` and
    ``gift_cards`` (by tender index) are what ``sales.prepaid`` resolved for the package and gift-card tenders."""
    plans: list[_TenderPlan] = []
    seen: set[str] = set()
    for index, tender in enumerate(tenders):
        where = f"tenders[{index}]"
        kind = tender.kind
        if kind not in TenderKind.values:
            raise _bad_tender(where, f"未知的付款方式 {kind!r}", f"unknown tender kind {kind!r}")
        if kind in (TenderKind.STORED_VALUE, TenderKind.POINTS):
            if kind in seen:
                raise _bad_tender(where, "储值和积分各只能用一次", "stored value and points may each be used once")
            if bill.member_id is None:
                raise ValidationFailed(
                    "sales.member_required",
                    zh=f"{where}：散客不能用储值或积分付款。",
                    en=f"{where}: a walk-in customer cannot pay with stored value or points.",
                    field="tenders",
                )
        seen.add(kind)
        external_ref = (tender.external_ref or "").strip()
        if len(external_ref) > 64 or (
            external_ref and kind not in (TenderKind.CARD, TenderKind.WECHAT, TenderKind.ALIPAY)
        ):
            raise _bad_tender(
                where,
                "交易参考号只用于银行卡、微信、支付宝，最多 64 个字符",
                "external_ref: card/WeChat/Alipay only, at most 64 characters",
            )
        if tender.received is not None and kind != TenderKind.CASH:
            raise _bad_tender(where, "只有现金有实收金额", "only cash has a received amount")
        if kind == TenderKind.POINTS:
            plans.append(_points_plan(where, tender, bill, settings))
            continue
        if kind == TenderKind.PACKAGE:
            value = (packages or {})[index]
            plans.append(_TenderPlan(kind=kind, amount_fen=value.amount_fen, package=value))
            continue
        if tender.points is not None:
            raise _bad_tender(where, "只有积分付款填写积分数", "only a points tender states points")
        if tender.amount is None or tender.amount.fen <= 0:
            raise _bad_tender(where, "金额必须大于 0", "the amount must be more than 0")
        plan = _TenderPlan(
            kind=kind,
            amount_fen=tender.amount.fen,
            external_ref=external_ref,
            gift_card=(gift_cards or {}).get(index) if kind == TenderKind.GIFT_CARD else None,
        )
        if tender.received is not None:
            if tender.received.fen < tender.amount.fen:
                raise ValidationFailed(
                    "sales.cash_short",
                    zh=f"{where}：实收 {tender.received} 少于应收 {tender.amount}。",
                    en=f"{where}: received {tender.received} is less than the amount {tender.amount}.",
                    field="tenders",
                )
            plan.received_fen = tender.received.fen
            plan.change_fen = tender.received.fen - tender.amount.fen
        plans.append(plan)
    tendered = sum(p.amount_fen for p in plans)
    if tendered != bill.payable_total_fen:
        raise ValidationFailed(
            "sales.tender_mismatch",
            zh=f"付款合计 {Money(tendered)} 与应付 {Money(bill.payable_total_fen)} 不符。",
            en=f"The tenders add up to {Money(tendered)}, the bill's payable is {Money(bill.payable_total_fen)}.",
            field="tenders",
            extra={"payable_fen": bill.payable_total_fen, "tendered_fen": tendered},
        )
    return plans


def _points_plan(where: str, tender: TenderInput, bill: Bill, settings: SalesSettings) -> _TenderPlan:
    points = tender.points
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise _bad_tender(where, "积分数必须是正整数", "points must be a positive whole number")
    per_yuan = int(bill.member_snapshot.get("points_per_yuan_offset") or settings.points_per_yuan_offset)
    value = points_offset_value_fen(points, per_yuan)
    if value is None:
        raise ValidationFailed(
            "sales.points_not_whole_fen",
            zh=f"{where}：{points} 积分按每元 {per_yuan} 积分折算不是整分，请调整积分数。",
            en=f"{where}: {points} points at {per_yuan} points per 元 is not a whole number of fen.",
            field="tenders",
        )
    if tender.amount is not None and tender.amount.fen != value:
        raise _bad_tender(where, f"积分抵扣金额应为 {Money(value)}", f"the points are worth {Money(value)}")
    cap = points_offset_cap_fen(bill.payable_total_fen, settings.points_offset_cap_bp)
    if value > cap:
        raise ValidationFailed(
            "sales.points_offset_cap",
            zh=f"{where}：积分最多抵扣应付的 {settings.points_offset_cap_bp / 100:g}%（{Money(cap)}）。",
            en=f"{where}: points may pay at most {settings.points_offset_cap_bp / 100:g}% of the payable ({Money(cap)}).",
            field="tenders",
            extra={"cap_fen": cap, "value_fen": value},
        )
    return _TenderPlan(kind=TenderKind.POINTS, amount_fen=value, points=points)


def _bad_tender(where: str, zh: str, en: str) -> ValidationFailed:
    return ValidationFailed("sales.invalid_tender", zh=f"{where}：{zh}。", en=f"{where}: {en}.", field="tenders")


# --- refunds ------------------------------------------------------------------------------------------------


@dataclass
class RefundContext:
    """What a refund hook sees: the refund, the bill, and what is refunded per line (quantities)."""

    actor: Actor
    refund: Refund
    bill: Bill
    quantities: dict[int, int]  # bill line id -> quantity refunded now
    is_full: bool


# Extension point for coupons (return if still valid), count-card sessions and commissions (S-22, S-25):
# each hook runs inside the refund's transaction after the money and points are posted.
REFUND_HOOKS: list[Callable[[RefundContext], None]] = [_return_coupons, _reverse_rewards]


def bill_refund(
    *,
    actor: Actor,
    bill: Bill,
    lines: Sequence[tuple[int, int]] | None = None,
    destination: str = RefundDestination.ORIGINAL,
    reason: str,
    idempotency_key: str,
) -> Refund:
    """Refund a completed bill: all of it (``lines=None``) or ``[(line_id, quantity), …]``.

    Reverses exactly what the bill did for the part refunded: the tenders in proportion (largest
    remainder), stored value to principal and bonus as charged, the offset points back, the earned
    points and growth taken back. ``destination="stored_value"`` puts the external tenders' share into
    the member's principal instead of back to cash/card/WeChat/Alipay.
    """
    actor.require(Perm.REFUND)
    key = _check_key(idempotency_key)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(
            "input.required", zh="退款原因：必填。", en="reason: this field is required.", field="reason"
        )
    if len(reason) > 200:
        raise ValidationFailed(
            "input.too_long", zh="退款原因：最多 200 个字符。", en="reason: at most 200 characters.", field="reason"
        )
    if destination not in RefundDestination.values:
        raise ValidationFailed(
            "refund.invalid_destination",
            zh=f"退款去向：{destination!r} 无效。",
            en=f"destination: {destination!r} is not valid.",
            field="destination",
        )
    requested = _requested_quantities(lines)
    request_hash = canonical_hash(
        {
            "op": "sales.bill_refund",
            "bill": bill.pk,
            "lines": sorted(requested.items()) if requested is not None else None,
            "destination": destination,
            "reason": reason,
        }
    )
    replay = _refund_replay(actor, key, request_hash)
    if replay is not None:
        return replay
    try:
        with transaction.atomic():
            return _refund(actor, bill, requested, destination, reason, key, request_hash)
    except IntegrityError:
        replay = _refund_replay(actor, key, request_hash)
        if replay is None:
            raise
        return replay


def _requested_quantities(lines: Sequence[tuple[int, int]] | None) -> dict[int, int] | None:
    if lines is None:
        return None
    requested: dict[int, int] = {}
    for line_id, quantity in lines:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise ValidationFailed(
                "refund.invalid_quantity",
                zh="退款数量必须是正整数。",
                en="Refund quantities must be positive whole numbers.",
                field="lines",
            )
        requested[int(line_id)] = requested.get(int(line_id), 0) + quantity
    if not requested:
        raise ValidationFailed(
            "refund.no_lines", zh="请选择要退款的项目。", en="Choose the lines to refund.", field="lines"
        )
    return requested


def _refund(
    actor: Actor,
    bill: Bill,
    requested: dict[int, int] | None,
    destination: str,
    reason: str,
    key: str,
    request_hash: str,
) -> Refund:
    locked = _lock_bill(actor, bill)
    # A twin request may have made this refund while we waited for the lock.
    replay = _refund_replay(actor, key, request_hash)
    if replay is not None:
        return replay
    if locked.status != BillStatus.COMPLETED:
        raise Conflict(
            "refund.bill_not_completed",
            zh=f"消费单 {locked.number} 未结账，不能退款。",
            en=f"Bill {locked.number} is not completed and cannot be refunded.",
        )
    member = locked.member
    if destination == RefundDestination.STORED_VALUE and member is None:
        raise ValidationFailed(
            "sales.member_required",
            zh="散客消费不能退到储值。",
            en="A walk-in customer's bill cannot be refunded to stored value.",
            field="destination",
        )
    lines = {line.pk: line for line in locked.lines.order_by("pk")}
    quantities = _refund_quantities(lines, requested)
    earlier = locked.refunds.exists()
    is_full = not earlier and all(quantities.get(pk, 0) == line.quantity for pk, line in lines.items())
    tenders = list(locked.tenders.order_by("pk"))
    store = locked.store
    _check_prepaid_refund(locked, lines, quantities, tenders, is_full)
    check_prepaid_refundable(
        locked.pk, {t.kind for t in tenders}, timezone.localtime(timezone.now(), _zone(store)).date()
    )

    refund = Refund.objects.create(
        organisation=locked.organisation,
        store=store,
        bill=locked,
        destination=destination,
        reason=reason,
        is_full=is_full,
        idempotency_key=key,
        request_hash=request_hash,
        created_by=actor.staff,
    )

    # What each line gives back: money, earning and earned points, by cumulative floor.
    refund_lines: list[RefundLine] = []
    for pk, quantity in quantities.items():
        line = lines[pk]
        refund_lines.append(
            RefundLine(
                refund=refund,
                line=line,
                quantity=quantity,
                amount_fen=prorate_cumulative(line.line_total_fen, line.refunded_quantity, quantity, line.quantity),
                earning_fen=prorate_cumulative(line.earning_fen, line.refunded_quantity, quantity, line.quantity),
                points_taken_back=prorate_cumulative(
                    line.points_earned, line.refunded_quantity, quantity, line.quantity
                ),
            )
        )
    amount = sum(r.amount_fen for r in refund_lines)
    completes = all(line.refunded_quantity + quantities.get(pk, 0) == line.quantity for pk, line in lines.items())
    parts = _refund_tender_parts(refund, tenders, amount, completes, destination)

    # 1. Every balance row the refund may post to, locked at once (see ``_lock_refund_accounts``), then the
    #    CNY journal.
    accounts = _lock_refund_accounts(locked, tenders, destination)
    if amount > 0:
        # The exact mirror only while the member still owns her wallet: after a merge her stored value
        # lives with the survivor, so the legs are rebuilt (``wallet_refund_legs`` follows the merge).
        if (
            is_full
            and destination == RefundDestination.ORIGINAL
            and locked.cny_journal is not None
            and not _member_merged(locked)
        ):
            refund.cny_journal = journal_reverse(
                journal=locked.cny_journal,
                code="sales.refund",
                staff_id=_staff_id(actor),
                idempotency_key=_derived_key(key, "cny"),
                memo=f"refund {locked.number}",
            )
        else:
            refund.cny_journal = journal_post(
                organisation_id=locked.organisation_id,
                code="sales.refund",
                entries=_refund_legs(locked, parts, accounts, amount, destination),
                reference_type=BILL_REFERENCE,
                reference_id=str(locked.pk),
                staff_id=_staff_id(actor),
                store_id=store.pk,
                idempotency_key=_derived_key(key, "cny"),
                memo=f"refund {locked.number}",
            )

    # 2. Points: the offset comes back, the earned points go (see ``_refund_points``).
    taken = sum(r.points_taken_back for r in refund_lines)
    points_back = sum(p.points for p in parts)
    if member is not None:
        _refund_points(actor, locked, refund, member, points_back=points_back, taken=taken, key=key)
    growth_back = sum(r.earning_fen for r in refund_lines)
    if member is not None and growth_back > 0 and locked.growth_journal is not None:
        refund.growth_journal = growth_add(
            actor=actor,
            member=member,
            amount_fen=-growth_back,
            reference_type=BILL_REFERENCE,
            reference_id=str(locked.pk),
            idempotency_key=_derived_key(key, "grw"),
        )

    # 3. The rows: what was refunded, so nothing can be refunded twice.
    RefundLine.objects.bulk_create(refund_lines)
    RefundTender.objects.bulk_create(parts)
    for pk, quantity in quantities.items():
        BillLine.objects.filter(pk=pk).update(refunded_quantity=F("refunded_quantity") + quantity)
    refund.amount_fen = amount
    refund.earning_fen = growth_back
    refund.points_restored = points_back
    refund.points_taken_back = taken
    refund.save(
        update_fields=[
            "amount_fen",
            "earning_fen",
            "points_restored",
            "points_taken_back",
            "cny_journal",
            "points_restore_journal",
            "points_take_back_journal",
            "points_reearn_journal",
            "growth_journal",
        ]
    )
    context = RefundContext(actor=actor, refund=refund, bill=locked, quantities=quantities, is_full=is_full)
    for hook in REFUND_HOOKS:
        hook(context)
    audit_record(
        actor=actor,
        action="sales.bill_refund",
        obj=locked,
        detail={
            "refund": refund.pk,
            "amount_fen": amount,
            "destination": destination,
            "lines": sorted(quantities.items()),
            "tenders": [[p.tender.kind, p.amount_fen, p.principal_fen, p.bonus_fen, p.points] for p in parts],
            "reason": reason,
        },
    )
    return refund


def _check_prepaid_refund(
    bill: Bill, lines: dict[int, BillLine], quantities: dict[int, int], tenders: list[Tender], is_full: bool
) -> None:
    """A package sold on the bill is refunded by the package refund, whose formula counts the sessions used
    (S-19), never by the bill; sessions are whole, so a bill paid with sessions is refunded whole."""
    sold = [lines[pk] for pk, quantity in quantities.items() if quantity and lines[pk].kind == PACKAGE_LINE_KIND]
    if sold:
        raise Conflict(
            "refund.package_line",
            zh=f"「{sold[0].name}」是次卡/套餐：请在会员的次卡里办理套餐退款（按已用次数计算），不能按消费单退款。",
            en=(
                f"{sold[0].name} is a package: refund it from the member's packages (the refund counts the sessions "
                "used), not by refunding the bill."
            ),
            field="lines",
        )
    if not is_full and any(t.kind == TenderKind.PACKAGE for t in tenders):
        raise Conflict(
            "refund.package_sessions_whole_bill",
            zh=f"消费单 {bill.number} 用次卡付款：只能整单退款，次数全部退回次卡。",
            en=f"Bill {bill.number} was paid with package sessions: refund the whole bill, and the sessions go back.",
            field="lines",
        )


def _return_sessions(context: RefundContext) -> None:
    """S-22: a refunded bill gives back the count-card sessions it used (the whole bill, see above)."""
    if context.is_full and context.bill.tenders.filter(kind=TenderKind.PACKAGE).exists():
        package_sessions_return_for_bill(
            actor=context.actor,
            bill_id=context.bill.pk,
            quantities=None,
            idempotency_key=_derived_key(context.refund.idempotency_key, "ses"),
        )


def _gift_cards_back(context: RefundContext) -> None:
    """Money refunded to a gift card makes it usable again (the refund's journal holds the leg)."""
    for part in context.refund.tenders.filter(tender__kind=TenderKind.GIFT_CARD).select_related("tender__gift_card"):
        gift_card_after_refund(
            actor=context.actor, bill_id=context.bill.pk, amount_fen=part.amount_fen, card=part.tender.gift_card
        )


REFUND_HOOKS.extend([_return_sessions, _gift_cards_back])


def _refund_points(
    actor: Actor, bill: Bill, refund: Refund, member: Member, *, points_back: int, taken: int, key: str
) -> None:
    """Give back the offset points and take back the earned points of the refunded part.

    A bill refunded in full at once undoes its journals exactly: ``points_restore`` puts the offset
    back on the very lots it came from, ``points_take_back`` reverses the earning (the balance may go
    negative, S-22). The loyalty services reverse whole journals only, so a partial refund
    (or a later one) does this instead:

    - the offset share goes back to the lots it was spent from with ``points_restore_part`` (each lot keeps
      its own expiry; the lot expiring last is refilled first);
    - the earned points are "reversed and rebooked": the bill's current earning is taken back whole and
      what still belongs to the unrefunded lines is earned again, on the original earning date (so it
      keeps its expiry). Net effect: exactly the refunded share leaves the balance, debt rules intact.
    """
    whole = refund.is_full
    if points_back > 0 and bill.points_spend_journal is not None:
        if whole:
            refund.points_restore_journal = points_restore(
                actor=actor,
                spend_journal=bill.points_spend_journal,
                idempotency_key=_derived_key(key, "pts-restore"),
            )
        else:
            refund.points_restore_journal = points_restore_part(
                actor=actor,
                spend_journal=bill.points_spend_journal,
                points=points_back,
                idempotency_key=_derived_key(key, "pts-restore"),
            )
    if taken <= 0:
        return
    current, still_earned = _current_earning(bill)
    if current is None:
        return
    refund.points_take_back_journal = points_take_back(
        actor=actor, earn_journal=current, idempotency_key=_derived_key(key, "pts-take-back")
    )
    remainder = still_earned - taken
    if remainder > 0:
        lot = points_earn(
            actor=actor,
            member=member,
            points=remainder,
            source_code="sales.bill",
            reference_type=BILL_REFERENCE,
            reference_id=str(bill.pk),
            idempotency_key=_derived_key(key, "pts-rebook"),
            earned_on=_earned_on(current),
            # the lifetime of the member's tier when the bill earned them (S-08: a Diamond's last 24 months)
            lifetime_months=bill.member_snapshot.get("points_lifetime_months"),
        )
        refund.points_reearn_journal_id = lot.journal_id if lot is not None else None


def _current_earning(bill: Bill) -> tuple[Journal | None, int]:
    """The journal now holding the bill's earned points (the bill's, or the last rebooking) and how many
    points of the bill are still earned."""
    earlier = list(
        bill.refunds.order_by("pk").values_list(
            "points_taken_back", "points_take_back_journal_id", "points_reearn_journal_id"
        )
    )
    still_earned = bill.points_earned - sum(row[0] for row in earlier)
    journal_id = bill.points_earn_journal_id
    for _taken, take_back_id, reearn_id in earlier:
        if take_back_id is not None:
            journal_id = reearn_id
    if journal_id is None or still_earned <= 0:
        return None, 0
    return Journal.objects.get(pk=journal_id), still_earned


def _earned_on(earn_journal: Journal) -> date | None:
    return PointsLot.objects.filter(journal=earn_journal).values_list("earned_on", flat=True).first()


def _refund_quantities(lines: dict[int, BillLine], requested: dict[int, int] | None) -> dict[int, int]:
    if requested is None:
        quantities = {pk: line.remaining_quantity for pk, line in lines.items() if line.remaining_quantity > 0}
    else:
        unknown = sorted(set(requested) - set(lines))
        if unknown:
            raise NotFound(
                "refund.line_not_found",
                zh=f"消费单中没有明细 {unknown}。",
                en=f"The bill has no line(s) {unknown}.",
                extra={"lines": unknown},
            )
        quantities = dict(requested)
    for pk, quantity in quantities.items():
        line = lines[pk]
        if quantity > line.remaining_quantity:
            raise ApplicationError(
                "refund.exceeds_paid",
                zh=f"{line.name}：最多还能退 {line.remaining_quantity} 件，申请退 {quantity} 件。",
                en=f"{line.name}: at most {line.remaining_quantity} left to refund, {quantity} asked.",
                field="lines",
                extra={"line": pk, "remaining": line.remaining_quantity, "requested": quantity},
            )
    if not quantities:
        raise ApplicationError(
            "refund.exceeds_paid",
            zh="这张消费单已全部退款。",
            en="This bill has already been refunded in full.",
            field="lines",
        )
    return quantities


def _refund_tender_parts(
    refund: Refund, tenders: list[Tender], amount: int, completes: bool, destination: str
) -> list[RefundTender]:
    """Split the refunded amount over the original tenders.

    In proportion to what each tender paid (largest remainder), never more than a tender has left; the
    refund that completes the bill gives back exactly what is left of each. Stored value comes back to
    principal and bonus in the proportion charged, points at the rate they were used.
    """
    if amount <= 0 or not tenders:
        return []
    done = _refunded_so_far(tenders)
    left = [t.amount_fen - done[t.pk]["amount"] for t in tenders]
    shares = left if completes else _capped_allocation(amount, [t.amount_fen for t in tenders], left)
    parts: list[RefundTender] = []
    for tender, share in zip(tenders, shares, strict=True):
        if share <= 0:
            continue
        before = done[tender.pk]
        part = RefundTender(refund=refund, tender=tender, amount_fen=share, destination=destination)
        if tender.kind == TenderKind.STORED_VALUE:
            if completes:
                principal = tender.principal_fen - before["principal"]
            else:
                principal, _bonus = _capped_allocation(
                    share,
                    [tender.principal_fen, tender.bonus_fen],
                    [tender.principal_fen - before["principal"], tender.bonus_fen - before["bonus"]],
                )
            part.principal_fen, part.bonus_fen = principal, share - principal
            part.destination = RefundDestination.ORIGINAL  # stored value always goes back to the wallet
        elif tender.kind == TenderKind.POINTS:
            part.points = prorate_cumulative(tender.points_used, before["amount"], share, tender.amount_fen)
            part.destination = RefundDestination.ORIGINAL  # points always come back as points
        elif tender.kind in (TenderKind.GIFT_CARD, TenderKind.PACKAGE):
            part.destination = RefundDestination.ORIGINAL  # back onto the card / into the package
        parts.append(part)
    return parts


def _capped_allocation(total: int, weights: list[int], caps: list[int]) -> list[int]:
    """Largest-remainder split of ``total`` by ``weights``, then any part above its cap moved to the
    parts with room, first come first served. Requires ``total <= sum(caps)``."""
    shares = allocate_int(total, weights)
    excess = 0
    for index, cap in enumerate(caps):
        if shares[index] > cap:
            excess += shares[index] - cap
            shares[index] = cap
    for index, cap in enumerate(caps):
        if excess == 0:
            break
        room = cap - shares[index]
        if room > 0:
            moved = min(room, excess)
            shares[index] += moved
            excess -= moved
    if excess:
        raise ValueError("refund exceeds what the tenders have left")
    return shares


def _refunded_so_far(tenders: list[Tender]) -> dict[int, dict[str, int]]:
    done = {t.pk: {"amount": 0, "principal": 0, "bonus": 0, "points": 0} for t in tenders}
    rows = RefundTender.objects.filter(tender__in=tenders).values_list(
        "tender_id", "amount_fen", "principal_fen", "bonus_fen", "points"
    )
    for tender_id, amount_fen, principal_fen, bonus_fen, points in rows:
        row = done[tender_id]
        row["amount"] += amount_fen
        row["principal"] += principal_fen
        row["bonus"] += bonus_fen
        row["points"] += points
    return done


def _refund_legs(
    bill: Bill, parts: list[RefundTender], accounts: dict[str, Account], amount: int, destination: str
) -> list[Leg]:
    """The mirror of the bill's CNY legs for the refunded part, with external money redirected to the
    member's principal when the refund goes to stored value."""
    legs: list[Leg] = []
    to_wallet_principal = 0
    principal = bonus = 0
    for part in parts:
        kind = part.tender.kind
        if kind in EXTERNAL_TENDERS:
            if destination == RefundDestination.STORED_VALUE:
                to_wallet_principal += part.amount_fen
            else:
                legs.append(Leg(accounts[f"tender_{kind}"], part.amount_fen))
        elif kind == TenderKind.STORED_VALUE:
            principal += part.principal_fen
            bonus += part.bonus_fen
        elif kind == TenderKind.POINTS:
            legs.append(Leg(accounts["points_offset"], part.amount_fen))
        elif kind == TenderKind.PACKAGE:
            legs.append(Leg(accounts["package_sessions"], part.amount_fen))
        elif kind == TenderKind.GIFT_CARD:
            legs.append(Leg(accounts[f"gift_card:{part.tender.gift_card_id}"], part.amount_fen))
    if principal or bonus or to_wallet_principal:
        assert bill.member is not None
        legs.extend(
            wallet_refund_legs(member=bill.member, principal=Money(principal + to_wallet_principal), bonus=Money(bonus))
        )
    legs.append(Leg(accounts["revenue"], -amount))
    return legs


def _refund_replay(actor: Actor, key: str, request_hash: str) -> Refund | None:
    first = Refund.objects.filter(organisation=actor.organisation, idempotency_key=key).first()
    if first is None:
        return None
    if first.request_hash != request_hash:
        raise conflict_error(key)
    return first


# --- settings -----------------------------------------------------------------------------------------


def sales_settings_for(store: Store) -> SalesSettings:
    """The store's checkout rules; the defaults (unsaved) when the store has not set any."""
    found = SalesSettings.objects.filter(store=store).first()
    return found if found is not None else SalesSettings(store=store)


def sales_settings_save(
    *,
    actor: Actor,
    store: Store,
    manual_discount_floor_bp: int | None = None,
    points_offset_cap_bp: int | None = None,
    points_per_yuan_offset: int | None = None,
) -> SalesSettings:
    """Change a store's checkout rules (store managers of that store, HQ)."""
    actor.require(Perm.STORE_PRICE_SET)
    store = store_get(actor, store.pk)
    with transaction.atomic():
        row, _ = SalesSettings.objects.select_for_update().get_or_create(store=store)
        changes: dict[str, int] = {}
        for name, value, low, high in (
            ("manual_discount_floor_bp", manual_discount_floor_bp, 0, 10_000),
            ("points_offset_cap_bp", points_offset_cap_bp, 0, 10_000),
            ("points_per_yuan_offset", points_per_yuan_offset, 1, 1_000_000),
        ):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValidationFailed(
                    "sales.invalid_setting",
                    zh=f"{name}：应为 {low} 到 {high} 的整数。",
                    en=f"{name}: a whole number from {low} to {high}.",
                    field=name,
                )
            setattr(row, name, value)
            changes[name] = value
        row.save()
        audit_record(actor=actor, action="sales.settings_save", obj=store, detail=changes)
    return row


# --- internals ------------------------------------------------------------------------------------------


def _check_key(key: str) -> str:
    return validate_key(key)


def _derived_key(key: str, suffix: str) -> str:
    """``<key>:<suffix>`` for the journals of one operation; a long key is shortened to its SHA-256 so the
    result stays inside the ledger's 128 characters."""
    base = key if len(key) <= _DERIVED_KEY_BASE_MAX else "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return f"{base}:{suffix}"


def _staff_id(actor: Actor) -> int | None:
    return actor.staff.pk if actor.staff is not None else None


def _zone(store: Store) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(store.time_zone or "Asia/Shanghai")


def _bills_in_scope(actor: Actor) -> QuerySet[Bill]:
    qs = Bill.objects.filter(organisation=actor.organisation)
    if actor.staff is not None and not actor.staff.sees_all_stores:
        qs = qs.filter(store__in=stores_visible(actor))
    return qs


def _lock_bill(actor: Actor, bill: Bill) -> Bill:
    try:
        return (
            _bills_in_scope(actor)
            .select_for_update(of=("self",))
            .select_related("store", "member", "organisation")
            .get(pk=bill.pk)
        )
    except Bill.DoesNotExist:
        raise not_found("sales.bill_not_found", "消费单", "Bill") from None


def _lock_open_bill(actor: Actor, bill: Bill) -> Bill:
    locked = _lock_bill(actor, bill)
    _require_open(locked)
    return locked


_STATUS_ZH: dict[str, str] = {BillStatus.OPEN: "未结账", BillStatus.COMPLETED: "已结账", BillStatus.VOIDED: "已作废"}


def _require_open(bill: Bill) -> None:
    if bill.status != BillStatus.OPEN:
        raise Conflict(
            "sales.bill_not_open",
            zh=f"消费单 {bill.number} 状态为「{_STATUS_ZH.get(bill.status, bill.status)}」，不能再修改。",
            en=f"Bill {bill.number} is {bill.status} and can no longer be changed.",
        )


_BILL_BY_KEY: PreparedQuery[Bill] = PreparedQuery(
    lambda organisation_id, key: (
        Bill.objects.filter(organisation_id=organisation_id, idempotency_key=key)
        .select_related("store", "member")
        .order_by("pk")[:1]
    ),
    [int, str],
)


def _bill_replay(actor: Actor, key: str, request_hash: str) -> Bill | None:
    first = _BILL_BY_KEY.first(actor.organisation.pk, key)
    if first is None:
        return None
    if first.request_hash != request_hash or first.status != BillStatus.COMPLETED:
        raise conflict_error(key)
    return first


def _checkout_store(actor: Actor) -> Store:
    if actor.store is None:
        raise ValidationFailed(
            "sales.store_required",
            zh="请先选择当前门店。",
            en="Choose the current store first.",
            field="store",
        )
    store = store_get(actor, actor.store.pk)
    if not store.is_active:
        raise Conflict("sales.store_inactive", zh=f"门店 {store} 已停用。", en=f"Store {store} is not active.")
    return store


def _checkout_store_query(
    organisation_id: int,
    store_id: int,
    member_id: int,
    window_start: datetime,
    window_end: datetime,
    staff_id: int | None = None,
) -> QuerySet[Store]:
    """The acting store as ``stores_visible`` scopes it (``staff_id`` None: an HQ actor who sees every store),
    with the checkout's rules as scalar subqueries on its row, and the tier the member ``member_id`` holds (0:
    a walk-in; read here only as a hint for the member the checkout then reads and scopes itself), with what
    the upgrade check after her bill needs (``loyalty.selectors.growth_seen_annotations``: her growth paid
    between the window's bounds)."""
    settings_row = SalesSettings.objects.filter(store=OuterRef("pk"))
    return (
        stores_visible_by_ids(organisation_id, staff_id)
        .filter(pk=store_id)
        .annotate(
            _has_sales_settings=Subquery(settings_row.values("pk")[:1]),
            _floor_bp=Subquery(settings_row.values("manual_discount_floor_bp")[:1]),
            _cap_bp=Subquery(settings_row.values("points_offset_cap_bp")[:1]),
            _per_yuan=Subquery(settings_row.values("points_per_yuan_offset")[:1]),
            _spend_order=spend_order_subquery("pk"),
            _lifetime=points_lifetime_subquery("organisation_id"),
            _promotions_version=promotions_version_subquery("organisation_id"),
            _tiers_version=tiers_version_subquery("organisation_id"),
            _held_tier_id=held_tier_subquery(member_id),
            _rules_version=rules_version_subquery("organisation_id"),
            _catalog_version=catalog_version_subquery("organisation_id"),
            **growth_seen_annotations(organisation_id, member_id, (window_start, window_end)),
        )
    )


# Compiled once per connection (meiye.core.db.prepared), for an HQ actor and for one who sees her own stores.
_CHECKOUT_RULES = "_has_sales_settings"  # an annotation of _checkout_store_query: the row carries the rules
_CHECKOUT_STORE_ANY: PreparedQuery[Store] = PreparedQuery(_checkout_store_query, [int, int, int, datetime, datetime])
_CHECKOUT_STORE_OWN: PreparedQuery[Store] = PreparedQuery(
    _checkout_store_query, [int, int, int, datetime, datetime, int]
)
_TIER_MEMBER = "_held_tier_member_id"  # on a row of _checkout_store_query: whose held tier it carries
_SEEN_ON = "_growth_seen_on"  # on a row of _checkout_store_query: the day and zone its growth window was taken in
# The time zone of each store as last read by this process: the growth window read with a store's row is taken
# in it before the row says (a store that changed its zone since is read right, and its window not used).
_STORE_ZONES: dict[int, str] = {}


def checkout_store_get(actor: Actor, store_id: int | str, member_id: int | None = None) -> Store:
    """``org.selectors.store_get`` with the checkout's rules on the row (``_checkout_store_query``) and the tier
    the member ``member_id`` holds: an API checkout reads its acting store this way, and the checkout then reads
    it no more (nor the member's tier, when she is that member)."""
    pk = store_pk(store_id)
    zone = _STORE_ZONES.get(pk, django_settings.TIME_ZONE)
    tz = ZoneInfo(zone)
    on = timezone.localtime(timezone.now(), tz).date()
    start, end = growth_window_bounds(on, tz)
    store = first_in_scope(actor, _CHECKOUT_STORE_ANY, _CHECKOUT_STORE_OWN, pk, member_id or 0, start, end)
    if store is None:
        raise not_found("store.not_found", "门店", "Store")
    _STORE_ZONES[store.pk] = store.time_zone
    setattr(store, _TIER_MEMBER, member_id)
    setattr(store, _SEEN_ON, (on, zone))
    return store


def _checkout_store_and_config(actor: Actor, member_id: int | None = None) -> tuple[Store, _CheckoutConfig]:
    """``_checkout_store`` with the rules a checkout reads (sales settings, the wallet's spend order, how
    long points last, the tiers version and the member's held tier) in the same query, as scalar subqueries on
    the store's row (NULL: no settings row, the defaults apply). No query when the acting store was read that
    way (``checkout_store_get``) for the same member."""
    if actor.store is None:
        return _checkout_store(actor), _CheckoutConfig(settings=SalesSettings())  # raises store_required
    known = _CHECKOUT_RULES in actor.store.__dict__ and getattr(actor.store, _TIER_MEMBER, None) == member_id
    store = actor.store if known else checkout_store_get(actor, actor.store.pk, member_id)
    if not store.is_active:
        raise Conflict("sales.store_inactive", zh=f"门店 {store} 已停用。", en=f"Store {store} is not active.")
    row: Any = store
    if row._has_sales_settings is not None:
        settings = SalesSettings(
            store=store,
            manual_discount_floor_bp=row._floor_bp,
            points_offset_cap_bp=row._cap_bp,
            points_per_yuan_offset=row._per_yuan,
        )
        settings._state.adding = False  # it is the stored row's values
    else:
        settings = SalesSettings(store=store)
    seen_on, seen_zone = getattr(store, _SEEN_ON)
    return store, _CheckoutConfig(
        settings=settings,
        spend_order=spend_order_or_default(row._spend_order),
        points_lifetime_months=points_lifetime_or_default(row._lifetime),
        promotions_version=row._promotions_version,
        tiers_version=row._tiers_version,
        held_tier_id=row._held_tier_id,
        rules_version=row._rules_version,
        catalog_version=row._catalog_version,
        growth_seen=GrowthSeen(
            on=seen_on,
            zone=seen_zone,
            earned_id=row._seen_earned_id,
            version=row._seen_version,
            growth=row._seen_growth,
        )
        if member_id
        else None,
    )


def _explain_key_clash(actor: Actor, key: str) -> None:
    """After an IntegrityError that is not a replay of the bill: if a journal key derived from ``key`` was
    already used by something else (a refund or a recharge with the same key), say so as the ledger did
    when it looked keys up one by one (``ledger.idempotency_conflict``); otherwise let the error stand."""
    derived = [_derived_key(key, suffix) for suffix in ("cny", "pts-spend", "pts-earn", "grw")]
    clash = (
        Journal.objects.filter(organisation_id=actor.organisation.pk, idempotency_key__in=derived)
        .values_list("idempotency_key", flat=True)
        .first()
    )
    if clash is not None:
        raise Conflict(
            "ledger.idempotency_conflict",
            zh=f"幂等键 {clash!r} 已用于另一笔内容不同的记账，请换一个新的键。",
            en=f"Idempotency key {clash!r} was already used for a different posting; use a new key.",
            field="idempotency_key",
        ) from None


def _member_merged(bill: Bill) -> bool:
    return bill.member_id is not None and Member.objects.filter(pk=bill.member_id, status=MemberStatus.MERGED).exists()


def _lock_live_member(bill: Bill) -> None:
    """Lock the bill's member row and refuse if she was merged, erased or stopped since the bill was opened.

    Locking the member first also orders this checkout behind a member merge (which locks the member
    rows before moving any balance), so the two cannot deadlock on balance rows."""
    if bill.member_id is None:
        return
    status = (
        Member.objects.select_for_update(no_key=True).filter(pk=bill.member_id).values_list("status", flat=True).first()
    )
    if status != MemberStatus.ACTIVE:
        raise Conflict(
            "sales.member_inactive",
            zh=f"消费单 {bill.number} 的会员已被合并、注销或停用，请作废此单后重新开单。",
            en=f"The member of bill {bill.number} was merged, erased or deactivated; void it and open a new bill.",
            field="member",
        )


def _checkout_member(actor: Actor, member: Member | None, *, known: Member | None = None) -> Member | None:
    """The checkout's member as ``member_get`` reads her, refused unless active. ``known``: she was just read
    that way (the stored-value payment gate) and is not read again: reading her inside the transaction would
    not lock her either, so a change committed in between is the same race as one committed just after."""
    if member is None:
        return None
    found = known if known is not None and known.pk == member.pk else member_get(actor, member.pk)
    if found.status != MemberStatus.ACTIVE:
        raise Conflict(
            "sales.member_inactive",
            zh=f"会员 {found} 不是正常状态，不能消费。",
            en=f"Member {found} is not active.",
            field="member",
        )
    return found


def _member_snapshot(member: Member | None) -> dict[str, Any]:
    """The member's tier and price rules at the time of the bill (``loyalty.tiers.member_tier_info``);
    the pricing and earning steps read them, and the receipt shows the tier."""
    if member is None:
        return {}
    return {"member_no": member.member_no, "tier": None, "tier_name": "", **member_tier_info(member)}


def _insert_bill(
    actor: Actor,
    store: Store,
    member: Member | None,
    *,
    key: str | None,
    request_hash: str,
    lines: Sequence[BillLine] = (),
    numbered: bool = True,
    unless_key_used: bool = False,
    key_later: bool = False,
) -> Bill:
    """Insert the bill (numbered, with the totals of ``lines``) and point the lines at it.

    ``unless_key_used``: a bill that already holds ``key`` makes the INSERT write nothing (``ON CONFLICT DO
    NOTHING``) rather than fail; the bill returned then has no ``pk``, and the transaction is still usable.
    With ``key_later`` as well, in a pipelined block the INSERT is queued (``fastwrite.insert_rows_or_skip``):
    its answer travels with the next statement waited for, and only after ``settle()`` does a ``pk`` still None
    mean the key was taken (``_complete`` settles after its balance lock; the lines get the key then).

    ``numbered=False``: the bill gets a provisional number and the caller takes the store's next number as its
    last write (``bill_open`` at once, the one-shot checkout in ``_complete``), so the store's sequence row —
    which every bill of the store waits for, until COMMIT, to keep numbers gapless — is held only for the end
    of the transaction. It must be every transaction's LAST lock, and the rows a bill references must not be
    locked ``FOR UPDATE`` by anyone who may wait for it: the bill's foreign keys are checked at COMMIT (``FOR
    KEY SHARE``), after the sequence is taken. So member rows used as locks are ``FOR NO KEY UPDATE``, and a
    lock with ``select_related`` names its own table (``of=("self",)``), never a store's row."""
    bill = Bill(
        organisation=actor.organisation,
        store=store,
        member=member,
        number=_next_number(store) if numbered else f"{PROVISIONAL_NUMBER}{uuid.uuid4().hex}",
        created_by=actor.staff,
        member_snapshot=_member_snapshot(member),
        idempotency_key=key,
        request_hash=request_hash,
    )
    _apply_totals(bill, lines)
    if unless_key_used and key is not None:
        if not insert_rows_or_skip([bill], match="idempotency_key", keys_later=key_later) and bill.pk is None:
            return bill
    else:
        insert_rows([bill])
    for line in lines:
        line.bill = bill
    return bill


def _next_number(store: Store) -> str:
    """The store's next bill number, taken under the sequence row's lock (held until commit, so numbers
    have no gaps or duplicates): one ``UPDATE … RETURNING`` (PostgreSQL; SQLite 3.35+), or on the store's
    first bill the row is created."""
    table = connection.ops.quote_name(BillSequence._meta.db_table)
    with hot_cursor(connection, 1) as cursor:
        cursor.execute(
            f"UPDATE {table} SET next_value = next_value + 1 WHERE store_id = %s RETURNING next_value - 1",  # noqa: S608
            [store.pk],
        )
        row = cursor.fetchone()
    if row is not None:
        number = int(row[0])
    else:
        sequence, _ = BillSequence.objects.select_for_update().get_or_create(store=store)
        number = sequence.next_value
        BillSequence.objects.filter(pk=sequence.pk).update(next_value=F("next_value") + 1)
    return f"{store.code.upper()}-{number:06d}"


def _number_bill(store: Store, bill: Bill, fields: Sequence[str] = ()) -> str:
    """PostgreSQL: take the store's next number (``_next_number``) and write it on the bill in ONE statement,
    waited for, with the bill's ``fields`` (its completion): the number comes back only if the bill's row took
    it. On a pipelined connection nothing after it needs an answer before COMMIT (the audit row and the
    idempotency record only set keys), so the COMMIT can travel with them
    (``core.db.pipeline.pipelined(commit=True)``) and the sequence row is released without waiting for this
    process again."""
    qn = connection.ops.quote_name
    sequence, bills = qn(BillSequence._meta.db_table), qn(Bill._meta.db_table)
    assignments, values = update_assignments(bill, fields) if fields else ("", [])
    sql = (
        f"WITH n AS (UPDATE {sequence} SET next_value = next_value + 1 WHERE store_id = %s "  # noqa: S608
        "RETURNING next_value - 1 AS v) "
        f"UPDATE {bills} SET {assignments}{', ' if assignments else ''}"
        "number = %s || CASE WHEN n.v < 1000000 THEN lpad(n.v::text, 6, '0') "
        f"ELSE n.v::text END FROM n WHERE {bills}.id = %s RETURNING {bills}.number"
    )
    params = [store.pk, *values, f"{store.code.upper()}-", bill.pk]
    with hot_cursor(connection, len(params)) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is not None:
        return str(row[0])
    number = _next_number(store)  # the store's first bill: its sequence row is created
    bill.number = number
    update_row(bill, [*fields, "number"])
    return number


def _items_priced_query(organisation_id: int, store_id: int, *item_ids: int) -> QuerySet[Item]:
    return (
        Item.objects.filter(organisation_id=organisation_id, pk__in=item_ids)
        .select_related("category")
        .annotate(
            store_price_fen=Subquery(
                StorePrice.objects.filter(store_id=store_id, item=OuterRef("pk")).values("price_fen")[:1]
            ),
            earning_rate=earning_rate_subquery(organisation_id, "category__earning_category"),
        )
    )


# The checkout's items with prices and rates, compiled once per connection and number of items.
_ITEMS_PRICED: PreparedQuery[Item] = PreparedQuery(_items_priced_query, [int, int, int], variadic=True)


# The checkout's priced items, copied per process by (organisation, store) while the catalogue stamp read with the
# store row is the one copied (``catalog.models.CatalogVersion``): {key: (stamp, when copied, {item id: item})}.
# The instances are shared by the requests and threads of the process and must not be modified. A copy older than
# ITEMS_COPY_SECONDS is read again, so a write around the catalogue's services is priced within that time.
_ITEMS_COPY: dict[tuple[int, int], tuple[int, float, dict[int, Item]]] = {}
ITEMS_COPY_SECONDS = 60.0


def _items_by_id(
    actor: Actor, item_ids: list[int], *, store: Store | None = None, version: int | None = None
) -> dict[int, Item]:
    """The items with their categories; with ``store``, also annotated with ``store_price_fen`` (the store's
    own price, as ``catalog.selectors.store_prices``) and ``earning_rate`` (points per 元 of the category,
    as ``loyalty.selectors.earning_rates``), NULL where there is none — all in one query, or none when
    ``version``, the catalogue stamp read with the store, is that of this process's copy and it has them all."""
    wanted = sorted(set(item_ids))
    if store is not None and version is not None:
        rows = _items_copied(actor.organisation.pk, store.pk, version, wanted)
    elif store is not None:
        rows = _ITEMS_PRICED.all(actor.organisation.pk, store.pk, *wanted)
    else:
        rows = list(Item.objects.filter(organisation=actor.organisation, pk__in=wanted).select_related("category"))
    found = {item.pk: item for item in rows}
    missing = sorted(set(item_ids) - set(found))
    if missing:
        raise NotFound(
            "catalog.item_not_found",
            zh=f"找不到项目或产品 {missing}。",
            en=f"Item(s) {missing} not found.",
            field="lines",
            extra={"items": missing},
        )
    return found


def _items_copied(organisation_id: int, store_id: int, version: int, wanted: list[int]) -> list[Item]:
    """``_ITEMS_PRICED`` through this process's copy for the catalogue stamp ``version``: the items it lacks are
    read (only those) and added; a copy of another stamp, or too old, is dropped."""
    key = (organisation_id, store_id)
    now = time.monotonic()
    copied = _ITEMS_COPY.get(key)
    known: dict[int, Item] = {}
    since = now
    if copied is not None and copied[0] == version and now - copied[1] < ITEMS_COPY_SECONDS:
        known, since = copied[2], copied[1]
    lacking = [pk for pk in wanted if pk not in known]
    if lacking:
        read = {item.pk: item for item in _ITEMS_PRICED.all(organisation_id, store_id, *lacking)}
        known = {**known, **read}  # a new dict: other threads may be reading the old one
        _ITEMS_COPY[key] = (version, since, known)
    return [known[pk] for pk in wanted if pk in known]


def _staff_by_id(actor: Actor, staff_ids: list[int]) -> dict[int, Staff]:
    if not staff_ids:
        return {}
    found = {s.pk: s for s in Staff.objects.filter(organisation=actor.organisation, pk__in=set(staff_ids))}
    missing = sorted(set(staff_ids) - set(found))
    if missing:
        raise NotFound(
            "staff.not_found",
            zh=f"找不到员工 {missing}。",
            en=f"Staff member(s) {missing} not found.",
            field="lines",
            extra={"staff": missing},
        )
    return found


def _pricing_context(
    actor: Actor, store: Store, member: Member | None, snapshot: dict[str, Any], items: list[Item]
) -> PricingContext:
    return PricingContext(
        actor=actor,
        store=store,
        member=member,
        settings=sales_settings_for(store),
        store_prices=store_prices(store, [item.pk for item in items]),
        member_info=dict(snapshot),
    )


def _build_line(
    ctx: PricingContext,
    item: Item,
    *,
    quantity: int,
    performed_by: Staff | None,
    sold_by: Staff | None,
    unit_price: Money | None,
    approver: Staff | None,
    approval_pin: str,
    approved_earlier: tuple[Staff, int] | None = None,
) -> BillLine:
    """A priced, unsaved line (the caller sets its bill). Checks the item, quantity and staff; prices it
    through the pipeline. ``approved_earlier`` (approver, approved unit price) is the approval a line
    changed in place already holds (``bill_line_update``)."""
    organisation_id = ctx.store.organisation_id
    if item.organisation_id != organisation_id:
        raise not_found("catalog.item_not_found", "项目或产品", "Item")
    if not item.is_active:
        raise ValidationFailed(
            "sales.item_inactive", zh=f"{item.name} 已停售。", en=f"{item.name} is no longer sold.", field="item"
        )
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_QUANTITY:
        raise ValidationFailed(
            "sales.invalid_quantity",
            zh=f"数量：应为 1 到 {MAX_QUANTITY} 的整数。",
            en=f"quantity: a whole number from 1 to {MAX_QUANTITY}.",
            field="quantity",
        )
    labels = {"performed_by": "服务美容师", "sold_by": "销售人员", "approver": "审批人"}
    for field_name, person in (("performed_by", performed_by), ("sold_by", sold_by), ("approver", approver)):
        if person is not None and (person.organisation_id != organisation_id or not person.is_active):
            raise ValidationFailed(
                "sales.invalid_staff",
                zh=f"{labels[field_name]}：不是本机构的在职员工。",
                en=f"{field_name}: not an active staff member of this organisation.",
                field=field_name,
            )
    # The beautician and the seller earn commission on the line: they must work in the bill's store
    # (or be HQ). The approver is checked by the pricing step (permission in this store plus PIN).
    for field_name, person in (("performed_by", performed_by), ("sold_by", sold_by)):
        if person is not None and not person.sees_all_stores and not person.stores.filter(pk=ctx.store.pk).exists():
            raise ValidationFailed(
                "sales.staff_not_in_store",
                zh=f"{labels[field_name]}：{person} 不在本门店工作。",
                en=f"{field_name}: {person} does not work in this store.",
                field=field_name,
            )
    draft = LineDraft(
        item=item, quantity=quantity, requested_price=unit_price, approver=approver, approval_pin=approval_pin
    )
    if approved_earlier is not None:
        draft.approved_earlier_by, draft.approved_earlier_fen = approved_earlier
    price_line(ctx, draft)
    if draft.unit_price_fen > draft.list_price_fen:
        raise ValueError(f"pricing raised {item} above its list price")
    return BillLine(
        item=item,
        kind=item.kind,
        name=item.name,
        quantity=quantity,
        list_price_fen=draft.list_price_fen,
        unit_price_fen=draft.unit_price_fen,
        line_total_fen=draft.line_total_fen,
        price_steps=draft.steps,
        earning_category=item.category.earning_category,
        commission_category=item.category.commission_category,
        performed_by=performed_by,
        sold_by=sold_by,
        approved_by=draft.approved_by,
    )


def _audit_manual_price(actor: Actor, bill: Bill, lines: list[BillLine]) -> None:
    for line in lines:
        manual = next((s for s in line.price_steps if s["step"] == "manual_adjustment"), None)
        if manual is None:
            continue
        audit_record(
            actor=actor,
            action="sales.price_override",
            obj=bill,
            detail={
                "line": line.pk,
                "item": line.item_id,
                "list_price_fen": line.list_price_fen,
                "unit_price_fen": line.unit_price_fen,
                "approved_by": line.approved_by_id,
            },
        )


def _apply_totals(bill: Bill, lines: Sequence[BillLine]) -> None:
    bill.list_total_fen = sum(line.list_price_fen * line.quantity for line in lines)
    bill.payable_total_fen = sum(line.line_total_fen for line in lines)
    bill.discount_total_fen = bill.list_total_fen - bill.payable_total_fen


def _recompute_totals(bill: Bill) -> None:
    _apply_totals(bill, list(bill.lines.all()))
    bill.save(update_fields=["list_total_fen", "payable_total_fen", "discount_total_fen"])


def _store_account_kinds(plans: Sequence[_TenderPlan]) -> set[str]:
    """The store's accounts a bill's tenders post to: revenue, one per external tender, the points offset,
    the package sessions' counterpart."""
    kinds = {"revenue", *(f"tender_{p.kind}" for p in plans if p.kind in EXTERNAL_TENDERS)}
    if any(p.kind == TenderKind.POINTS for p in plans):
        kinds.add("points_offset")
    if any(p.kind == TenderKind.PACKAGE for p in plans):
        kinds.add("package_sessions")
    return kinds


def _lock_refund_accounts(bill: Bill, tenders: list[Tender], destination: str) -> dict[str, Account]:
    """Lock every balance row a refund of ``bill`` may post to in ONE statement, in primary-key order, as a
    checkout does: the store's accounts, the wallet, points and growth of the bill's member and of the member
    she was merged into since, the organisation's points and growth accounts, the referrer's points if the bill
    earned a referral reward that still stands. The services the refund then
    calls (journal_post, journal_reverse, points_restore, points_take_back, growth_add) lock rows it already
    holds, so a refund and a checkout of the same member cannot deadlock. Returns the store's accounts by
    kind."""
    kinds = {t.kind for t in tenders}
    store_keys = {
        kind: store_account_key(store=bill.store, kind=kind)
        for kind in _store_account_kinds([_TenderPlan(kind=kind, amount_fen=0) for kind in kinds])
    }
    keys: list[AccountKey] = list(store_keys.values())
    member = bill.member
    if member is not None:
        for holder in merge_chain(member):
            if TenderKind.STORED_VALUE in kinds or destination == RefundDestination.STORED_VALUE:
                wallet_keys = wallet_account_keys(member=holder)
                keys.extend((wallet_keys.principal, wallet_keys.bonus))
            if TenderKind.POINTS in kinds or bill.points_earned > 0:
                keys.extend(
                    points_account_keys(
                        member=holder,
                        earn=bill.points_earned > 0 or TenderKind.POINTS in kinds,
                        spend=TenderKind.POINTS in kinds,
                    )
                )
            if bill.growth_journal_id is not None:
                keys.extend(growth_account_keys(member=holder))
        # The referrer's points, which a full refund's REFUND_HOOKS may take her referral reward back from.
        keys.extend(referral_reversal_account_keys(member=member, bill_id=bill.pk))
    gift_keys = {
        f"gift_card:{t.gift_card_id}": gift_card_account_key(t.gift_card)
        for t in tenders
        if t.kind == TenderKind.GIFT_CARD and t.gift_card is not None
    }
    keys.extend(gift_keys.values())
    locked = accounts_lock(organisation_id=bill.organisation_id, keys=keys)
    return {name: locked.get(key) for name, key in (*store_keys.items(), *gift_keys.items())}
