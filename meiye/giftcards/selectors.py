"""Reads of gift cards: by code (the checkout, the look-up screen), lists (masked), balances, uses.

Nothing here writes. Balances come from the ledger (the card's ``gift_card`` account).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db.models import QuerySet

from meiye.core.crypto import blind_index
from meiye.core.errors import NotFound
from meiye.core.money import Money
from meiye.giftcards.models import CODE_LENGTH, GiftCard, GiftCardStatus, GiftCardUse
from meiye.ledger.models import Balance
from meiye.ledger.services import AccountKey
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.org.selectors import visible_store_ids

CNY = "CNY"
CARD_OWNER = "giftcard"
CARD_KIND = "gift_card"
CODE_INDEX_KIND = "giftcard"
# Crockford's base 32: no I, L, O, U, so a code read aloud or typed from paper is not misread.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def normalise_code(raw: str) -> str:
    """What a person typed, as stored: upper case, without spaces or dashes; O read as 0, I and L as 1."""
    return re.sub(r"[\s\-]", "", raw or "").upper().translate(_READ_AS)


def code_index_of(code: str) -> str:
    return blind_index(normalise_code(code), kind=CODE_INDEX_KIND)


def format_code(code: str) -> str:
    """``ABCD-EFGH-JKMN-PQRS``: how a code is printed on the voucher."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def gift_card_account_key(card: GiftCard) -> AccountKey:
    """The card's ledger account (``giftcard``, card pk, ``CNY``, ``gift_card``; may not go negative), as a key
    for ``meiye.ledger.services.accounts_lock``. The checkout puts the leg (card −amount) into the bill's CNY
    journal itself."""
    return AccountKey(CARD_OWNER, card.pk, CNY, CARD_KIND, may_go_negative=False)


def gift_card_for_code(actor: Actor, code: str) -> GiftCard:
    """The organisation's card with this code, whatever its status (the caller checks it: ``gift_card_check``).

    Refused with ``giftcard.not_found`` for a code that is malformed or unknown here, without saying whether it
    exists in another organisation. Needs ``sales.checkout``. Any store of the organisation may take a card.
    """
    actor.require(Perm.CHECKOUT)
    normalised = normalise_code(code)
    card = None
    if len(normalised) == CODE_LENGTH and all(c in CODE_ALPHABET for c in normalised):
        card = (
            GiftCard.objects.filter(organisation=actor.organisation, code_index=code_index_of(normalised))
            .select_related("store")
            .first()
        )
    if card is None:
        raise NotFound(
            "giftcard.not_found",
            zh="礼品卡卡号：找不到这张卡，请核对 16 位卡号。",
            en="Gift card code: no such card; check the 16-character code.",
            field="code",
        )
    return card


def gift_card_get(actor: Actor, pk: int | str) -> GiftCard:
    """A card sold in a store the actor may see (for the list and void screens), else ``giftcard.not_found``.
    Needs ``sales.checkout`` or ``money.adjust``."""
    _require_card_access(actor)
    card = (
        GiftCard.objects.filter(organisation=actor.organisation, store_id__in=visible_store_ids(actor), pk=str(pk))
        .select_related("store", "sale")
        .first()
        if str(pk).isdigit()
        else None
    )
    if card is None:
        raise NotFound(
            "giftcard.not_found", zh="找不到礼品卡，或您无权查看。", en="Gift card not found, or not visible to you."
        )
    return card


def gift_card_balance(card: GiftCard) -> Money:
    """What is left on the card (0 before its account exists)."""
    return Money(gift_card_balances([card]).get(card.pk, 0))


def gift_card_balances(cards: Iterable[GiftCard]) -> dict[int, int]:
    """Each card's balance in fen, in one query."""
    ids = [card.pk for card in cards]
    if not ids:
        return {}
    rows = Balance.objects.filter(
        account__owner_type=CARD_OWNER, account__owner_id__in=ids, account__asset=CNY, account__kind=CARD_KIND
    ).values_list("account__owner_id", "amount")
    found = dict(rows)
    return {pk: int(found.get(pk, 0)) for pk in ids}


@dataclass(frozen=True, slots=True)
class CardFilter:
    status: str = ""
    store_id: int | None = None
    sold_from: date | None = None
    sold_to: date | None = None
    expires_before: date | None = None


def gift_cards(actor: Actor, filters: CardFilter | None = None) -> QuerySet[GiftCard]:
    """Cards sold in the stores the actor may see, newest first. Needs ``sales.checkout`` or ``money.adjust``."""
    _require_card_access(actor)
    f = filters or CardFilter()
    qs = GiftCard.objects.filter(organisation=actor.organisation, store_id__in=visible_store_ids(actor))
    if f.status:
        qs = qs.filter(status=f.status)
    if f.store_id is not None:
        qs = qs.filter(store_id=f.store_id)
    if f.sold_from is not None:
        qs = qs.filter(sold_at__date__gte=f.sold_from)
    if f.sold_to is not None:
        qs = qs.filter(sold_at__date__lte=f.sold_to)
    if f.expires_before is not None:
        qs = qs.filter(expires_on__lt=f.expires_before)
    return qs.select_related("store").order_by("-sold_at", "-id")


def gift_card_uses(card: GiftCard) -> QuerySet[GiftCardUse]:
    return card.uses.select_related("store").order_by("-at", "-id")


def gift_card_uses_for_bill(*, organisation_id: int, bill_id: int) -> list[GiftCardUse]:
    """The gift-card payments of a bill (for its refund), oldest first, with their cards."""
    return list(
        GiftCardUse.objects.filter(organisation_id=organisation_id, bill_id=bill_id)
        .select_related("card")
        .order_by("id")
    )


def expiring_cards(*, on: date, organisation_id: int | None = None) -> QuerySet[GiftCard]:
    """Cards past their last day on ``on`` that still hold value or are not yet marked expired."""
    qs = GiftCard.objects.filter(expires_on__lt=on).exclude(status=GiftCardStatus.VOID)
    if organisation_id is not None:
        qs = qs.filter(organisation_id=organisation_id)
    return qs


def _require_card_access(actor: Actor) -> None:
    if not actor.can(Perm.MONEY_ADJUST):
        actor.require(Perm.CHECKOUT)
