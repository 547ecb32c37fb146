"""Writes for gift cards (礼品卡): sell, void, the checkout's use and refund hooks, and the expiry job.

Ledger (ADR 0006; sign convention ADR 0003), all in ``CNY``:

- ``giftcards.sell``: store ``tender_<kind>`` −price×n, store ``gift_card_discount`` −(face−price)×n when the
  card is sold below its face value, each card +face;
- the checkout (``meiye.sales``) puts card −amount into the bill's own journal and calls
  ``gift_card_after_use``; a refund puts card +amount into the refund's journal and calls
  ``gift_card_after_refund``. A gift-card tender earns nothing;
- ``giftcards.breakage``: a single-use card's remainder after its one use: card −rest, store
  ``gift_card_breakage`` +rest (reversed, ``giftcards.breakage.reversal``, when that use is refunded in full);
- ``giftcards.expire``: what is left on a card after its last day: card −rest, store ``gift_card_breakage`` +rest;
- ``giftcards.void``: a card sold by mistake, unused, is taken back: card −face, the sale's tender +price,
  ``gift_card_discount`` +(face−price).

The store accounts are those of the store that sold the card (the liability is that store's).

Lock order: ledger balance rows first (``accounts_lock`` / ``journal_post``), then gift-card rows, the order the
checkout follows too (it locks its accounts, posts, then calls ``gift_card_after_use``).
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.core.errors import ApplicationError, Conflict, ValidationFailed
from meiye.core.idempotency import conflict_error, validate_key
from meiye.core.money import Money
from meiye.giftcards.models import CODE_LENGTH, GiftCard, GiftCardSale, GiftCardStatus, GiftCardUse
from meiye.giftcards.selectors import (
    CARD_KIND,
    CARD_OWNER,
    CNY,
    CODE_ALPHABET,
    code_index_of,
    expiring_cards,
    gift_card_account_key,
    gift_card_balance,
    gift_card_for_code,
    gift_card_get,
)
from meiye.ledger.models import Account, Balance, Journal
from meiye.ledger.services import (
    AccountKey,
    Leg,
    Posting,
    account_get_or_create,
    accounts_lock,
    journal_post,
    journal_reverse,
    journals_post,
)
from meiye.loyalty.selectors import local_today
from meiye.members.models import Member
from meiye.members.selectors import member_get
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.wallet.services import check_tender, store_account, store_account_key

__all__ = [
    "BREAKAGE_KIND",
    "EXPIRY_BATCH",
    "MAX_QUANTITY",
    "gift_card_account_key",
    "gift_card_after_refund",
    "gift_card_after_use",
    "gift_card_check",
    "gift_card_for_code",
    "gift_card_sell",
    "gift_card_void",
    "gift_cards_expire_due",
    "gift_cards_expiry_count",
]

BREAKAGE_KIND = "gift_card_breakage"  # a store's CNY sink: value left on expired / single-use cards
DISCOUNT_KIND = "gift_card_discount"
MAX_QUANTITY = 100
EXPIRY_BATCH = 500
_REF_TYPE = "giftcards.GiftCard"


# --- Selling -------------------------------------------------------------------------------------------------


def gift_card_sell(
    *,
    actor: Actor,
    face: Money,
    price: Money,
    tender: str,
    external_ref: str = "",
    multi_use: bool = True,
    expires_on: date,
    buyer: Member | None = None,
    quantity: int = 1,
    idempotency_key: str,
) -> list[GiftCard]:
    """Sell ``quantity`` cards of face value ``face`` for ``price`` each in the actor's store: one
    ``giftcards.sell`` journal, one audit row. Returns the cards with their codes (show them once).

    Refusals: ``giftcard.store_required``, ``giftcard.invalid_face``, ``giftcard.invalid_price`` (price above the
    face value, or not positive), ``giftcard.invalid_quantity`` (1 to 100), ``giftcard.invalid_tender``,
    ``giftcard.invalid_expiry`` (a day before today), ``input.too_long`` (external_ref). Needs ``sales.checkout``.

    Idempotent per (organisation, key): the same request again returns the same cards and writes nothing; a
    different request under the key is refused with ``idempotency.key_reused``.
    """
    actor.require(Perm.CHECKOUT)
    store = actor.store
    if store is None or store.organisation_id != actor.organisation.pk:
        raise ValidationFailed(
            "giftcard.store_required",
            zh="请先选择当前门店再售卡。",
            en="Choose the current store before selling gift cards.",
            field="store",
        )
    if not isinstance(face, Money) or face.fen <= 0:
        raise ValidationFailed(
            "giftcard.invalid_face",
            zh="面值：必须大于 0。",
            en="face: the face value must be more than 0.",
            field="face",
        )
    if not isinstance(price, Money) or price.fen <= 0 or price > face:
        raise ValidationFailed(
            "giftcard.invalid_price",
            zh=f"售价：必须大于 0 且不高于面值 {face}。",
            en=f"price: must be more than 0 and not above the face value {face}.",
            field="price",
        )
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise ValidationFailed(
            "giftcard.invalid_quantity",
            zh=f"数量：一次可售 1 到 {MAX_QUANTITY} 张。",
            en=f"quantity: 1 to {MAX_QUANTITY} cards per sale.",
            field="quantity",
        )
    check_tender(tender, code="giftcard.invalid_tender")
    today = local_today(store)
    if not isinstance(expires_on, date) or expires_on < today:
        raise ValidationFailed(
            "giftcard.invalid_expiry",
            zh=f"有效期至：不能早于今天（{today.isoformat()}）。",
            en=f"expires_on: must not be before today ({today.isoformat()}).",
            field="expires_on",
        )
    external_ref = (external_ref or "").strip()
    if len(external_ref) > 64:
        raise ValidationFailed(
            "input.too_long",
            zh="支付流水号：最多 64 个字符。",
            en="external_ref: at most 64 characters.",
            field="external_ref",
        )
    if buyer is not None:
        buyer = member_get(actor, buyer.pk)
    key = validate_key(idempotency_key)
    request = {
        "store_id": store.pk,
        "quantity": quantity,
        "face_fen": face.fen,
        "price_fen": price.fen,
        "multi_use": bool(multi_use),
        "expires_on": expires_on.isoformat(),
        "tender": tender,
        "external_ref": external_ref,
        "buyer_id": buyer.pk if buyer is not None else None,
    }
    with transaction.atomic():
        first = _sale_replay(actor, key, request)
        if first is not None:
            return list(first.cards.order_by("id"))
        try:
            with transaction.atomic():
                sale = GiftCardSale.objects.create(
                    organisation=actor.organisation,
                    store=store,
                    quantity=quantity,
                    face_fen=face.fen,
                    price_fen=price.fen,
                    multi_use=bool(multi_use),
                    expires_on=expires_on,
                    tender=tender,
                    external_ref=external_ref,
                    buyer=buyer,
                    idempotency_key=key,
                    sold_by=actor.staff,
                )
        except IntegrityError:
            first = _sale_replay(actor, key, request)
            if first is None:
                raise
            return list(first.cards.order_by("id"))
        codes = _new_codes(actor.organisation.pk, quantity)
        cards = [
            GiftCard.objects.create(
                organisation=actor.organisation,
                sale=sale,
                code=code,
                code_index=code_index_of(code),
                face_fen=face.fen,
                price_fen=price.fen,
                multi_use=bool(multi_use),
                expires_on=expires_on,
                store=store,
                sold_by=actor.staff,
                sold_at=sale.sold_at,
                buyer=buyer,
                external_ref=external_ref,
            )
            for code in codes
        ]
        legs = [Leg(store_account(store=store, kind=f"tender_{tender}"), -price.fen * quantity)]
        if face.fen > price.fen:
            legs.append(Leg(store_account(store=store, kind=DISCOUNT_KIND), -(face.fen - price.fen) * quantity))
        legs += [Leg(_card_account(card), face.fen) for card in cards]
        sale.journal = journal_post(
            organisation_id=actor.organisation.pk,
            code="giftcards.sell",
            entries=legs,
            reference_type="giftcards.GiftCardSale",
            reference_id=str(sale.pk),
            staff_id=actor.staff.pk if actor.staff is not None else None,
            store_id=store.pk,
            idempotency_key=f"{key}:cny",
            memo=f"{tender} {external_ref}".strip(),
        )
        sale.save(update_fields=["journal"])
        audit_record(
            actor=actor,
            action="giftcards.sell",
            obj=sale,
            detail={
                "quantity": quantity,
                "face": face.as_decimal_string(),
                "price": price.as_decimal_string(),
                "tender": tender,
                "multi_use": bool(multi_use),
                "expires_on": expires_on.isoformat(),
                "cards": [card.masked_code for card in cards],
                "buyer": buyer.member_no if buyer is not None else None,
            },
        )
    return cards


def _new_codes(organisation_id: int, count: int) -> list[str]:
    """``count`` random 16-character codes (80 bits each) not yet used in the organisation."""
    codes: dict[str, str] = {}
    while len(codes) < count:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        codes.setdefault(code_index_of(code), code)
        if len(codes) == count:
            taken = set(
                GiftCard.objects.filter(organisation_id=organisation_id, code_index__in=codes).values_list(
                    "code_index", flat=True
                )
            )
            for index in taken:
                del codes[index]
    return list(codes.values())


def _sale_replay(actor: Actor, key: str, request: dict[str, Any]) -> GiftCardSale | None:
    first = GiftCardSale.objects.filter(organisation=actor.organisation, idempotency_key=key).first()
    if first is None:
        return None
    recorded = {
        "store_id": first.store_id,
        "quantity": first.quantity,
        "face_fen": first.face_fen,
        "price_fen": first.price_fen,
        "multi_use": first.multi_use,
        "expires_on": first.expires_on.isoformat(),
        "tender": first.tender,
        "external_ref": first.external_ref,
        "buyer_id": first.buyer_id,
    }
    if recorded != request:
        raise conflict_error(key)
    return first


# --- The checkout's calls --------------------------------------------------------------------------------------


def gift_card_check(card: GiftCard, amount_fen: int, on: date, balance_fen: int | None = None) -> None:
    """Whether ``amount_fen`` may be paid with the card on ``on``; raises, else returns None. No write.

    ``balance_fen`` is the card's balance as the checkout locked it (``accounts_lock`` with
    ``gift_card_account_key``); without it the balance is read. Refusals, in this order: ``giftcard.void``,
    ``giftcard.expired`` (after ``expires_on``), ``giftcard.used_up`` (a single-use card already used, or nothing
    left on the card), ``giftcard.invalid_amount``, ``giftcard.insufficient`` (``extra`` holds the balance).
    """
    if card.status == GiftCardStatus.VOID:
        raise ApplicationError(
            "giftcard.void",
            zh=f"礼品卡 {card.masked_code} 已作废，不能使用。",
            en=f"Gift card {card.masked_code} has been voided and cannot be used.",
            field="code",
        )
    if card.status == GiftCardStatus.EXPIRED or on > card.expires_on:
        raise ApplicationError(
            "giftcard.expired",
            zh=f"礼品卡 {card.masked_code} 已于 {card.expires_on.isoformat()} 过期。",
            en=f"Gift card {card.masked_code} expired after {card.expires_on.isoformat()}.",
            field="code",
            extra={"expires_on": card.expires_on.isoformat()},
        )
    if card.status == GiftCardStatus.USED_UP:
        raise _used_up(card)
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise ValidationFailed(
            "giftcard.invalid_amount",
            zh="礼品卡支付金额：必须大于 0。",
            en="amount: must be more than 0.",
            field="amount",
        )
    balance = balance_fen if balance_fen is not None else gift_card_balance(card).fen
    if balance <= 0:
        raise _used_up(card)  # a card read before another bill, under the lock now, spent it
    if amount_fen > balance:
        raise ApplicationError(
            "giftcard.insufficient",
            zh=f"礼品卡余额不足：余额 {Money(balance)}，本次需 {Money(amount_fen)}。",
            en=f"Not enough on the gift card: it holds {Money(balance)}, {Money(amount_fen)} is needed.",
            field="amount",
            extra={
                "balance": Money(balance).as_decimal_string(),
                "balance_fen": balance,
                "amount_fen": amount_fen,
            },
        )


def gift_card_after_use(
    *, actor: Actor, card: GiftCard, amount_fen: int, bill_id: int, balance_after_fen: int
) -> GiftCardUse:
    """Record a payment with the card, in the bill's transaction, after the bill's journal took card −amount.

    Writes the ``GiftCardUse``; marks the card used up when nothing is left, and a single-use card always: what
    is left on it goes to the selling store's ``gift_card_breakage`` (``giftcards.breakage``) in this same
    transaction. Refuses ``giftcard.used_up`` if the card was not active (a single-use card used twice).
    """
    if amount_fen <= 0 or balance_after_fen < 0:
        raise ValueError(f"amount {amount_fen} and balance after {balance_after_fen} must be positive / not negative")
    with transaction.atomic():
        locked = GiftCard.objects.select_for_update().get(pk=card.pk, organisation=actor.organisation)
        if locked.status != GiftCardStatus.ACTIVE:
            gift_card_check(locked, amount_fen, locked.expires_on, balance_after_fen + amount_fen)
        use = GiftCardUse.objects.create(
            organisation=actor.organisation,
            card=locked,
            bill_id=bill_id,
            amount_fen=amount_fen,
            store=actor.store,
            staff=actor.staff,
        )
        if balance_after_fen > 0 and not locked.multi_use:
            journal_post(
                organisation_id=locked.organisation_id,
                code="giftcards.breakage",
                entries=[
                    Leg(_card_account(locked), -balance_after_fen),
                    Leg(_breakage_account(locked), balance_after_fen),
                ],
                reference_type=_REF_TYPE,
                reference_id=str(locked.pk),
                staff_id=actor.staff.pk if actor.staff is not None else None,
                store_id=locked.store_id,
                idempotency_key=f"giftcards.breakage:{locked.pk}:{use.pk}",
                memo=f"single use, bill {bill_id}",
            )
        if balance_after_fen == 0 or not locked.multi_use:
            locked.status = GiftCardStatus.USED_UP
            locked.save(update_fields=["status", "updated_at"])
        card.status = locked.status
    return use


def gift_card_after_refund(*, actor: Actor, bill_id: int, amount_fen: int, card: GiftCard | None = None) -> GiftCard:
    """A refund of bill ``bill_id`` put ``amount_fen`` back on the card (the refund's own journal holds the leg
    card +amount); call it in the refund's transaction. ``card`` may be left out when the bill was paid with one
    gift card only.

    Marks the bill's uses refunded (the latest first; ``reversed`` once a use came back whole). The card becomes
    active again unless it is past its last day (then the next expiry job takes what came back). When every use
    of a single-use card came back, what its use sent to breakage comes back too (``giftcards.breakage.reversal``),
    so the card is whole again. Refuses ``giftcard.refund_exceeds_use``.
    """
    if amount_fen <= 0:
        raise ValueError(f"refund amount must be positive, got {amount_fen}")
    with transaction.atomic():
        uses = list(
            GiftCardUse.objects.select_for_update()
            .filter(organisation=actor.organisation, bill_id=bill_id)
            .order_by("-id")
        )
        card_ids = {use.card_id for use in uses}
        if card is not None:
            card_ids &= {card.pk}
        elif len(card_ids) > 1:
            raise ValueError(f"bill {bill_id} was paid with several gift cards: say which one the refund is for")
        if not card_ids:
            raise ApplicationError(
                "giftcard.refund_exceeds_use",
                zh=f"退款：账单 #{bill_id} 没有用这张礼品卡支付。",
                en=f"refund: bill #{bill_id} was not paid with this gift card.",
                field="amount",
            )
        card_id = card_ids.pop()
        uses = [use for use in uses if use.card_id == card_id]
        refundable = sum(use.amount_fen - use.refunded_fen for use in uses)
        if amount_fen > refundable:
            raise ApplicationError(
                "giftcard.refund_exceeds_use",
                zh=f"退款：退回礼品卡的金额 {Money(amount_fen)} 超过账单 #{bill_id} 用卡未退金额 {Money(refundable)}。",
                en=f"refund: {Money(amount_fen)} back to the gift card is more than the {Money(refundable)} bill #{bill_id} "
                "paid with it and has not refunded.",
                field="amount",
                extra={"refundable_fen": refundable},
            )
        rest = amount_fen
        for use in uses:
            part = min(rest, use.amount_fen - use.refunded_fen)
            if part <= 0:
                continue
            use.refunded_fen += part
            use.reversed = use.refunded_fen == use.amount_fen
            use.save(update_fields=["refunded_fen", "reversed"])
            rest -= part
            if not rest:
                break
        locked = GiftCard.objects.select_for_update(of=("self",)).select_related("store").get(pk=card_id)
        if locked.status != GiftCardStatus.VOID:
            if local_today(actor.store or locked.store) > locked.expires_on:
                locked.status = GiftCardStatus.EXPIRED
            else:
                if not locked.multi_use and not locked.uses.filter(reversed=False).exists():
                    _restore_breakage(actor, locked)
                locked.status = GiftCardStatus.ACTIVE
            locked.save(update_fields=["status", "updated_at"])
        if card is not None:
            card.status = locked.status
    return locked


def _used_up(card: GiftCard) -> ApplicationError:
    return ApplicationError(
        "giftcard.used_up",
        zh=f"礼品卡 {card.masked_code} 已用完（单次卡只能使用一次）。",
        en=f"Gift card {card.masked_code} is used up (a single-use card can be used once).",
        field="code",
    )


def _restore_breakage(actor: Actor, card: GiftCard) -> None:
    reversed_ids = Journal.objects.filter(reversal_of=OuterRef("pk"))
    for journal in Journal.objects.filter(
        organisation_id=card.organisation_id,
        code="giftcards.breakage",
        reference_type=_REF_TYPE,
        reference_id=str(card.pk),
    ).exclude(Exists(reversed_ids)):
        journal_reverse(
            journal=journal,
            staff_id=actor.staff.pk if actor.staff is not None else None,
            idempotency_key=f"giftcards.breakage.reversal:{journal.pk}",
        )


# --- Void -----------------------------------------------------------------------------------------------------


def gift_card_void(*, actor: Actor, card: GiftCard, reason: str, idempotency_key: str) -> GiftCard:
    """Take back a card sold by mistake, before it was used: ``giftcards.void`` (card −face, the sale's tender
    +price, ``gift_card_discount`` +(face−price)) at the selling store, the card ``void``, an audit row.

    Needs ``money.adjust``; a reason is required. Refusals: ``giftcard.void`` (already voided under another key),
    ``giftcard.expired``, ``giftcard.already_used`` (any use, or less than the face value left). A replay with the
    same key returns the voided card.
    """
    actor.require(Perm.MONEY_ADJUST)
    card = gift_card_get(actor, card.pk)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(
            "input.required", zh="作废原因：必填。", en="reason: this field is required.", field="reason"
        )
    if len(reason) > 200:
        raise ValidationFailed(
            "input.too_long", zh="作废原因：最多 200 个字符。", en="reason: at most 200 characters.", field="reason"
        )
    key = validate_key(idempotency_key)
    sale = card.sale
    tender_key = store_account_key(store=card.store, kind=f"tender_{sale.tender}")
    discount_key = store_account_key(store=card.store, kind=DISCOUNT_KIND)
    card_key = gift_card_account_key(card)
    journal_key = f"{key}:cny"
    with transaction.atomic():
        locked_accounts = accounts_lock(organisation_id=card.organisation_id, keys=[tender_key, discount_key, card_key])
        locked = GiftCard.objects.select_for_update().get(pk=card.pk)
        if locked.status == GiftCardStatus.VOID:
            first = Journal.objects.filter(organisation_id=card.organisation_id, idempotency_key=journal_key).first()
            if first is not None and first.reference_id == str(card.pk) and first.code == "giftcards.void":
                return locked
            raise Conflict(
                "giftcard.void",
                zh=f"礼品卡 {locked.masked_code} 已作废。",
                en=f"Gift card {locked.masked_code} has already been voided.",
            )
        if locked.status == GiftCardStatus.EXPIRED or local_today(card.store) > locked.expires_on:
            raise ApplicationError(
                "giftcard.expired",
                zh=f"礼品卡 {locked.masked_code} 已过期，不能作废退款。",
                en=f"Gift card {locked.masked_code} has expired; it cannot be voided and refunded.",
            )
        balance = locked_accounts.balance(locked_accounts.get(card_key))
        if locked.uses.exists() or balance != locked.face_fen:
            raise ApplicationError(
                "giftcard.already_used",
                zh=f"礼品卡 {locked.masked_code} 已使用过（余额 {Money(balance)}，面值 {Money(locked.face_fen)}），不能作废。",
                en=f"Gift card {locked.masked_code} has been used (it holds {Money(balance)} of {Money(locked.face_fen)}); "
                "it cannot be voided.",
                extra={"balance_fen": balance},
            )
        entries = [
            Leg(locked_accounts.get(card_key), -locked.face_fen),
            Leg(locked_accounts.get(tender_key), locked.price_fen),
        ]
        if locked.face_fen > locked.price_fen:
            entries.append(Leg(locked_accounts.get(discount_key), locked.face_fen - locked.price_fen))
        journals_post(
            organisation_id=card.organisation_id,
            postings=[
                Posting(
                    code="giftcards.void",
                    entries=entries,
                    reference_type=_REF_TYPE,
                    reference_id=str(locked.pk),
                    staff_id=actor.staff.pk if actor.staff is not None else None,
                    store_id=locked.store_id,
                    idempotency_key=journal_key,
                    memo=reason[:255],
                )
            ],
            locked=locked_accounts,
        )
        locked.status = GiftCardStatus.VOID
        locked.voided_at = timezone.now()
        locked.voided_by = actor.staff
        locked.void_reason = reason
        locked.save(update_fields=["status", "voided_at", "voided_by", "void_reason", "updated_at"])
        audit_record(
            actor=actor,
            action="giftcards.void",
            obj=locked,
            detail={
                "reason": reason,
                "face": Money(locked.face_fen).as_decimal_string(),
                "refunded": Money(locked.price_fen).as_decimal_string(),
                "tender": sale.tender,
            },
        )
    return locked


# --- Expiry ---------------------------------------------------------------------------------------------------


def gift_cards_expire_due(
    *,
    on: date,
    organisation_id: int | None = None,
    batch_size: int = EXPIRY_BATCH,
    progress: Callable[[int], None] | None = None,
) -> int:
    """The daily job: every card past its last day (``expires_on`` < ``on``) is marked expired and what is left
    on it moves to its store's ``gift_card_breakage`` (``giftcards.expire``, one journal per card). Returns the
    fen moved.

    Set-based, in batches of ``batch_size`` cards, one transaction each: lock the cards' and stores' balance rows
    in one ``accounts_lock``, post the journals in one ``journals_post``, mark the cards with one UPDATE. Idempotent:
    a card swept today holds nothing and is expired, so a second run finds nothing; its journal key
    ``giftcards.expire:<card>:<on>`` also stops a replay. Money a refund puts back on an expired card is swept
    by the next day's run.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    candidates = _expiry_candidates(on=on, organisation_id=organisation_id)
    by_org: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for pk, org_id, store_id in candidates:
        by_org[org_id].append((pk, store_id))
    moved = 0
    for org_id in sorted(by_org):
        rows = by_org[org_id]
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            moved += _expire_batch(org_id, on, batch)
            if progress is not None:
                progress(len(batch))
    return moved


def gift_cards_expiry_count(*, on: date, organisation_id: int | None = None) -> int:
    """How many cards ``gift_cards_expire_due`` would look at (for the command's progress bar)."""
    return len(_expiry_candidates(on=on, organisation_id=organisation_id))


def _expiry_candidates(*, on: date, organisation_id: int | None) -> list[tuple[int, int, int]]:
    holding = Balance.objects.filter(
        account__organisation_id=OuterRef("organisation_id"),
        account__owner_type=CARD_OWNER,
        account__owner_id=OuterRef("pk"),
        account__asset=CNY,
        account__kind=CARD_KIND,
        amount__gt=0,
    )
    qs = (
        expiring_cards(on=on, organisation_id=organisation_id)
        .annotate(holds=Exists(holding))
        .filter(Q(holds=True) | Q(status=GiftCardStatus.ACTIVE))
        .values_list("pk", "organisation_id", "store_id")
    )
    return sorted(set(qs))


def _expire_batch(organisation_id: int, on: date, batch: Sequence[tuple[int, int]]) -> int:
    card_keys = {pk: AccountKey(CARD_OWNER, pk, CNY, CARD_KIND, may_go_negative=False) for pk, _ in batch}
    breakage_keys = {
        store_id: AccountKey("store", store_id, CNY, BREAKAGE_KIND, may_go_negative=True) for _, store_id in batch
    }
    keys = {pk: f"giftcards.expire:{pk}:{on.isoformat()}" for pk, _ in batch}
    with transaction.atomic():
        locked = accounts_lock(organisation_id=organisation_id, keys=[*card_keys.values(), *breakage_keys.values()])
        done = set(
            Journal.objects.filter(organisation_id=organisation_id, idempotency_key__in=keys.values()).values_list(
                "idempotency_key", flat=True
            )
        )
        postings: list[Posting] = []
        moved = 0
        for pk, store_id in batch:
            rest = locked.balance(locked.get(card_keys[pk]))
            if rest <= 0 or keys[pk] in done:
                continue
            moved += rest
            postings.append(
                Posting(
                    code="giftcards.expire",
                    entries=[
                        Leg(locked.get(card_keys[pk]), -rest),
                        Leg(locked.get(breakage_keys[store_id]), rest),
                    ],
                    reference_type=_REF_TYPE,
                    reference_id=str(pk),
                    store_id=store_id,
                    idempotency_key=keys[pk],
                    memo=f"expired, job of {on.isoformat()}",
                )
            )
        journals_post(organisation_id=organisation_id, postings=postings, locked=locked, keys_claimed=True)
        GiftCard.objects.filter(pk__in=[pk for pk, _ in batch], status=GiftCardStatus.ACTIVE).update(
            status=GiftCardStatus.EXPIRED, updated_at=timezone.now()
        )
    return moved


# --- internals ---------------------------------------------------------------------------------------------------


def _card_account(card: GiftCard) -> Account:
    key = gift_card_account_key(card)
    return account_get_or_create(
        organisation_id=card.organisation_id,
        owner_type=key.owner_type,
        owner_id=key.owner_id,
        asset=key.asset,
        kind=key.kind,
        may_go_negative=key.may_go_negative,
    )


def _breakage_account(card: GiftCard) -> Account:
    return account_get_or_create(
        organisation_id=card.organisation_id,
        owner_type="store",
        owner_id=card.store_id,
        asset=CNY,
        kind=BREAKAGE_KIND,
        may_go_negative=True,
    )
