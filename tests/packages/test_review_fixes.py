"""The review's findings on packages, one test (or two) each: transfer, freeze, list-price floor, expiry keys
and out-of-step items, the per-organisation guard of the jobs, the days between sessions, returns to a
closed package, replays under the lock, and member merge."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from meiye.catalog.models import Item
from meiye.core.errors import ApplicationError, Conflict
from meiye.core.money import Money
from meiye.ledger.models import Account, Balance, Journal
from meiye.ledger.selectors import account_find
from meiye.ledger.services import journal_post
from meiye.loyalty.selectors import local_today
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Organisation, Store
from meiye.packages.models import MemberPackage, MemberPackageItem, PackageProduct, PackageStatus, SessionUse
from meiye.packages.selectors import item_value_fen, package_refund_preview
from meiye.packages.services import (
    ProductItemInput,
    package_freeze,
    package_product_save,
    package_refund,
    package_sessions_return_for_bill,
    package_sessions_use,
    package_transfer,
    packages_expire_due,
    packages_verify,
)
from tests.factories import OrganisationFactory

Sell = Callable[..., list[MemberPackage]]


def at(day: date) -> mock._patch:
    """Write rows as if at noon on ``day`` (the liability report reads the rows' and journals' times)."""
    noon = datetime.combine(day, time(12), tzinfo=ZoneInfo("Asia/Shanghai"))
    return mock.patch("django.utils.timezone.now", return_value=noon)


def _sessions(item: MemberPackageItem, member_id: int | None = None) -> int:
    account = account_find(
        organisation_id=item.member_package.organisation_id,
        owner_type="member",
        owner_id=member_id if member_id is not None else item.member_package.member_id,
        asset=f"SES:{item.pk}",
        kind="package_sessions",
    )
    return Balance.objects.get(account=account).amount if account is not None else 0


def _use(
    actor: Actor, member: Member, item: MemberPackageItem, on: date, n: int = 1, bill_id: int | None = None
) -> SessionUse:
    return package_sessions_use(
        actor=actor,
        member=member,
        member_item_id=item.pk,
        sessions=n,
        on=on,
        performed_by_id=None,
        bill_id=bill_id,
        idempotency_key=f"use-{item.pk}-{on.isoformat()}-{n}-{SessionUse.objects.count()}",
    )


# --- 1. a transferred time card keeps its value -----------------------------------------------------------------


def test_transferred_time_card_keeps_the_value_left(
    sell: Sell,
    hq: Actor,
    boss: Actor,
    services: dict[str, Item],
    member: Member,
    make_member: Callable[..., Member],
    store1: Store,
) -> None:
    from meiye.cards.liability import prepaid_liability

    product = package_product_save(
        actor=hq,
        code="spa-month-gift",
        name="水疗月卡（可转让）",
        price=Money.parse("900.00"),
        kind="time",
        transferable=True,
        items=[ProductItemInput(service_id=services["bath"].pk, count=None, validity_value=30, validity_unit="days")],
    )
    today = local_today(store1)
    with at(today - timedelta(days=15)):
        (package,) = sell(product, member, on=today - timedelta(days=15))
    old = package.items.get()
    # 900.00 over 30 days, 15 of them gone: 450.00 before the transfer
    assert item_value_fen(old, today) == 45000
    other = make_member(store1, name="王女士")
    new = package_transfer(actor=boss, member_package=package, to_member=other, idempotency_key="t-spa", reason="送")
    fresh = new.items.get()
    # ...and 450.00 after it: the new item starts today, ends when the old one would have
    assert (fresh.share_fen, fresh.valid_from, fresh.valid_until) == (45000, today, old.valid_until)
    assert item_value_fen(fresh, today) == 45000
    assert new.price_paid_fen == 45000
    # The report counts the old package up to the transfer and the new one from it.
    yesterday = prepaid_liability(hq, on=today - timedelta(days=1))
    assert yesterday.totals.package_fen == 90000 - 90000 * 14 // 30 == 48000
    assert prepaid_liability(hq, on=today).totals.package_fen == 45000


# --- 2. a frozen package is valued as of the day it was frozen ------------------------------------------------


def test_frozen_count_card_refunds_after_its_original_end(
    sell: Sell, facial_card: PackageProduct, member: Member, cashier: Actor, boss: Actor
) -> None:
    (package,) = sell(facial_card, member)  # 2026-01-10, valid until 2027-01-09
    item = package.items.get()
    _use(cashier, member, item, date(2026, 2, 1), n=3)
    package_freeze(actor=boss, member_package=package, reason="出国", on=date(2026, 12, 1))
    assert packages_expire_due(on=date(2027, 3, 1)) == 0  # the job skips a frozen package
    quote = package_refund_preview(boss, package, date(2027, 3, 1))
    assert quote.amount_fen == 138600  # 1,980.00 − 3 × 198.00, not 0
    refunded = package_refund(
        actor=boss,
        member_package=package,
        tender="cash",
        idempotency_key="refund-frozen",
        reason="不再需要",
        on=date(2027, 3, 1),
    )
    assert refunded.refunded_fen == 138600
    assert packages_verify() == []


def test_frozen_time_card_stops_losing_value(
    sell: Sell, time_card: PackageProduct, member: Member, boss: Actor, hq: Actor, store1: Store
) -> None:
    from meiye.cards.liability import prepaid_liability

    with at(date(2026, 1, 10)):
        (package,) = sell(time_card, member)  # 2026-01-10 to 2026-02-08, 900.00
        package_freeze(actor=boss, member_package=package, reason="受伤", on=date(2026, 1, 25))
    package.refresh_from_db()
    item = package.items.get()
    # frozen after 15 of its 30 days: 450.00 while frozen, even past its original end
    assert item_value_fen(item, date(2026, 1, 30)) == 45000
    assert item_value_fen(item, date(2026, 3, 1)) == 45000
    assert package_refund_preview(boss, package, date(2026, 3, 1)).amount_fen == 45000
    assert prepaid_liability(hq, on=date(2026, 3, 1)).totals.package_fen == 45000


# --- 3. the list-price formula has one floor for the package -----------------------------------------------------


def test_list_price_refund_of_a_combo_floors_the_package_not_each_item(
    sell: Sell, hq: Actor, services: dict[str, Item], member: Member, cashier: Actor, boss: Actor
) -> None:
    product = package_product_save(
        actor=hq,
        code="combo-list",
        name="面部肩颈套餐（原价退）",
        price=Money.parse("1800.00"),
        kind="combo",
        refund_formula="list_price",
        items=[
            ProductItemInput(service_id=services["facial"].pk, count=5, validity_value=6),
            ProductItemInput(service_id=services["neck"].pk, count=3, validity_value=12),
        ],
    )
    (package,) = sell(product, member)
    facial = package.items.order_by("pk").first()
    assert facial is not None
    _use(cashier, member, facial, date(2026, 2, 1), n=5)
    quote = package_refund_preview(boss, package, date(2026, 2, 2))
    # 实付价款 − 已使用次数 × 项目原价: 1,800.00 − 5 × 298.00 = 310.00
    assert (quote.formula, quote.amount_fen) == ("list_price", 31000)
    assert [line.value_fen for line in quote.lines] == [128695 - 5 * 29800, 51305]
    assert "310.00" in quote.text_zh and "最低为 0" in quote.text_zh


# --- 4. the expiry job's key is unique per posting ----------------------------------------------------------------


def test_expiry_rerun_after_sessions_came_back_posts_a_new_journal(
    sell: Sell, facial_card: PackageProduct, member: Member, cashier: Actor
) -> None:
    (package,) = sell(facial_card, member)
    item = package.items.get()
    _use(cashier, member, item, date(2026, 12, 1), n=8)
    day = date(2027, 1, 10)
    assert packages_expire_due(on=day) == 2
    item.refresh_from_db()
    # Two sessions come back to the item the same day (a correction by hand, as a bill refund once did) ...
    journal_post(
        organisation_id=package.organisation_id,
        code="packages.use_return",
        entries=[
            (Account.objects.get(pk=item.source_account_id), -2),
            (Account.objects.get(pk=item.account_id), 2),
        ],
        reference_type="packages.MemberPackageItem",
        reference_id=str(item.pk),
        idempotency_key="manual-return",
    )
    MemberPackageItem.objects.filter(pk=item.pk).update(remaining=2, used=6)
    # ... and the job runs again that day: same item, same sessions, a new posting (no IntegrityError).
    assert packages_expire_due(on=day) == 2
    item.refresh_from_db()
    assert (item.remaining, item.expired_sessions, _sessions(item)) == (0, 4, 0)
    assert Journal.objects.filter(code="packages.expire").count() == 2
    assert packages_verify() == []


# --- 5. one bad item or organisation does not stop the others -------------------------------------------------------


def test_an_item_out_of_step_is_left_out_and_the_rest_expire(
    sell: Sell, facial_card: PackageProduct, member: Member, caplog: pytest.LogCaptureFixture
) -> None:
    (bad,) = sell(facial_card, member)
    (good,) = sell(facial_card, member)
    bad_item, good_item = bad.items.get(), good.items.get()
    MemberPackageItem.objects.filter(pk=bad_item.pk).update(remaining=7)  # the ledger holds 10
    skipped: list[int] = []
    with caplog.at_level("ERROR", logger="meiye.packages.services"):
        assert packages_expire_due(on=date(2027, 1, 10), skipped=skipped) == 10
    assert skipped == [bad_item.pk]
    assert "sessions_out_of_step" in caplog.text
    good_item.refresh_from_db()
    bad_item.refresh_from_db()
    assert (good_item.remaining, _sessions(good_item)) == (0, 0)
    assert (bad_item.remaining, _sessions(bad_item), bad_item.expired_on) == (7, 10, None)
    assert packages_verify() == [bad_item.pk]


def test_expiry_tasks_guard_each_organisation(
    org: Organisation, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from meiye.giftcards import tasks as giftcard_tasks
    from meiye.packages import tasks as package_tasks

    second = OrganisationFactory(code="other", name="另一家")
    ran: dict[str, list[int]] = {"packages": [], "giftcards": []}

    def failing(name: str) -> Callable[..., int]:
        def run(*, on: date, organisation_id: int, **_: object) -> int:
            ran[name].append(organisation_id)
            if organisation_id == org.pk:
                raise RuntimeError("boom")
            return 0

        return run

    monkeypatch.setattr(package_tasks, "packages_expire_due", failing("packages"))
    monkeypatch.setattr(giftcard_tasks, "gift_cards_expire_due", failing("giftcards"))
    with caplog.at_level("ERROR"):
        package_tasks.packages_expire_task.call_local()
        giftcard_tasks.gift_cards_expire_task.call_local()
    assert ran == {"packages": [org.pk, second.pk], "giftcards": [org.pk, second.pk]}
    assert f"packages_expire failed for organisation {org.pk}" in caplog.text
    assert f"gift_cards_expire failed for organisation {org.pk}" in caplog.text


# --- 6. the days between sessions count the same day and later days ----------------------------------------------


def test_min_days_between_counts_the_same_day_and_back_dated_uses(
    hq: Actor, sell: Sell, services: dict[str, Item], member: Member, cashier: Actor
) -> None:
    product = package_product_save(
        actor=hq,
        code="spa-gap",
        name="水疗月卡（隔天）",
        price=Money.parse("600.00"),
        kind="time",
        items=[
            ProductItemInput(
                service_id=services["bath"].pk,
                count=None,
                validity_value=30,
                validity_unit="days",
                daily_limit=3,
                min_days_between=2,
            )
        ],
    )
    (package,) = sell(product, member)
    item = package.items.get()
    _use(cashier, member, item, date(2026, 1, 14))
    with pytest.raises(ApplicationError) as same_day:
        _use(cashier, member, item, date(2026, 1, 14))
    assert same_day.value.code == "package.too_soon"
    _use(cashier, member, item, date(2026, 1, 20))
    with pytest.raises(ApplicationError) as back_dated:
        _use(cashier, member, item, date(2026, 1, 19))  # the day before a use already recorded
    assert back_dated.value.code == "package.too_soon"
    assert "2026-01-20" in back_dated.value.message_en
    _use(cashier, member, item, date(2026, 1, 17))  # 3 days from each
    assert SessionUse.objects.filter(member_item=item).count() == 3


# --- 7. sessions cannot go back to a closed package ----------------------------------------------------------------


def test_sessions_cannot_go_back_to_a_refunded_package(
    sell: Sell, facial_card: PackageProduct, member: Member, cashier: Actor, boss: Actor, store1: Store
) -> None:
    today = local_today(store1)
    (package,) = sell(facial_card, member, on=today - timedelta(days=30))
    item = package.items.get()
    _use(cashier, member, item, today - timedelta(days=20), n=2, bill_id=8801)
    package_refund(actor=boss, member_package=package, tender="cash", idempotency_key="rf", reason="搬家")
    journals = Journal.objects.count()
    with pytest.raises(Conflict) as refused:
        package_sessions_return_for_bill(actor=cashier, bill_id=8801, quantities=None, idempotency_key="r8801")
    assert refused.value.code == "refund.package_closed"
    assert "无法退回" in refused.value.message_zh and "cannot go back" in refused.value.message_en
    item.refresh_from_db()
    assert (item.remaining, item.used, _sessions(item), Journal.objects.count()) == (0, 2, 0, journals)
    assert SessionUse.objects.get(bill_id=8801).returned == 0


def test_sessions_cannot_go_back_to_a_transferred_package(
    sell: Sell,
    combo: PackageProduct,
    member: Member,
    cashier: Actor,
    boss: Actor,
    make_member: Callable[..., Member],
    store1: Store,
) -> None:
    today = local_today(store1)
    (package,) = sell(combo, member, on=today - timedelta(days=10))
    facial = package.items.order_by("pk").first()
    assert facial is not None
    _use(cashier, member, facial, today - timedelta(days=5), n=1, bill_id=8802)
    other = make_member(store1, name="王女士")
    package_transfer(actor=boss, member_package=package, to_member=other, idempotency_key="t8802", reason="送")
    with pytest.raises(Conflict) as refused:
        package_sessions_return_for_bill(actor=cashier, bill_id=8802, quantities=None, idempotency_key="r8802")
    assert refused.value.code == "refund.package_closed"
    assert packages_verify() == []


# --- 8. a replay is looked for under the item's lock ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_identical_concurrent_uses_give_one_use(
    sell: Sell, facial_card: PackageProduct, member: Member, cashier: Actor
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only")
    (package,) = sell(facial_card, member)
    item = package.items.get()
    first_done, release = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def attempt() -> SessionUse:
        return package_sessions_use(
            actor=cashier,
            member=member,
            member_item_id=item.pk,
            sessions=1,
            on=date(2026, 2, 1),
            performed_by_id=None,
            idempotency_key="same-key",
        )

    def first() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                outcomes["first"] = attempt().pk
                first_done.set()
                release.wait(10)  # holds the item's lock, uncommitted
        finally:
            first_done.set()
            connection.close()

    def second() -> None:
        try:
            first_done.wait(10)
            outcomes["second"] = attempt().pk  # waits for the lock, then finds the first's use
        except Exception as error:  # the assertion shows it
            outcomes["second"] = repr(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    threads[1].join(1.0)  # the second is now blocked on the item's lock
    release.set()
    for thread in threads:
        thread.join()
    assert outcomes["second"] == outcomes["first"]
    item.refresh_from_db()
    assert (item.remaining, SessionUse.objects.filter(member_item=item).count()) == (9, 1)
    assert packages_verify() == []


# --- 9. a member merge repoints every counted item ------------------------------------------------------------------


def test_member_merge_repoints_items_with_no_sessions_left(
    sell: Sell,
    facial_card: PackageProduct,
    member: Member,
    cashier: Actor,
    hq: Actor,
    make_member: Callable[..., Member],
    store1: Store,
) -> None:
    from meiye.members.services import member_merge

    today = local_today(store1)
    other = make_member(store1, name="林小姐二")
    (package,) = sell(facial_card, other, on=today - timedelta(days=30))
    item = package.items.get()
    _use(cashier, other, item, today - timedelta(days=20), n=10, bill_id=8803)
    member_merge(actor=hq, survivor=member, merged=other)
    item.refresh_from_db()
    survivor_account = account_find(
        organisation_id=package.organisation_id,
        owner_type="member",
        owner_id=member.pk,
        asset=f"SES:{item.pk}",
        kind="package_sessions",
    )
    assert survivor_account is not None and item.account_id == survivor_account.pk
    # a refund of the bill gives the sessions back to the survivor, not to the merged member
    package_sessions_return_for_bill(actor=cashier, bill_id=8803, quantities=None, idempotency_key="r8803")
    item.refresh_from_db()
    assert (item.remaining, _sessions(item, member.pk), _sessions(item, other.pk)) == (10, 10, 0)
    assert MemberPackage.objects.get(pk=package.pk).status == PackageStatus.ACTIVE
    assert packages_verify() == []
