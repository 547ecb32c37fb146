"""The checkout's side of cards and prepaid (ADR 0006).

- **Stored value** needs the member's payment password or a one-time code when she has set a password or
  her store requires it, and a lost, frozen or closed card stops it (``cards.services.stored_value_authorize``,
  called before the checkout's transaction so that a wrong password is counted even though the checkout
  fails).
- **Count-card sessions** pay for services on the bill: a ``package`` tender names the member's package item
  and a number of sessions; it covers that many units of the bill's lines of the item's service, at their
  price on this bill (``package_tender_values``). The bill's CNY journal posts the store's
  ``package_sessions`` −amount (like the points offset); the sessions leave the member's package in a
  ``packages.use`` journal. Sessions earn nothing: the package's sale earned.
- **Gift cards** pay like money held by the card: the card's account −amount in the bill's CNY journal. They
  earn nothing either.
- **Package sales**: a line of kind ``package`` issues the member's package, with its contract, once the bill
  is paid (``packages_issue_for_bill``).
- **Refunds** give sessions back (a bill paid with sessions is refunded whole) and put gift-card money back on
  the card; a package sold on a bill is refunded with the package refund (its own formula), not the bill's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from meiye.cards.services import stored_value_authorize
from meiye.core.errors import ApplicationError, Conflict, ValidationFailed
from meiye.giftcards import services as giftcards_services
from meiye.giftcards.models import GiftCard, GiftCardStatus
from meiye.giftcards.selectors import code_index_of, gift_card_for_code, normalise_code
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.packages import services as packages_services
from meiye.packages.models import PackageStatus, SessionUse
from meiye.packages.selectors import item_expired, member_item_get
from meiye.sales.models import BillLine, Tender, TenderKind
from meiye.sales.pricing import prorate_cumulative

PACKAGE_LINE_KIND = "package"


@dataclass(frozen=True)
class PackageTenderValue:
    """What one ``package`` tender covers on this bill."""

    member_item_id: int
    sessions: int
    amount_fen: int
    service_id: int
    performed_by_id: int | None  # the beautician of the first line the sessions pay for


def needs_stored_value_auth(tenders: Sequence[Any]) -> bool:
    return any(t.kind == TenderKind.STORED_VALUE for t in tenders)


def authorize_stored_value(*, actor: Actor, member: Member | None, tenders: Sequence[Any]) -> Member | None:
    """Refuse stored value before the checkout's transaction opens: card status, then password or code.
    Returns the member as ``member_get`` reads her when it read her (a stored-value tender), else None."""
    if member is None:
        return None  # the checkout refuses stored value for a walk-in customer itself
    tender = next((t for t in tenders if t.kind == TenderKind.STORED_VALUE), None)
    if tender is None:
        return None
    return stored_value_authorize(
        actor=actor,
        member=member,
        password=tender.payment_password,
        code=tender.payment_code,
        card_number=tender.card_number,
    )


def package_tender_values(
    actor: Actor, member: Member | None, lines: Sequence[BillLine], tenders: Sequence[Any]
) -> dict[int, PackageTenderValue]:
    """For each ``package`` tender (by its index): the member's package item, and the amount its sessions
    cover — the value of that many units of the bill's lines for the item's service, taken line by line,
    unit by unit (``prorate_cumulative``, so the units of a line add up to its total). No write."""
    wanted = [(index, t) for index, t in enumerate(tenders) if t.kind == TenderKind.PACKAGE]
    if not wanted:
        return {}
    values: dict[int, PackageTenderValue] = {}
    used_units: dict[int, int] = {}  # bill line (by position) -> units already paid with sessions
    for index, tender in wanted:
        where = f"tenders[{index}]"
        if member is None:
            raise ValidationFailed(
                "sales.member_required",
                zh=f"{where}：散客不能用次卡付款。",
                en=f"{where}: a walk-in customer cannot pay with package sessions.",
                field="tenders",
            )
        item_id, sessions = tender.package_item_id, tender.sessions
        if isinstance(item_id, bool) or not isinstance(item_id, int) or item_id <= 0:
            raise _bad(where, "请选择次卡项目（package_item）", "package_item: choose the member's package item")
        if isinstance(sessions, bool) or not isinstance(sessions, int) or sessions <= 0:
            raise _bad(where, "次数必须是正整数", "sessions must be a positive whole number")
        if tender.amount is not None or tender.points is not None:
            raise _bad(
                where, "次卡付款不填金额，金额按消费单上的项目计算", "a package tender states sessions, not an amount"
            )
        item = member_item_get(actor, item_id)
        if item.member_package.member_id != member.pk:
            raise _bad(where, "这张次卡不属于本单会员", "the package belongs to another member")
        amount = 0
        performed_by_id: int | None = None
        left = sessions
        for position, line in enumerate(lines):
            if left == 0:
                break
            if line.item_id != item.service_id:
                continue
            done = used_units.get(position, 0)
            take = min(left, line.quantity - done)
            if take <= 0:
                continue
            amount += prorate_cumulative(line.line_total_fen, done, take, line.quantity)
            used_units[position] = done + take
            left -= take
            if performed_by_id is None:
                performed_by_id = line.performed_by_id
        if left:
            raise ValidationFailed(
                "sales.package_no_line",
                zh=f"{where}：消费单上没有足够的「{item.name}」可用次卡支付（还差 {left} 次）。",
                en=f"{where}: the bill has not enough {item.name} to pay {sessions} sessions for ({left} short).",
                field="tenders",
                extra={"missing_sessions": left},
            )
        if amount <= 0:
            raise _bad(
                where,
                f"「{item.name}」在本单上免费，不需要用次卡支付",
                f"{item.name} costs nothing on this bill; no sessions are needed",
            )
        values[index] = PackageTenderValue(
            member_item_id=item.pk,
            sessions=sessions,
            amount_fen=amount,
            service_id=item.service_id,
            performed_by_id=performed_by_id,
        )
    return values


def gift_cards_for_tenders(actor: Actor, tenders: Sequence[Any]) -> dict[int, GiftCard]:
    """The gift card of each ``gift_card`` tender (by its index); each card at most once on a bill."""
    wanted = [(index, t) for index, t in enumerate(tenders) if t.kind == TenderKind.GIFT_CARD]
    if not wanted:
        return {}
    cards: dict[int, GiftCard] = {}
    seen: set[int] = set()
    for index, tender in wanted:
        where = f"tenders[{index}]"
        if not (tender.gift_card_code or "").strip():
            raise _bad(where, "请填写礼品卡卡号（gift_card_code）", "gift_card_code: enter the gift card's code")
        try:
            card = gift_card_for_code(actor, tender.gift_card_code)
        except ApplicationError as exc:
            raise at_tender(index, exc) from None
        if card.pk in seen:
            raise _bad(where, "同一张礼品卡在一张单上只能用一次", "a gift card may be used once on a bill")
        seen.add(card.pk)
        cards[index] = card
    return cards


def check_prepaid_refundable(bill_id: int, tender_kinds: set[str], on: Any) -> None:
    """A refund must be able to give back what the bill took: the sessions to a package that is still usable
    (not refunded, transferred or expired since, S-22), the money to a gift card that has not expired since."""
    if TenderKind.PACKAGE in tender_kinds:
        uses = SessionUse.objects.filter(bill_id=bill_id).select_related("member_item__member_package")
        for use in uses:
            item = use.member_item
            package = item.member_package
            gone = package.status not in (PackageStatus.ACTIVE, PackageStatus.FROZEN)
            if gone or item_expired(item, on, member_package=package):  # a frozen package is judged at its freeze
                raise Conflict(
                    "refund.package_closed",
                    zh=f"本单用「{package.name}」付款，该次卡已退款、转让或过期，次数无法退回：请改用其他方式处理。",
                    en=(
                        f"This bill was paid with sessions of {package.name}, which has been refunded, transferred "
                        "or has expired since: the sessions cannot go back."
                    ),
                    field="lines",
                )
    if TenderKind.GIFT_CARD in tender_kinds:
        for tender in Tender.objects.filter(bill_id=bill_id, kind=TenderKind.GIFT_CARD).select_related("gift_card"):
            card = tender.gift_card
            if card is not None and (
                card.status in (GiftCardStatus.EXPIRED, GiftCardStatus.VOID) or card.expires_on < on
            ):
                raise Conflict(
                    "refund.gift_card_expired",
                    zh=f"礼品卡 {card.masked_code} 已过期或作废，退回的钱会作废：请联系店长以其他方式退款。",
                    en=(
                        f"Gift card {card.masked_code} has expired or been voided: money put back on it would be lost. "
                        "Ask the manager to refund another way."
                    ),
                    field="lines",
                )


def package_lines(lines: Sequence[BillLine]) -> list[BillLine]:
    return [line for line in lines if line.kind == PACKAGE_LINE_KIND]


def check_package_buyer(member: Member | None, lines: Sequence[BillLine]) -> None:
    if member is None and package_lines(lines):
        raise ValidationFailed(
            "sales.member_required",
            zh="次卡/套餐只能卖给会员：请先选择会员。",
            en="A package can only be sold to a member: choose the member first.",
            field="member",
        )


def at_tender(index: int, exc: ApplicationError) -> ApplicationError:
    """The same refusal, said of ``tenders[index]`` (so a screen shows it beside that tender)."""
    return type(exc)(
        exc.code,
        zh=f"tenders[{index}]：{exc.message_zh}",
        en=f"tenders[{index}]: {exc.message_en}",
        field="tenders",
        extra=exc.extra,
    )


def _bad(where: str, zh: str, en: str) -> ValidationFailed:
    return ValidationFailed("sales.invalid_tender", zh=f"{where}：{zh}。", en=f"{where}: {en}.", field="tenders")


# --- the prepaid apps' calls, said of the tender they come from -------------------------------------------------


def package_sessions_use(*, index: int, **kwargs: Any) -> Any:
    try:
        return packages_services.package_sessions_use(**kwargs)
    except ApplicationError as exc:
        raise at_tender(index, exc) from None


def gift_card_check(card: GiftCard, amount_fen: int, on: Any, balance_fen: int, *, index: int) -> None:
    try:
        giftcards_services.gift_card_check(card, amount_fen, on, balance_fen)
    except ApplicationError as exc:
        raise at_tender(index, exc) from None


def gift_card_code_index(code: str) -> str:
    return code_index_of(normalise_code(code))
