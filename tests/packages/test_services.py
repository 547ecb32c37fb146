"""Count cards, combos and time cards through the services (S-19 and the rules around it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from meiye.contracts.models import Contract
from meiye.core.errors import ApplicationError
from meiye.ledger.models import Balance, Journal
from meiye.ledger.selectors import account_find
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.packages.models import MemberPackage, MemberPackageItem, PackageProduct, PackageStatus, SessionUse
from meiye.packages.selectors import package_refund_preview
from meiye.packages.services import (
    package_extend,
    package_freeze,
    package_quick_use,
    package_refund,
    package_sessions_return_for_bill,
    package_sessions_use,
    package_transfer,
    package_unfreeze,
    packages_expire_due,
    packages_verify,
)
from tests.packages.conftest import PURCHASE

Sell = Callable[..., list[MemberPackage]]


def _sessions(item: MemberPackageItem) -> int:
    account = account_find(
        organisation_id=item.member_package.organisation_id,
        owner_type="member",
        owner_id=item.member_package.member_id,
        asset=f"SES:{item.pk}",
        kind="package_sessions",
    )
    assert account is not None
    return Balance.objects.get(account=account).amount


def _use(
    actor: Actor,
    member: Member,
    item: MemberPackageItem,
    on: date,
    n: int = 1,
    key: str = "",
    performed_by: Staff | None = None,
) -> SessionUse:
    return package_sessions_use(
        actor=actor,
        member=member,
        member_item_id=item.pk,
        sessions=n,
        on=on,
        performed_by_id=performed_by.pk if performed_by else None,
        idempotency_key=key or f"use-{item.pk}-{on.isoformat()}-{n}-{SessionUse.objects.count()}",
    )


def test_S19_count_card_sold_used_expired_refunded(
    sell: Sell, facial_card: PackageProduct, member: Member, cashier: Actor, boss: Actor, beautician: Staff
) -> None:
    # Given the 面部护理10次卡 sold for 1,980.00 on 2026-01-10, valid 12 months
    (package,) = sell(facial_card, member)
    item = package.items.get()
    assert (package.price_paid_fen, item.count, item.share_fen, item.unit_price_fen) == (198000, 10, 198000, 19800)
    assert item.valid_until == date(2027, 1, 9)
    assert _sessions(item) == 10
    assert Contract.objects.get(pk=package.contract_id).kind == "package"
    # When one session is used, the beautician recorded
    use = _use(cashier, member, item, date(2026, 2, 1), performed_by=beautician)
    item.refresh_from_db()
    # Then 9 are left
    assert (item.remaining, item.used, _sessions(item)) == (9, 1, 9)
    assert use.performed_by_id == beautician.pk
    assert use.value_fen == 19800
    # Two more sessions; refunding after 3 sessions: 1,980.00 − 3 × 198.00 = 1,386.00
    _use(cashier, member, item, date(2026, 3, 1), n=2)
    preview = package_refund_preview(boss, package, date(2026, 4, 1))
    assert (preview.amount_fen, preview.formula) == (138600, "unit_price")
    refunded = package_refund(
        actor=boss,
        member_package=package,
        tender="wechat",
        idempotency_key="refund-1",
        reason="搬家",
        on=date(2026, 4, 1),
    )
    assert (refunded.status, refunded.refunded_fen) == (PackageStatus.REFUNDED, 138600)
    item.refresh_from_db()
    assert (item.remaining, _sessions(item)) == (0, 0)
    journal = Journal.objects.get(code="packages.refund")
    cny = {e.account.kind: e.amount for e in journal.entries.select_related("account") if e.asset == "CNY"}
    assert cny == {"revenue": -138600, "tender_wechat": 138600}
    assert packages_verify() == []


def test_S19_session_after_expiry_is_refused(
    sell: Sell, facial_card: PackageProduct, member: Member, cashier: Actor
) -> None:
    (package,) = sell(facial_card, member)
    item = package.items.get()
    _use(cashier, member, item, date(2027, 1, 9))  # the last valid day
    with pytest.raises(ApplicationError) as refused:
        _use(cashier, member, item, date(2027, 1, 10))
    assert refused.value.code == "package.expired"
    item.refresh_from_db()
    assert (item.remaining, _sessions(item), SessionUse.objects.count()) == (9, 9, 1)


def test_S19_combo_expires_item_by_item(sell: Sell, combo: PackageProduct, member: Member) -> None:
    (package,) = sell(combo, member)
    facial, neck = package.items.order_by("pk")
    assert (facial.valid_until, neck.valid_until) == (date(2026, 7, 9), date(2027, 1, 9))
    # the price split by list price × count: 5 × 298.00 : 3 × 198.00 over 1,800.00
    assert facial.share_fen + neck.share_fen == 180000
    assert (facial.share_fen, neck.share_fen) == (128695, 51305)
    assert packages_expire_due(on=date(2026, 7, 9)) == 0
    assert packages_expire_due(on=date(2026, 7, 10)) == 5
    facial.refresh_from_db()
    neck.refresh_from_db()
    assert (facial.remaining, facial.expired_sessions, _sessions(facial)) == (0, 5, 0)
    assert (neck.remaining, _sessions(neck)) == (3, 3)
    assert MemberPackage.objects.get(pk=package.pk).status == PackageStatus.ACTIVE
    # a second run the same day expires nothing more
    assert packages_expire_due(on=date(2026, 7, 10)) == 0
    assert packages_expire_due(on=date(2027, 1, 10)) == 3
    neck.refresh_from_db()
    assert (neck.remaining, _sessions(neck)) == (0, 0)
    assert MemberPackage.objects.get(pk=package.pk).status == PackageStatus.EXPIRED
    assert Journal.objects.filter(code="packages.expire").count() == 2
    assert packages_verify() == []


def test_insufficient_sessions_refused_and_nothing_written(
    sell: Sell, facial_card: PackageProduct, member: Member, cashier: Actor
) -> None:
    (package,) = sell(facial_card, member)
    item = package.items.get()
    journals = Journal.objects.count()
    with pytest.raises(ApplicationError) as refused:
        _use(cashier, member, item, date(2026, 2, 1), n=11)
    assert refused.value.code == "package.insufficient_sessions"
    assert (Journal.objects.count(), SessionUse.objects.count(), _sessions(item)) == (journals, 0, 10)


def test_time_card_daily_limit_and_days_between(
    sell: Sell, time_card: PackageProduct, member: Member, cashier: Actor
) -> None:
    (package,) = sell(time_card, member)
    item = package.items.get()
    assert (item.count, item.valid_until) == (None, date(2026, 2, 8))
    _use(cashier, member, item, date(2026, 1, 12))
    with pytest.raises(ApplicationError) as daily:
        _use(cashier, member, item, date(2026, 1, 12))
    assert daily.value.code == "package.daily_limit"
    assert "每天最多使用 1 次" in daily.value.message_zh
    with pytest.raises(ApplicationError) as soon:
        _use(cashier, member, item, date(2026, 1, 13))
    assert soon.value.code == "package.too_soon"
    assert "2026-01-14" in soon.value.message_en
    _use(cashier, member, item, date(2026, 1, 14))
    assert SessionUse.objects.filter(member_item=item).count() == 2


def test_use_is_idempotent_and_conflicting_replay_refused(
    sell: Sell, facial_card: PackageProduct, member: Member, cashier: Actor
) -> None:
    (package,) = sell(facial_card, member)
    item = package.items.get()
    first = _use(cashier, member, item, date(2026, 2, 1), key="k1")
    again = _use(cashier, member, item, date(2026, 2, 1), key="k1")
    assert first.pk == again.pk
    with pytest.raises(ApplicationError) as conflict:
        _use(cashier, member, item, date(2026, 2, 1), n=2, key="k1")
    assert conflict.value.code == "idempotency.key_reused"
    item.refresh_from_db()
    assert item.remaining == 9


def test_quick_use_records_beautician(
    sell: Sell, facial_card: PackageProduct, member: Member, cashier: Actor, beautician: Staff
) -> None:
    (package,) = sell(facial_card, member, on=date.today())
    item = package.items.get()
    use = package_quick_use(
        actor=cashier,
        member=member,
        member_item_id=item.pk,
        sessions=1,
        performed_by_id=beautician.pk,
        idempotency_key="quick-1",
    )
    assert (use.performed_by_id, use.bill_id, use.on) == (beautician.pk, None, date.today())


def test_issue_is_idempotent_and_splits_a_line_over_units(
    facial_card: PackageProduct, member: Member, cashier: Actor
) -> None:
    from meiye.packages.services import packages_issue_for_bill
    from tests.packages.conftest import FakeLine

    line = FakeLine(pk=77, item_id=facial_card.item_id, quantity=3, line_total_fen=500001)
    first = packages_issue_for_bill(actor=cashier, bill_id=5, member=member, lines=[line], on=PURCHASE)
    again = packages_issue_for_bill(actor=cashier, bill_id=5, member=member, lines=[line], on=PURCHASE)
    assert [p.pk for p in first] == [p.pk for p in again]
    assert [p.price_paid_fen for p in first] == [166667, 166667, 166667]
    assert Journal.objects.filter(code="packages.issue").count() == 3
    assert Contract.objects.filter(reference_type="packages.MemberPackage").count() == 3


def test_bill_refund_returns_sessions_once(
    sell: Sell, facial_card: PackageProduct, member: Member, cashier: Actor
) -> None:
    (package,) = sell(facial_card, member)
    item = package.items.get()
    package_sessions_use(
        actor=cashier,
        member=member,
        member_item_id=item.pk,
        sessions=2,
        on=date(2026, 2, 1),
        performed_by_id=None,
        bill_id=4242,
        idempotency_key="bill-4242:ses:0",
    )
    returned = package_sessions_return_for_bill(actor=cashier, bill_id=4242, quantities=None, idempotency_key="r1")
    assert [u.returned for u in returned] == [2]
    item.refresh_from_db()
    assert (item.remaining, item.used, _sessions(item)) == (10, 0, 10)
    assert package_sessions_return_for_bill(actor=cashier, bill_id=4242, quantities=None, idempotency_key="r1") == []
    assert package_sessions_return_for_bill(actor=cashier, bill_id=4242, quantities=None, idempotency_key="r2") == []
    assert Journal.objects.filter(code="packages.use_return").count() == 1


def test_cooling_off_unused_refunds_full_price_and_list_formula(
    sell: Sell, hq: Actor, services: dict, member: Member, boss: Actor, cashier: Actor
) -> None:
    from meiye.core.money import Money
    from meiye.packages.services import ProductItemInput, package_product_save

    product = package_product_save(
        actor=hq,
        code="facial-list",
        name="面部护理10次卡（原价退）",
        price=Money.parse("1980.00"),
        kind="count",
        refund_formula="list_price",
        items=[ProductItemInput(service_id=services["facial"].pk, count=10, validity_value=12)],
    )
    (unused,) = sell(product, member)
    assert package_refund_preview(boss, unused, date(2026, 1, 17)).amount_fen == 198000
    assert package_refund_preview(boss, unused, date(2026, 1, 18)).formula == "list_price"
    (used,) = sell(product, member)
    _use(cashier, member, used.items.get(), date(2026, 2, 1), n=3)
    quote = package_refund_preview(boss, used, date(2026, 2, 2))
    assert quote.amount_fen == 198000 - 3 * 29800
    _use(cashier, member, used.items.get(), date(2026, 2, 3), n=4)
    assert package_refund_preview(boss, used, date(2026, 2, 4)).amount_fen == 0  # floored at 0


def test_refund_needs_permission(sell: Sell, facial_card: PackageProduct, member: Member, cashier: Actor) -> None:
    (package,) = sell(facial_card, member)
    with pytest.raises(ApplicationError) as refused:
        package_refund(actor=cashier, member_package=package, tender="cash", idempotency_key="x", reason="r")
    assert refused.value.code == "auth.permission_denied"
    assert MemberPackage.objects.get(pk=package.pk).status == PackageStatus.ACTIVE


def test_freeze_refuses_use_and_unfreeze_adds_the_days(
    sell: Sell, facial_card: PackageProduct, member: Member, cashier: Actor, boss: Actor
) -> None:
    (package,) = sell(facial_card, member)
    item = package.items.get()
    package_freeze(actor=boss, member_package=package, reason="出差", on=date(2026, 3, 1))
    with pytest.raises(ApplicationError) as frozen:
        _use(cashier, member, item, date(2026, 3, 2))
    assert frozen.value.code == "package.frozen"
    # a frozen package does not expire
    assert packages_expire_due(on=date(2027, 2, 1)) == 0
    package_unfreeze(actor=boss, member_package=package, on=date(2026, 3, 11))
    item.refresh_from_db()
    assert item.valid_until == date(2027, 1, 19)
    package_extend(actor=boss, member_package=package, days=30, reason="补偿")
    item.refresh_from_db()
    assert item.valid_until == date(2027, 2, 18)
    assert list(package.adjustments.values_list("kind", flat=True)) == ["freeze", "unfreeze", "extend"]


def test_transfer_moves_what_is_left(
    sell: Sell,
    combo: PackageProduct,
    facial_card: PackageProduct,
    member: Member,
    cashier: Actor,
    boss: Actor,
    make_member: Callable[..., Member],
    store1: Store,
) -> None:
    other = make_member(store1, name="王女士")
    (package,) = sell(combo, member, on=date.today())
    facial = package.items.order_by("pk").first()
    assert facial is not None
    _use(cashier, member, facial, date.today(), n=2)
    new = package_transfer(actor=boss, member_package=package, to_member=other, idempotency_key="t1", reason="送朋友")
    assert new.member_id == other.pk
    assert [(i.count, i.remaining) for i in new.items.order_by("pk")] == [(3, 3), (3, 3)]
    assert MemberPackage.objects.get(pk=package.pk).status == PackageStatus.TRANSFERRED
    assert (
        package_transfer(actor=boss, member_package=package, to_member=other, idempotency_key="t1", reason="送朋友").pk
        == new.pk
    )
    (card,) = sell(facial_card, member)
    with pytest.raises(ApplicationError) as refused:
        package_transfer(actor=boss, member_package=card, to_member=other, idempotency_key="t2", reason="x")
    assert refused.value.code == "package.not_transferable"
    assert packages_verify() == []


def test_member_merge_moves_packages_and_sessions(
    sell: Sell,
    facial_card: PackageProduct,
    member: Member,
    hq: Actor,
    make_member: Callable[..., Member],
    store1: Store,
) -> None:
    from meiye.members.services import member_merge

    other = make_member(store1, name="林小姐二")
    (package,) = sell(facial_card, other)
    member_merge(actor=hq, survivor=member, merged=other)
    package.refresh_from_db()
    assert package.member_id == member.pk
    item = package.items.get()
    assert _sessions(item) == 10
    assert packages_verify() == []


def test_expiry_command_and_reminder(sell: Sell, combo: PackageProduct, member: Member) -> None:
    from io import StringIO

    from django.core.management import call_command

    from meiye.notify.models import Message
    from meiye.packages.services import packages_expiry_remind

    sell(combo, member)
    assert packages_expiry_remind(on=date(2026, 7, 2)) == 1
    assert packages_expiry_remind(on=date(2026, 7, 2)) == 1  # asked again, stored once (the key)
    assert Message.objects.filter(event="package.expiring").count() >= 1
    out = StringIO()
    call_command("packages_expire", "--date", "2026-07-10", stdout=out)
    assert "5 sessions of 1 items" in out.getvalue()
    out = StringIO()
    call_command("packages_expire", "--date", "2026-07-10", stdout=out)
    assert "0 sessions of 0 items" in out.getvalue()


def test_sessions_cannot_go_back_to_an_expired_item(
    sell: Sell, facial_card: PackageProduct, member: Member, cashier: Actor
) -> None:
    (package,) = sell(facial_card, member)
    item = package.items.get()
    package_sessions_use(
        actor=cashier,
        member=member,
        member_item_id=item.pk,
        sessions=2,
        on=date(2026, 12, 1),
        performed_by_id=None,
        bill_id=77,
        idempotency_key="bill-77:ses:0",
    )
    assert packages_expire_due(on=date(2027, 1, 10)) == 8
    assert MemberPackage.objects.get(pk=package.pk).status == PackageStatus.EXPIRED
    with pytest.raises(ApplicationError) as refused:
        package_sessions_return_for_bill(actor=cashier, bill_id=77, quantities=None, idempotency_key="r77")
    assert refused.value.code == "refund.package_closed"
    item.refresh_from_db()
    assert (item.remaining, item.expired_sessions, _sessions(item)) == (0, 8, 0)
    assert packages_verify() == []
