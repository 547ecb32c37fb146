"""Reads of member cards and payment security. Store-scoped through ``members.selectors.member_get``:
a card of a member the actor may not see is ``card.not_found``."""

from __future__ import annotations

from django.db.models import QuerySet

from meiye.cards.models import LIVE_STATUSES, CardAlias, CardSettings, CardStatus, MemberCard, PaymentPassword
from meiye.core.errors import ApplicationError, NotFound, not_found
from meiye.members.models import Member
from meiye.members.selectors import member_get
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.wallet.models import CardProduct

__all__ = [
    "card_for_number",
    "card_get",
    "card_products_active",
    "card_settings",
    "member_cards",
    "member_live_card",
    "normalise_number",
    "payment_auth_required",
    "payment_password_state",
]


def normalise_number(number: str) -> str:
    """A card number as stored: spaces removed, letters in upper case (a scanner or a typed number alike)."""
    return "".join((number or "").split()).upper()


def member_cards(member: Member) -> QuerySet[MemberCard]:
    """All the member's cards, live first then newest first, with product and successor."""
    return (
        MemberCard.objects.filter(member=member)
        .select_related("product", "replaced_by", "issued_store")
        .order_by("-id")
    )


def member_live_card(member: Member) -> MemberCard | None:
    """The member's active, frozen or lost card, if she has one (at most one)."""
    return MemberCard.objects.filter(member=member, status__in=LIVE_STATUSES).select_related("product").first()


def card_get(actor: Actor, card_id: int | str) -> MemberCard:
    """A card whose member the actor may see."""
    try:
        card = MemberCard.objects.select_related("product", "member").get(
            pk=int(card_id), organisation=actor.organisation
        )
    except (MemberCard.DoesNotExist, ValueError, TypeError):
        raise _card_not_found() from None
    _visible(actor, card)
    return card


def card_for_number(actor: Actor, number: str) -> MemberCard:
    """The card a number (or an imported old number) names, if its member is visible to the actor.

    A replaced or closed card's number never works again: ``card.replaced`` (``extra`` has the number of
    the card that replaced it) or ``card.closed``. A lost or frozen card is returned; paying with it is
    refused by ``stored_value_authorize``.
    """
    wanted = normalise_number(number)
    if not wanted:
        raise _card_not_found()
    card = (
        MemberCard.objects.select_related("product", "member", "replaced_by")
        .filter(organisation=actor.organisation, number=wanted)
        .first()
    )
    if card is None:
        alias = (
            CardAlias.objects.select_related("card__product", "card__member", "card__replaced_by")
            .filter(organisation=actor.organisation, number=wanted)
            .first()
        )
        card = alias.card if alias is not None else None
    if card is None:
        raise _card_not_found()
    _visible(actor, card)
    if card.status == CardStatus.REPLACED:
        successor = _current_successor(card)
        raise ApplicationError(
            "card.replaced",
            zh=f"卡号 {wanted}：该卡已补办新卡，旧卡号不能再使用（新卡号 {successor}）。",
            en=f"card number {wanted}: this card was replaced and its number no longer works (new card {successor}).",
            field="card_number",
            extra={"replaced_by": successor},
        )
    if card.status == CardStatus.CLOSED:
        raise ApplicationError(
            "card.closed",
            zh=f"卡号 {wanted}：该卡已销卡，不能再使用。",
            en=f"card number {wanted}: this card is closed and can no longer be used.",
            field="card_number",
        )
    return card


def card_products_active(actor: Actor) -> QuerySet[CardProduct]:
    """The organisation's card products that may be issued, by name."""
    return CardProduct.objects.filter(organisation=actor.organisation, active=True).order_by("name")


def card_settings(store: Store) -> CardSettings:
    """The store's card settings (an unsaved default row when it never set any)."""
    found = CardSettings.objects.filter(store=store).first()
    return found if found is not None else CardSettings(store=store)


def payment_password_state(member: Member) -> PaymentPassword | None:
    return PaymentPassword.objects.filter(member=member).first()


def payment_auth_required(member: Member, store: Store | None) -> bool:
    """Whether paying from the member's stored value in ``store`` needs her password or a one-time code:
    when she has set a password, or when the store requires it for everyone (ADR 0006)."""
    if PaymentPassword.objects.filter(member=member).exclude(password_hash="").exists():
        return True
    return store is not None and CardSettings.objects.filter(store=store, require_payment_auth=True).exists()


# --- internals -----------------------------------------------------------------------------------------------


def _card_not_found() -> NotFound:
    return not_found("card.not_found", "会员卡", "Card")


def _visible(actor: Actor, card: MemberCard) -> None:
    try:
        member_get(actor, card.member_id)
    except NotFound:
        # A merged member's old cards were moved to the survivor; any other invisible member is a 404.
        raise _card_not_found() from None


def _current_successor(card: MemberCard) -> str:
    seen = {card.pk}
    current = card
    while current.replaced_by_id is not None and current.replaced_by_id not in seen:
        seen.add(current.replaced_by_id)
        nxt = MemberCard.objects.filter(pk=current.replaced_by_id).first()
        if nxt is None:
            break
        current = nxt
    return current.number if current.pk != card.pk else ""
