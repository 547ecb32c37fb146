"""Points mall (S-07): items and stock in the ledger, redemption, the minimum, approval with the points held,
rejection, idempotency, limits, points + cash, scoping, permissions, merge and export."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from meiye.audit.models import AuditLog
from meiye.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from meiye.ledger.models import Account, Entry, Journal
from meiye.ledger.selectors import balance_of
from meiye.ledger.verification import verify_ledger
from meiye.loyalty.models import PointsLot
from meiye.loyalty.selectors import points_balance
from meiye.loyalty.services import verify_points_lots
from meiye.mall.models import MallItem, MallItemKind, MallRedemption, RedemptionStatus, stock_asset
from meiye.mall.selectors import (
    STOCK_HELD,
    STOCK_REDEEMED,
    mall_item_stock,
    mall_items,
    mall_rules,
    mall_stock_held,
    member_redemptions,
    pending_redemptions,
    redemption_get,
    store_redemptions,
)
from meiye.mall.services import (
    MallItemInput,
    mall_item_create,
    mall_item_update,
    mall_redeem,
    mall_redemption_approve,
    mall_redemption_reject,
    mall_settings_set,
    mall_stock_add,
)
from meiye.members.services import member_export, member_merge
from meiye.org.roles import Position
from meiye.wallet.services import store_account
from tests.factories import StaffFactory


def state(member, item: MallItem | None = None) -> dict[str, Any]:
    """Everything a refused operation must leave as it was."""
    return {
        "points": points_balance(member),
        "lots": list(PointsLot.objects.filter(member=member).order_by("pk").values_list("pk", "remaining")),
        "stock": mall_item_stock(item) if item is not None else None,
        "held": mall_stock_held([item])[item.pk] if item is not None else None,
        "redemptions": MallRedemption.objects.count(),
        "journals": Journal.objects.count(),
        "audit": AuditLog.objects.filter(action__startswith="mall.").count(),
    }


def org_stock(item: MallItem, kind: str) -> int:
    account = Account.objects.filter(owner_type="organisation", asset=stock_asset(item.pk), kind=kind).first()
    return balance_of(account) if account is not None else 0


# --- S-07 --------------------------------------------------------------------------------------------------------


def test_S07_points_mall_gift_redeemed_at_once(cashier, member, earn, mask_box, keys):
    # given: 面膜礼盒 costs 5,000 points, stock 3; the member holds 6,200 points
    earn(member, 6_200)
    assert mall_item_stock(mask_box) == 3

    # when
    redemption = mall_redeem(actor=cashier, member=member, item=mask_box, idempotency_key=keys())

    # then: 1,200 points left, stock 2, completed at once
    assert redemption.status == RedemptionStatus.COMPLETED
    assert (redemption.points, redemption.quantity, redemption.cash_fen) == (5_000, 1, 0)
    assert points_balance(member) == 1_200
    assert mall_item_stock(mask_box) == 2
    assert org_stock(mask_box, STOCK_REDEEMED) == 1
    assert [(e.account.kind, e.amount) for e in redemption.points_journal.entries.order_by("pk")] == [
        ("points", -5_000),
        ("points_redeemed", 5_000),
    ]
    assert redemption.points_journal.code == "mall.redeem"
    assert redemption.stock_journal.code == "mall.stock_redeem"
    assert redemption.cash_journal is None
    assert list(PointsLot.objects.filter(member=member).values_list("remaining", flat=True)) == [1_200]
    assert AuditLog.objects.filter(action="mall.redeem", object_id=str(redemption.pk)).count() == 1
    assert list(member_redemptions(member)) == [redemption]
    assert verify_points_lots() == []


def test_S07_points_mall_fewer_than_500_points_refused(cashier, member, earn, make_item, keys):
    # given: a sample costs 300 points; the member has plenty
    sample = make_item("面膜小样", 300, stock=10)
    earn(member, 6_200)
    before = state(member, sample)

    # when / then
    with pytest.raises(ValidationFailed) as refused:
        mall_redeem(actor=cashier, member=member, item=sample, idempotency_key=keys())
    assert refused.value.code == "mall.below_minimum"
    assert refused.value.extra == {"minimum": 500, "points": 300}
    assert state(member, sample) == before

    # two of them make 600 points: allowed
    redemption = mall_redeem(actor=cashier, member=member, item=sample, quantity=2, idempotency_key=keys())
    assert redemption.points == 600
    assert points_balance(member) == 5_600
    assert mall_item_stock(sample) == 8


def test_S07_points_mall_20000_or_more_waits_for_approval_with_points_held(
    cashier, boss, member, earn, make_item, keys
):
    # given: a beauty device costs 20,000 points; the member holds 25,000
    device = make_item("美容仪", 20_000, stock=2)
    earn(member, 25_000)

    # when
    redemption = mall_redeem(actor=cashier, member=member, item=device, idempotency_key=keys())

    # then: it waits, the points are held (not spendable twice), one unit is reserved
    assert redemption.status == RedemptionStatus.PENDING
    assert points_balance(member) == 5_000
    assert mall_item_stock(device) == 1
    assert org_stock(device, STOCK_HELD) == 1
    assert redemption.stock_journal.code == "mall.stock_hold"
    assert list(pending_redemptions(boss)) == [redemption]
    with pytest.raises(ApplicationError) as again:
        mall_redeem(actor=cashier, member=member, item=device, idempotency_key=keys())
    assert again.value.code == "points.insufficient"

    # when the store manager approves
    approved = mall_redemption_approve(actor=boss, redemption=redemption, note="VIP")

    # then: completed, the reserved unit handed out, the points stay spent
    assert approved.status == RedemptionStatus.COMPLETED
    assert approved.decided_by == boss.staff
    assert approved.decision_note == "VIP"
    assert points_balance(member) == 5_000
    assert mall_item_stock(device) == 1
    assert (org_stock(device, STOCK_HELD), org_stock(device, STOCK_REDEEMED)) == (0, 1)
    assert list(pending_redemptions(boss)) == []
    assert AuditLog.objects.filter(action="mall.approve").count() == 1

    # approving again changes nothing; rejecting now is refused
    journals = Journal.objects.count()
    assert mall_redemption_approve(actor=boss, redemption=redemption).status == RedemptionStatus.COMPLETED
    assert Journal.objects.count() == journals
    with pytest.raises(Conflict) as late:
        mall_redemption_reject(actor=boss, redemption=redemption, reason="太晚了")
    assert late.value.code == "mall.already_decided"


def test_S07_points_mall_rejected_points_return_in_full(cashier, boss, member, earn, make_item, keys):
    # given: two lots (15,000 expiring first, then 10,000) and a 20,000-point redemption waiting
    device = make_item("美容仪", 20_000, stock=1)
    earn(member, 15_000, date(2025, 3, 1))
    earn(member, 10_000, date(2025, 6, 1))
    lots = list(PointsLot.objects.filter(member=member).order_by("expires_on").values_list("pk", flat=True))
    redemption = mall_redeem(actor=cashier, member=member, item=device, idempotency_key=keys())
    assert list(PointsLot.objects.filter(pk__in=lots).order_by("expires_on").values_list("remaining", flat=True)) == [
        0,
        5_000,
    ]
    assert points_balance(member) == 5_000
    assert mall_item_stock(device) == 0

    # when the store manager rejects it
    rejected = mall_redemption_reject(actor=boss, redemption=redemption, reason="库存留给活动")

    # then: the 20,000 points return in full, to the same lots; the unit is back on the shelf
    assert rejected.status == RedemptionStatus.REJECTED
    assert rejected.decision_note == "库存留给活动"
    assert points_balance(member) == 25_000
    assert list(PointsLot.objects.filter(member=member).order_by("expires_on").values_list("pk", "remaining")) == [
        (lots[0], 15_000),
        (lots[1], 10_000),
    ]
    assert mall_item_stock(device) == 1
    assert (org_stock(device, STOCK_HELD), org_stock(device, STOCK_REDEEMED)) == (0, 0)
    assert Journal.objects.filter(code="mall.redeem.reversal", reversal_of=redemption.points_journal).count() == 1
    assert Journal.objects.filter(code="mall.stock_return").count() == 1
    assert AuditLog.objects.filter(action="mall.reject", object_id=str(redemption.pk)).count() == 1
    assert verify_points_lots() == []

    # rejecting again changes nothing; approving now is refused
    before = state(member, device)
    assert mall_redemption_reject(actor=boss, redemption=redemption, reason="again").status == "rejected"
    with pytest.raises(Conflict) as late:
        mall_redemption_approve(actor=boss, redemption=redemption)
    assert late.value.code == "mall.already_decided"
    assert state(member, device) == before


# --- idempotency -----------------------------------------------------------------------------------------------


def test_replay_with_the_same_key_returns_the_first_redemption(cashier, member, earn, mask_box):
    earn(member, 12_000)
    first = mall_redeem(actor=cashier, member=member, item=mask_box, idempotency_key="same")
    before = state(member, mask_box)

    again = mall_redeem(actor=cashier, member=member, item=mask_box, idempotency_key="same")

    assert again.pk == first.pk
    assert state(member, mask_box) == before
    assert points_balance(member) == 7_000
    assert mall_item_stock(mask_box) == 2


def test_same_key_with_a_different_request_is_refused(cashier, member, earn, mask_box):
    earn(member, 12_000)
    mall_redeem(actor=cashier, member=member, item=mask_box, idempotency_key="same")
    before = state(member, mask_box)

    with pytest.raises(Conflict) as refused:
        mall_redeem(actor=cashier, member=member, item=mask_box, quantity=2, idempotency_key="same")

    assert refused.value.code == "idempotency.key_reused"
    assert state(member, mask_box) == before


def test_a_replay_is_answered_even_after_the_stock_ran_out(cashier, member, earn, make_item):
    last = make_item("最后一件", 1_000, stock=1)
    earn(member, 5_000)
    first = mall_redeem(actor=cashier, member=member, item=last, idempotency_key="only-one")

    assert mall_redeem(actor=cashier, member=member, item=last, idempotency_key="only-one").pk == first.pk
    assert mall_item_stock(last) == 0


# --- refusals ----------------------------------------------------------------------------------------------------


def test_stock_0_is_refused_and_nothing_changes(cashier, member, earn, make_item, keys):
    empty = make_item("已兑完", 1_000, stock=0)
    earn(member, 6_200)
    before = state(member, empty)

    with pytest.raises(Conflict) as refused:
        mall_redeem(actor=cashier, member=member, item=empty, idempotency_key=keys())

    assert refused.value.code == "mall.out_of_stock"
    assert refused.value.extra == {"stock": 0, "quantity": 1}
    assert state(member, empty) == before


def test_more_than_the_stock_is_refused(cashier, member, earn, mask_box, keys):
    earn(member, 50_000)
    before = state(member, mask_box)

    with pytest.raises(Conflict) as refused:
        mall_redeem(actor=cashier, member=member, item=mask_box, quantity=4, idempotency_key=keys())

    assert refused.value.code == "mall.out_of_stock"
    assert state(member, mask_box) == before


def test_not_enough_points_is_refused_and_nothing_changes(cashier, member, earn, mask_box, keys):
    earn(member, 4_999)
    before = state(member, mask_box)

    with pytest.raises(ApplicationError) as refused:
        mall_redeem(actor=cashier, member=member, item=mask_box, idempotency_key=keys())

    assert refused.value.code == "points.insufficient"
    assert state(member, mask_box) == before


def test_per_member_limit(cashier, member, make_member, store1, earn, make_item, keys):
    item = make_item("限兑一件", 1_000, stock=10, per_member_limit=1)
    earn(member, 5_000)
    mall_redeem(actor=cashier, member=member, item=item, idempotency_key=keys())
    before = state(member, item)

    with pytest.raises(Conflict) as refused:
        mall_redeem(actor=cashier, member=member, item=item, idempotency_key=keys())

    assert refused.value.code == "mall.limit_reached"
    assert refused.value.extra == {"limit": 1, "already": 1}
    assert state(member, item) == before
    # another member is not affected
    other = make_member(store1)
    earn(other, 1_000)
    assert mall_redeem(actor=cashier, member=other, item=item, idempotency_key=keys()).status == "completed"


def test_a_rejected_redemption_does_not_count_against_the_limit(cashier, boss, member, earn, make_item, keys):
    item = make_item("限兑贵重", 20_000, stock=5, per_member_limit=1)
    earn(member, 40_000)
    pending = mall_redeem(actor=cashier, member=member, item=item, idempotency_key=keys())
    mall_redemption_reject(actor=boss, redemption=pending, reason="no")

    again = mall_redeem(actor=cashier, member=member, item=item, idempotency_key=keys())

    assert again.status == RedemptionStatus.PENDING
    assert points_balance(member) == 20_000


def test_inactive_item_or_inactive_member_is_refused(cashier, hq, member, earn, mask_box, keys):
    earn(member, 6_200)
    mall_item_update(
        actor=hq,
        item=mask_box,
        data=MallItemInput(kind=MallItemKind.GIFT, name="面膜礼盒", points_price=5_000, is_active=False),
    )
    before = state(member, mask_box)

    with pytest.raises(ValidationFailed) as refused:
        mall_redeem(actor=cashier, member=member, item=mask_box, idempotency_key=keys())

    assert refused.value.code == "mall.item_unavailable"
    assert state(member, mask_box) == before
    assert list(mall_items(cashier)) == []


# --- points + cash ------------------------------------------------------------------------------------------------


def test_points_plus_cash_records_the_tender_and_posts_the_cash(cashier, boss, member, earn, make_item, keys, store1):
    upgrade = make_item("护理升级（加 50 元）", 2_000, stock=None, kind=MallItemKind.POINTS_CASH, cash_fen=5_000)
    earn(member, 6_200)

    # no tender: refused, nothing written
    before = state(member, upgrade)
    with pytest.raises(ValidationFailed) as refused:
        mall_redeem(actor=cashier, member=member, item=upgrade, idempotency_key=keys())
    assert refused.value.code == "mall.tender_required"
    assert state(member, upgrade) == before

    redemption = mall_redeem(actor=cashier, member=member, item=upgrade, tender="wechat", idempotency_key=keys())

    assert (redemption.points, redemption.cash_fen, redemption.tender) == (2_000, 5_000, "wechat")
    assert points_balance(member) == 4_200
    assert redemption.stock_journal is None  # unlimited
    assert mall_item_stock(upgrade) is None
    cash = {e.account.kind: e.amount for e in redemption.cash_journal.entries.select_related("account")}
    assert cash == {"tender_wechat": -5_000, "revenue": 5_000}
    assert balance_of(store_account(store=store1, kind="tender_wechat")) == -5_000
    assert balance_of(store_account(store=store1, kind="revenue")) == 5_000


def test_rejected_points_plus_cash_gives_the_cash_back(cashier, boss, member, earn, make_item, keys, store1):
    big = make_item("高端疗程升级", 20_000, stock=None, kind=MallItemKind.POINTS_CASH, cash_fen=10_000)
    earn(member, 20_000)
    pending = mall_redeem(actor=cashier, member=member, item=big, tender="cash", idempotency_key=keys())
    assert pending.status == RedemptionStatus.PENDING

    mall_redemption_reject(actor=boss, redemption=pending, reason="顾客取消")

    assert points_balance(member) == 20_000
    assert balance_of(store_account(store=store1, kind="tender_cash")) == 0
    assert balance_of(store_account(store=store1, kind="revenue")) == 0
    assert Journal.objects.filter(code="mall.cash.reversal").count() == 1


def test_a_points_only_item_takes_no_tender(cashier, member, earn, mask_box, keys):
    earn(member, 6_200)
    with pytest.raises(ValidationFailed) as refused:
        mall_redeem(actor=cashier, member=member, item=mask_box, tender="cash", idempotency_key=keys())
    assert refused.value.code == "mall.tender_not_needed"


# --- stock is journaled ---------------------------------------------------------------------------------------------


def test_stock_changes_are_journals(hq, mask_box):
    stock_in = Journal.objects.get(code="mall.stock_in", reference_id=str(mask_box.pk))
    assert sorted(Entry.objects.filter(journal=stock_in).values_list("amount", flat=True)) == [-3, 3]

    journal = mall_stock_add(actor=hq, item=mask_box, quantity=5, idempotency_key="restock-1", memo="到货")
    assert mall_item_stock(mask_box) == 8
    assert journal.code == "mall.stock_in"
    # a replay adds nothing
    assert (
        mall_stock_add(actor=hq, item=mask_box, quantity=5, idempotency_key="restock-1", memo="到货").pk == journal.pk
    )
    assert mall_item_stock(mask_box) == 8

    out = mall_stock_add(actor=hq, item=mask_box, quantity=-2, idempotency_key="damaged-1", memo="破损")
    assert out.code == "mall.stock_out"
    assert mall_item_stock(mask_box) == 6

    journals = Journal.objects.count()
    with pytest.raises(Conflict) as refused:
        mall_stock_add(actor=hq, item=mask_box, quantity=-7, idempotency_key="too-many")
    assert refused.value.code == "mall.insufficient_stock"
    assert mall_item_stock(mask_box) == 6
    assert Journal.objects.count() == journals
    assert AuditLog.objects.filter(action="mall.stock_add").count() == 2
    assert verify_ledger() == []


def test_item_creation_is_idempotent(hq):
    data = MallItemInput(kind=MallItemKind.GIFT, name="护手霜", points_price=800)

    first = mall_item_create(actor=hq, data=data, initial_stock=5, idempotency_key="new-item")
    again = mall_item_create(actor=hq, data=data, initial_stock=5, idempotency_key="new-item")

    assert again.pk == first.pk
    assert MallItem.objects.count() == 1
    assert mall_item_stock(first) == 5
    with pytest.raises(Conflict):
        mall_item_create(actor=hq, data=data, initial_stock=6, idempotency_key="new-item")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"kind": "nonsense"}, "mall.invalid_kind"),
        ({"name": " "}, "input.invalid"),
        ({"points_price": 0}, "mall.invalid_number"),
        ({"kind": MallItemKind.POINTS_CASH}, "mall.cash_required"),
        ({"cash_fen": 100}, "mall.cash_not_allowed"),
        ({"per_member_limit": 0}, "mall.invalid_number"),
        ({"catalog_item_id": 999_999}, "mall.invalid_catalog_item"),
        ({"store_ids": [999_999]}, "mall.invalid_store"),
    ],
)
def test_invalid_items_are_refused(hq, fields, code):
    data = MallItemInput(**{"kind": MallItemKind.GIFT, "name": "礼品", "points_price": 1_000, **fields})
    with pytest.raises(ValidationFailed) as refused:
        mall_item_create(actor=hq, data=data, idempotency_key="bad")
    assert refused.value.code == code
    assert MallItem.objects.count() == 0


def test_settings_change_the_minimum_and_the_threshold(hq, cashier, member, earn, make_item, keys):
    sample = make_item("小样", 300, stock=5)
    earn(member, 1_000)
    mall_settings_set(actor=hq, min_redeem_points=300, approval_threshold_points=None)

    assert mall_rules(hq.organisation.pk).min_redeem_points == 300
    assert mall_redeem(actor=cashier, member=member, item=sample, idempotency_key=keys()).status == "completed"
    assert AuditLog.objects.filter(action="mall.settings_set").count() == 1
    with pytest.raises(PermissionDenied):
        mall_settings_set(actor=cashier, min_redeem_points=1, approval_threshold_points=1)


# --- scoping and permissions -----------------------------------------------------------------------------------------


def test_a_member_of_another_store_is_not_found(receptionist2, store2, actor_for, member, earn, mask_box, keys):
    earn(member, 6_200)
    other_cashier = actor_for(receptionist2, store2)
    before = state(member, mask_box)

    with pytest.raises(NotFound):
        mall_redeem(actor=other_cashier, member=member, item=mask_box, idempotency_key=keys())
    assert state(member, mask_box) == before


def test_an_item_offered_in_another_store_only_is_refused(cashier, member, earn, make_item, store2, keys):
    item = make_item("徐汇店专享", 1_000, stock=5, store_ids=[store2.pk])
    earn(member, 6_200)
    before = state(member, item)

    with pytest.raises(ValidationFailed) as refused:
        mall_redeem(actor=cashier, member=member, item=item, idempotency_key=keys())

    assert refused.value.code == "mall.item_unavailable"
    assert state(member, item) == before
    assert list(mall_items(cashier, store=cashier.store)) == []


def test_redemptions_are_scoped_to_the_stores_one_sees(
    cashier, boss, org, store2, actor_for, make_member, earn, make_item, keys
):
    device = make_item("美容仪", 20_000, stock=5)
    member = make_member(cashier.store)
    earn(member, 20_000)
    pending = mall_redeem(actor=cashier, member=member, item=device, idempotency_key=keys())
    manager2 = actor_for(StaffFactory(organisation=org, position=Position.STORE_MANAGER, stores=[store2]), store2)

    assert list(pending_redemptions(boss)) == [pending]
    assert list(pending_redemptions(manager2)) == []
    assert list(store_redemptions(manager2)) == []
    with pytest.raises(NotFound):
        redemption_get(manager2, pending.pk)
    before = state(member, device)
    with pytest.raises(NotFound):
        mall_redemption_approve(actor=manager2, redemption=pending)
    with pytest.raises(NotFound):
        mall_redemption_reject(actor=manager2, redemption=pending, reason="x")
    assert state(member, device) == before


def test_permissions(beautician, actor_for, store1, cashier, boss, member, earn, make_item, keys):
    device = make_item("美容仪", 20_000, stock=5)
    earn(member, 40_000)
    before = state(member, device)

    # a beautician may not redeem
    with pytest.raises(PermissionDenied):
        mall_redeem(actor=actor_for(beautician, store1), member=member, item=device, idempotency_key=keys())
    # a cashier may not manage items or stock
    with pytest.raises(PermissionDenied):
        mall_stock_add(actor=cashier, item=device, quantity=1, idempotency_key=keys())
    assert state(member, device) == before

    pending = mall_redeem(actor=cashier, member=member, item=device, idempotency_key=keys())
    before = state(member, device)
    # a cashier may not approve or reject
    with pytest.raises(PermissionDenied):
        mall_redemption_approve(actor=cashier, redemption=pending)
    with pytest.raises(PermissionDenied):
        mall_redemption_reject(actor=cashier, redemption=pending, reason="x")
    # a reason is needed to reject
    with pytest.raises(ValidationFailed):
        mall_redemption_reject(actor=boss, redemption=pending, reason=" ")
    assert state(member, device) == before

    # a manager who asked for it herself may not approve it
    own = mall_redeem(actor=boss, member=member, item=device, idempotency_key=keys())
    before = state(member, device)
    with pytest.raises(PermissionDenied) as refused:
        mall_redemption_approve(actor=boss, redemption=own)
    assert refused.value.code == "mall.self_approval"
    assert state(member, device) == before


def test_a_completed_redemption_cannot_be_approved(cashier, boss, member, earn, mask_box, keys):
    earn(member, 6_200)
    done = mall_redeem(actor=cashier, member=member, item=mask_box, idempotency_key=keys())
    with pytest.raises(Conflict) as refused:
        mall_redemption_approve(actor=boss, redemption=done)
    assert refused.value.code == "mall.not_pending"


# --- merge and export ------------------------------------------------------------------------------------------------


def test_export_lists_the_redemptions(hq, cashier, member, earn, mask_box, keys):
    earn(member, 6_200)
    mall_redeem(actor=cashier, member=member, item=mask_box, idempotency_key=keys())

    exported = member_export(actor=hq, member=member)

    assert [(r["item"], r["points"], r["status"]) for r in exported["mall_redemptions"]] == [
        ("面膜礼盒", 5_000, "completed")
    ]


def test_merge_moves_the_redemptions_and_a_pending_one_can_still_be_rejected(
    hq, cashier, boss, make_member, store1, earn, make_item, keys
):
    device = make_item("美容仪", 20_000, stock=1, per_member_limit=1)
    survivor = make_member(store1)
    merged = make_member(store1)
    earn(merged, 20_000)
    pending = mall_redeem(actor=cashier, member=merged, item=device, idempotency_key=keys())

    member_merge(actor=hq, survivor=survivor, merged=merged)

    assert list(member_redemptions(survivor)) == [pending]
    mall_redemption_reject(actor=boss, redemption=pending, reason="合并后取消")
    assert points_balance(survivor) == 20_000
    assert mall_item_stock(device) == 1
    assert verify_points_lots() == []
