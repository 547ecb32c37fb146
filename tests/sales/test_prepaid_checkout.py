"""The checkout with cards and prepaid (ADR 0006): packages sold on a bill, sessions and gift cards as tenders,
and refunds that give them back (S-22's session part)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from meiye.catalog.models import Item
from meiye.contracts.models import Contract
from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.giftcards.models import GiftCard
from meiye.giftcards.selectors import gift_card_balance
from meiye.giftcards.services import gift_card_sell
from meiye.ledger.models import Journal
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Staff
from meiye.packages.models import MemberPackage, MemberPackageItem, PackageProduct
from meiye.packages.services import ProductItemInput, package_product_save
from meiye.sales.models import Bill
from meiye.sales.services import LineInput, TenderInput, bill_checkout, bill_refund


@pytest.fixture
def facial(hq: Actor, categories) -> Item:  # type: ignore[no-untyped-def]
    from meiye.catalog.services import item_save

    return item_save(
        actor=hq,
        code="facial-298",
        name="基础面部护理",
        category=categories["basic_care"],
        price=Money.parse("298.00"),
        duration_minutes=60,
    )


@pytest.fixture
def facial_card(hq: Actor, facial: Item) -> PackageProduct:
    """S-19: 面部护理10次卡, 1,980.00, 10 × basic facial (list 298.00), valid 12 months."""
    return package_product_save(
        actor=hq,
        code="facial-10",
        name="面部护理10次卡",
        price=Money.parse("1980.00"),
        kind="count",
        items=[ProductItemInput(service_id=facial.pk, count=10, validity_value=12)],
    )


@pytest.fixture
def bought(cashier: Actor, member: Member, facial_card: PackageProduct) -> MemberPackageItem:
    """The member bought the 10-session card at the counter, paying by WeChat."""
    bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=facial_card.item_id)],
        tenders=[TenderInput(kind="wechat", amount=Money.parse("1980.00"))],
        idempotency_key="buy-card",
    )
    return MemberPackageItem.objects.get(member_package__member=member)


def _use_one(cashier: Actor, member: Member, facial: Item, item: MemberPackageItem, key: str, **line: object) -> Bill:
    return bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=facial.pk, **line)],  # type: ignore[arg-type]
        tenders=[TenderInput(kind="package", package_item_id=item.pk, sessions=1)],
        idempotency_key=key,
    )


def test_a_package_sold_at_the_counter_issues_the_sessions_and_a_contract_and_earns(
    cashier: Actor, member: Member, facial_card: PackageProduct, bought: MemberPackageItem
) -> None:
    package = MemberPackage.objects.get(member=member)
    assert package.price_paid_fen == 198_000
    assert (bought.count, bought.remaining, bought.share_fen) == (10, 10, 198_000)
    contract = Contract.objects.get(reference_type="packages.MemberPackage", reference_id=str(package.pk))
    assert contract.price_fen == 198_000
    bill = Bill.objects.get(idempotency_key="buy-card")
    assert bill.earning_total_fen == 198_000  # the purchase earns points and growth
    assert bill.points_earned > 0


def test_S22_a_session_pays_for_the_facial_and_a_refund_gives_it_back(
    cashier: Actor,
    manager_at_till: Actor,
    member: Member,
    facial: Item,
    bought: MemberPackageItem,
    beautician: Staff,
) -> None:
    # when: one facial is paid with one session, by the beautician
    bill = _use_one(cashier, member, facial, bought, "use-1", performed_by_id=beautician.pk)

    # then: 9 sessions left, the bill is paid 298.00 by the package and earns nothing
    bought.refresh_from_db()
    assert bought.remaining == 9
    tender = bill.tenders.get()
    assert (tender.kind, tender.amount_fen, tender.sessions, tender.package_item_id) == (
        "package",
        29_800,
        1,
        bought.pk,
    )
    assert bill.earning_total_fen == 0
    assert bill.points_earned == 0
    use = bought.uses.get()
    assert use.performed_by_id == beautician.pk

    # when: the bill is refunded in full, the session comes back
    bill_refund(actor=manager_at_till, bill=bill, reason="顾客投诉", idempotency_key="refund-use-1")
    bought.refresh_from_db()
    assert bought.remaining == 10
    assert Journal.objects.filter(code="packages.use_return").count() == 1


def test_a_bill_paid_with_sessions_is_refunded_whole(
    cashier: Actor, manager_at_till: Actor, member: Member, facial: Item, bought: MemberPackageItem
) -> None:
    bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=facial.pk, quantity=2)],
        tenders=[TenderInput(kind="package", package_item_id=bought.pk, sessions=2)],
        idempotency_key="use-2",
    )
    line = bill.lines.get()
    with pytest.raises(ApplicationError) as refused:
        bill_refund(actor=manager_at_till, bill=bill, lines=[(line.pk, 1)], reason="一次没做", idempotency_key="part")
    assert refused.value.code == "refund.package_sessions_whole_bill"
    bought.refresh_from_db()
    assert bought.remaining == 8


def test_a_package_line_is_refunded_by_the_package_refund_not_the_bill(
    manager_at_till: Actor, member: Member, bought: MemberPackageItem
) -> None:
    bill = Bill.objects.get(idempotency_key="buy-card")
    with pytest.raises(ApplicationError) as refused:
        bill_refund(actor=manager_at_till, bill=bill, reason="不要了", idempotency_key="refund-card")
    assert refused.value.code == "refund.package_line"


def test_sessions_cover_only_the_services_on_the_bill(
    cashier: Actor, member: Member, care: Item, bought: MemberPackageItem
) -> None:
    with pytest.raises(ApplicationError) as refused:
        bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk)],
            tenders=[TenderInput(kind="package", package_item_id=bought.pk, sessions=1)],
            idempotency_key="wrong-service",
        )
    assert refused.value.code == "sales.package_no_line"
    bought.refresh_from_db()
    assert bought.remaining == 10


def test_a_walk_in_cannot_buy_a_package(cashier: Actor, facial_card: PackageProduct) -> None:
    with pytest.raises(ApplicationError) as refused:
        bill_checkout(
            actor=cashier,
            lines=[LineInput(item_id=facial_card.item_id)],
            tenders=[TenderInput(kind="cash", amount=Money.parse("1980.00"))],
            idempotency_key="walk-in-card",
        )
    assert refused.value.code == "sales.member_required"
    assert not MemberPackage.objects.exists()


@pytest.fixture
def gift_card(cashier: Actor) -> GiftCard:
    """A 500.00 gift card sold for 450.00."""
    (card,) = gift_card_sell(
        actor=cashier,
        face=Money.parse("500.00"),
        price=Money.parse("450.00"),
        tender="cash",
        expires_on=timezone.localdate() + timedelta(days=365),
        idempotency_key="sell-gift",
    )
    return card


def test_a_gift_card_pays_part_of_a_bill_earns_nothing_and_a_refund_puts_it_back(
    cashier: Actor,
    manager_at_till: Actor,
    member: Member,
    care: Item,
    gift_card: GiftCard,
    keys: Callable[[str], str],
) -> None:
    # when: the 600.00 facial is paid 500.00 by the gift card and 100.00 by WeChat
    bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=care.pk)],
        tenders=[
            TenderInput(kind="gift_card", amount=Money.parse("500.00"), gift_card_code=gift_card.code),
            TenderInput(kind="wechat", amount=Money.parse("100.00")),
        ],
        idempotency_key="gift-pay",
    )

    # then: the card is used up; only the WeChat money earns
    gift_card.refresh_from_db()
    assert gift_card_balance(gift_card) == Money(0)
    assert gift_card.status == "used_up"
    assert bill.earning_total_fen == 10_000

    # when: refunded in full, the 500.00 goes back on the card, which works again
    bill_refund(actor=manager_at_till, bill=bill, reason="退款", idempotency_key="gift-refund")
    gift_card.refresh_from_db()
    assert gift_card_balance(gift_card) == Money.parse("500.00")
    assert gift_card.status == "active"


def test_a_gift_card_cannot_pay_more_than_it_holds(
    cashier: Actor, member: Member, care: Item, gift_card: GiftCard
) -> None:
    with pytest.raises(ApplicationError) as refused:
        bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk)],
            tenders=[TenderInput(kind="gift_card", amount=Money.parse("600.00"), gift_card_code=gift_card.code)],
            idempotency_key="too-much",
        )
    assert refused.value.code == "giftcard.insufficient"
    assert gift_card_balance(gift_card) == Money.parse("500.00")
    assert not Bill.objects.filter(idempotency_key="too-much").exists()


def test_a_bill_whose_package_was_refunded_since_cannot_give_its_sessions_back(
    cashier: Actor, manager_at_till: Actor, member: Member, facial: Item, bought: MemberPackageItem
) -> None:
    from meiye.packages.services import package_refund

    bill = _use_one(cashier, member, facial, bought, "use-then-refund")
    package_refund(
        actor=manager_at_till,
        member_package=bought.member_package,
        tender="cash",
        idempotency_key="refund-package",
        reason="不做了",
    )

    with pytest.raises(ApplicationError) as refused:
        bill_refund(actor=manager_at_till, bill=bill, reason="退单", idempotency_key="refund-bill")

    assert refused.value.code == "refund.package_closed"
    assert not bill.refunds.exists()


def test_a_retried_checkout_finds_the_same_gift_card_however_its_code_was_typed(
    cashier: Actor, member: Member, care: Item, gift_card: GiftCard
) -> None:
    from meiye.giftcards.selectors import format_code

    def pay(code: str) -> Bill:
        return bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=care.pk)],
            tenders=[
                TenderInput(kind="gift_card", amount=Money.parse("500.00"), gift_card_code=code),
                TenderInput(kind="cash", amount=Money.parse("100.00")),
            ],
            idempotency_key="gift-retry",
        )

    first = pay(gift_card.code)
    assert pay(format_code(gift_card.code).lower()).pk == first.pk
    assert gift_card_balance(gift_card) == Money(0)


def test_sessions_for_a_free_service_are_refused_cleanly(
    cashier: Actor, member: Member, facial: Item, bought: MemberPackageItem, manager: Staff, manager_pin: str
) -> None:
    with pytest.raises(ApplicationError) as refused:
        bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=facial.pk, unit_price=Money(0), approver_id=manager.pk, approval_pin=manager_pin)],
            tenders=[TenderInput(kind="package", package_item_id=bought.pk, sessions=1)],
            idempotency_key="free",
        )
    assert refused.value.code in {"sales.invalid_tender", "sales.tender_mismatch"}
    bought.refresh_from_db()
    assert bought.remaining == 10


def test_a_package_refund_takes_back_the_points_and_growth_its_sale_earned(
    manager_at_till: Actor, member: Member, bought: MemberPackageItem
) -> None:
    from meiye.loyalty.selectors import growth_in_window, local_today, points_balance
    from meiye.packages.services import package_refund

    bill = Bill.objects.get(idempotency_key="buy-card")
    package = bought.member_package
    assert (package.earning_fen, package.points_earned) == (bill.earning_total_fen, bill.points_earned)
    today = local_today(package.store)
    assert growth_in_window(member, on=today) == 198_000
    assert points_balance(member) == bill.points_earned

    # when: refunded in full within the cooling-off period
    package_refund(
        actor=manager_at_till, member_package=package, tender="wechat", idempotency_key="cool-off", reason="冷静期"
    )

    # then: the growth and the points the sale earned are gone again
    assert growth_in_window(member, on=today) == 0
    assert points_balance(member) == 0
    assert Journal.objects.filter(code="points.take_back", reference_id=str(package.pk)).count() == 1
