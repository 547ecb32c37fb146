"""Stored value: recharge, the principal/bonus split (S-05), spending and refund legs, refusals,
idempotency, history, and the member merge / export / erasure hooks."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import transaction

from meiye.audit.models import AuditLog
from meiye.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from meiye.core.money import Money
from meiye.ledger.models import Journal
from meiye.ledger.selectors import balance_of, journal_entries
from meiye.ledger.services import Leg, journal_post
from meiye.ledger.verification import verify_ledger
from meiye.loyalty.selectors import points_lots
from meiye.loyalty.services import growth_balance, points_balance, points_earn, verify_points_lots
from meiye.members.models import ErasureRecord
from meiye.members.services import member_erase, member_export, member_merge
from meiye.wallet.models import Recharge, SpendOrder
from meiye.wallet.selectors import wallet_history
from meiye.wallet.services import (
    WalletSplit,
    store_account,
    wallet_accounts,
    wallet_balance,
    wallet_recharge,
    wallet_refund_legs,
    wallet_settings_set,
    wallet_spend_legs,
    wallet_split,
)
from tests.ledger.support import ledger_state


def pay(member, store, amount: str) -> tuple[WalletSplit, Journal]:
    """Pay from stored value as a bill would: split under lock, then wallet legs + revenue in one journal."""
    with transaction.atomic():
        split = wallet_split(member=member, store=store, amount=Money.parse(amount))
        journal = journal_post(
            organisation_id=member.organisation_id,
            code="test.bill",
            entries=[
                *wallet_spend_legs(member=member, split=split),
                Leg(store_account(store=store, kind="revenue"), split.total.fen),
            ],
        )
    return split, journal


def set_order(hq_admin, actor_for, store, order: str) -> None:
    wallet_settings_set(actor=actor_for(hq_admin, store), store=store, spend_order=order)


# --- recharge ---------------------------------------------------------------------------------------------------


def test_recharge_by_wechat_with_a_bonus(member, manager, actor_for, store1):
    # when a member recharges 3,000.00 by WeChat and the store manager gives 100.00
    recharge = wallet_recharge(
        actor=actor_for(manager, store1),
        member=member,
        amount=Money.parse("3000.00"),
        bonus=Money.parse("100.00"),
        tender="wechat",
        external_ref="4200001234",
        idempotency_key="recharge-1",
    )

    # then
    balance = wallet_balance(member)
    assert (balance.principal, balance.bonus, balance.total) == (Money(300_000), Money(10_000), Money(310_000))
    assert balance_of(store_account(store=store1, kind="tender_wechat")) == -300_000
    assert balance_of(store_account(store=store1, kind="bonus_issued")) == -10_000
    assert (recharge.amount_fen, recharge.bonus_fen, recharge.tender) == (300_000, 10_000, "wechat")
    assert (recharge.store, recharge.created_by, recharge.external_ref) == (store1, manager, "4200001234")
    journal = recharge.journal
    assert journal is not None
    assert (journal.code, journal.reference_type, journal.reference_id) == (
        "wallet.recharge",
        "wallet.Recharge",
        str(recharge.pk),
    )
    assert (journal.staff_id, journal.store_id, journal.idempotency_key) == (
        manager.pk,
        store1.pk,
        "recharge-1:cny",
    )
    assert sorted((e.account.owner_type, e.account.kind, e.amount) for e in journal_entries(journal)) == [
        ("member", "wallet_bonus", 10_000),
        ("member", "wallet_principal", 300_000),
        ("store", "bonus_issued", -10_000),
        ("store", "tender_wechat", -300_000),
    ]
    audit = AuditLog.objects.get(action="wallet.recharge")
    assert audit.detail == {"member": member.member_no, "amount": "3000.00", "bonus": "100.00", "tender": "wechat"}
    # a recharge is not spending: no points, no growth
    assert points_balance(member) == 0
    assert growth_balance(member) == 0
    assert not Journal.objects.exclude(code="wallet.recharge").exists()
    assert verify_ledger() == []


def test_recharge_without_bonus_posts_two_legs(member, recharge, store1):
    cash = recharge(member, "500.00", tender="cash")

    assert cash.journal is not None
    assert [(e.account.kind, e.amount) for e in journal_entries(cash.journal)] == [
        ("tender_cash", -50_000),
        ("wallet_principal", 50_000),
    ]
    assert wallet_balance(member).bonus == Money(0)


def test_recharge_replay_returns_the_first_recharge_and_a_different_body_is_refused(member, manager, actor_for, store1):
    kwargs = {
        "actor": actor_for(manager, store1),
        "member": member,
        "amount": Money.parse("3000.00"),
        "bonus": Money.parse("100.00"),
        "tender": "wechat",
        "idempotency_key": "recharge-1",
    }
    first = wallet_recharge(**kwargs)
    before = ledger_state()

    replay = wallet_recharge(**kwargs)
    with pytest.raises(Conflict) as conflict:
        wallet_recharge(**{**kwargs, "amount": Money.parse("2000.00")})

    assert replay.pk == first.pk
    assert conflict.value.code == "idempotency.key_reused"
    assert conflict.value.field == "idempotency_key"
    assert ledger_state() == before
    assert Recharge.objects.count() == 1
    assert AuditLog.objects.filter(action="wallet.recharge").count() == 1
    assert wallet_balance(member).principal == Money(300_000)


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"tender": "bitcoin"}, "wallet.invalid_tender", "tender"),
        ({"amount": Money(0)}, "wallet.invalid_amount", "amount"),
        ({"amount": Money(-100)}, "wallet.invalid_amount", "amount"),
        ({"bonus": Money(-1)}, "wallet.invalid_amount", "bonus"),
        ({"external_ref": "x" * 65}, "input.too_long", "external_ref"),
        ({"idempotency_key": " "}, "idempotency.invalid_key", "idempotency_key"),
    ],
)
def test_recharge_refuses_bad_input_and_writes_nothing(member, cashier, change, code, field):
    before = ledger_state()
    kwargs = {"actor": cashier, "member": member, "amount": Money(100_000), "tender": "cash", "idempotency_key": "k"}

    with pytest.raises(ValidationFailed) as refused:
        wallet_recharge(**{**kwargs, **change})

    assert (refused.value.code, refused.value.field) == (code, field)
    assert refused.value.message_zh and refused.value.message_en
    assert ledger_state() == before
    assert not Recharge.objects.exists()
    assert not AuditLog.objects.filter(action="wallet.recharge").exists()


def test_recharge_needs_the_checkout_permission_and_a_visible_member(
    member, make_member, store2, beautician, receptionist, actor_for
):
    elsewhere = make_member(store2)
    before = ledger_state()

    with pytest.raises(PermissionDenied):
        wallet_recharge(
            actor=actor_for(beautician), member=member, amount=Money(100), tender="cash", idempotency_key="k1"
        )
    with pytest.raises(NotFound):
        wallet_recharge(
            actor=actor_for(receptionist), member=elsewhere, amount=Money(100), tender="cash", idempotency_key="k2"
        )

    assert ledger_state() == before
    assert not Recharge.objects.exists()


# --- split and spending -------------------------------------------------------------------------------------


def test_S05_stored_value_is_spent_in_proportion_to_principal_and_bonus(member, recharge, store1):
    # given principal 1,000.00 and bonus 200.00
    recharge(member, "1000.00", "200.00")

    # when 540.00 is paid from stored value
    split, journal = pay(member, store1, "540.00")

    # then 450.00 principal + 90.00 bonus; afterwards principal 550.00, bonus 110.00
    assert (split.principal, split.bonus) == (Money(45_000), Money(9_000))
    balance = wallet_balance(member)
    assert (balance.principal, balance.bonus) == (Money(55_000), Money(11_000))
    assert sorted((e.account.kind, e.amount) for e in journal_entries(journal)) == [
        ("revenue", 54_000),
        ("wallet_bonus", -9_000),
        ("wallet_principal", -45_000),
    ]
    assert verify_ledger() == []


def test_proportional_split_gives_the_odd_fen_to_the_larger_remainder(member, recharge, store1):
    recharge(member, "333.33", "66.67")  # 33,333 + 6,667 fen

    # 100.00: shares 8,333.25 and 1,666.75 → 8,333 + 1,667
    assert wallet_split(member=member, store=store1, amount=Money(10_000)) == WalletSplit(Money(8_333), Money(1_667))
    # 0.01: shares 0.833 and 0.167 → the fen goes to principal
    assert wallet_split(member=member, store=store1, amount=Money(1)) == WalletSplit(Money(1), Money(0))
    # everything
    assert wallet_split(member=member, store=store1, amount=Money(40_000)) == WalletSplit(Money(33_333), Money(6_667))


def test_principal_first_and_bonus_first(member, recharge, store1, hq_admin, actor_for):
    recharge(member, "1000.00", "200.00")

    set_order(hq_admin, actor_for, store1, SpendOrder.PRINCIPAL_FIRST)
    assert wallet_split(member=member, store=store1, amount=Money(110_000)) == WalletSplit(
        Money(100_000), Money(10_000)
    )
    assert wallet_split(member=member, store=store1, amount=Money(30_000)) == WalletSplit(Money(30_000), Money(0))

    set_order(hq_admin, actor_for, store1, SpendOrder.BONUS_FIRST)
    assert wallet_split(member=member, store=store1, amount=Money(110_000)) == WalletSplit(Money(90_000), Money(20_000))
    split, journal = pay(member, store1, "150.00")

    assert split == WalletSplit(Money(0), Money(15_000))
    assert [(e.account.kind, e.amount) for e in journal_entries(journal)] == [
        ("wallet_bonus", -15_000),
        ("revenue", 15_000),
    ]
    assert wallet_balance(member).bonus == Money(5_000)
    assert AuditLog.objects.filter(action="wallet.settings_set").count() == 2
    assert verify_ledger() == []


def test_spend_order_is_per_store(member, recharge, store1, store2, hq_admin, actor_for):
    recharge(member, "1000.00", "200.00")
    set_order(hq_admin, actor_for, store2, SpendOrder.PRINCIPAL_FIRST)

    assert wallet_split(member=member, store=store1, amount=Money(54_000)) == WalletSplit(Money(45_000), Money(9_000))
    assert wallet_split(member=member, store=store2, amount=Money(54_000)) == WalletSplit(Money(54_000), Money(0))


def test_spend_order_setting_needs_store_management(store1, manager, actor_for):
    with pytest.raises(PermissionDenied):
        wallet_settings_set(actor=actor_for(manager), store=store1, spend_order=SpendOrder.BONUS_FIRST)


def test_spending_more_than_the_balance_is_refused_and_nothing_changes(member, recharge, store1):
    recharge(member, "1000.00", "200.00")
    before = ledger_state()

    with pytest.raises(ApplicationError) as refused:
        pay(member, store1, "1200.01")
    with pytest.raises(ValidationFailed) as zero:
        wallet_split(member=member, store=store1, amount=Money(0))

    assert refused.value.code == "wallet.insufficient_balance"
    assert refused.value.field == "amount"
    assert refused.value.extra == {
        "balance": "1200.00",
        "balance_fen": 120_000,
        "principal_fen": 100_000,
        "bonus_fen": 20_000,
        "amount_fen": 120_001,
    }
    assert "储值余额不足" in refused.value.message_zh
    assert "Not enough stored value" in refused.value.message_en
    assert zero.value.code == "wallet.invalid_amount"
    assert ledger_state() == before


def test_a_member_without_a_wallet_has_zero_and_cannot_pay(member, store1):
    before = ledger_state()

    assert wallet_balance(member).total == Money(0)
    with pytest.raises(ApplicationError) as refused:
        pay(member, store1, "0.01")

    assert refused.value.code == "wallet.insufficient_balance"
    assert ledger_state() == before


def test_refund_legs_put_principal_and_bonus_back(member, recharge, store1):
    recharge(member, "1000.00", "200.00")
    split, _ = pay(member, store1, "540.00")

    journal_post(
        organisation_id=member.organisation_id,
        code="test.refund",
        entries=[
            *wallet_refund_legs(member=member, principal=split.principal, bonus=split.bonus),
            Leg(store_account(store=store1, kind="revenue"), -split.total.fen),
        ],
    )

    balance = wallet_balance(member)
    assert (balance.principal, balance.bonus) == (Money(100_000), Money(20_000))
    assert wallet_refund_legs(member=member, principal=Money(100), bonus=Money(0)) == [
        Leg(wallet_accounts(member=member).principal, 100)
    ]
    with pytest.raises(ValueError):
        wallet_refund_legs(member=member, principal=Money(-1), bonus=Money(0))
    assert verify_ledger() == []


def test_store_account_knows_only_the_store_kinds(store1):
    assert store_account(store=store1, kind="points_offset").may_go_negative is True
    with pytest.raises(ValueError):
        store_account(store=store1, kind="wallet_principal")


def test_wallet_history_shows_each_movement_with_the_balances_after(member, recharge, store1):
    recharge(member, "1000.00", "200.00")
    pay(member, store1, "540.00")
    recharge(member, "100.00", tender="cash")

    lines = wallet_history(member)

    assert [(line.code, line.principal.fen, line.bonus.fen) for line in lines] == [
        ("wallet.recharge", 10_000, 0),
        ("test.bill", -45_000, -9_000),
        ("wallet.recharge", 100_000, 20_000),
    ]
    assert [(line.principal_after.fen, line.bonus_after.fen) for line in lines] == [
        (65_000, 11_000),
        (55_000, 11_000),
        (100_000, 20_000),
    ]
    assert [line.code for line in wallet_history(member, limit=1)] == ["wallet.recharge"]


# --- merge, export, erasure ---------------------------------------------------------------------------------------


def test_merge_moves_the_wallet_recharges_and_points_to_the_survivor(
    make_member, store1, recharge, cashier, hq_admin, actor_for
):
    # given two records of one person, both with stored value, the duplicate also with points
    survivor = make_member(store1)
    duplicate = make_member(store1)
    recharge(survivor, "100.00")
    recharge(duplicate, "3000.00", "100.00")
    lot = points_earn(
        actor=cashier,
        member=duplicate,
        points=300,
        source_code="earn.bill",
        reference_type="t",
        reference_id="1",
        idempotency_key="p1",
        earned_on=date(2026, 1, 5),
    )

    # when they are merged
    member_merge(actor=actor_for(hq_admin), survivor=survivor, merged=duplicate)

    # then
    kept, gone = wallet_balance(survivor), wallet_balance(duplicate)
    assert (kept.principal, kept.bonus) == (Money(310_000), Money(10_000))
    assert gone.total == Money(0)
    assert Recharge.objects.filter(member=survivor).count() == 2
    assert points_balance(survivor) == 300
    assert list(points_lots(survivor)) == [lot]
    merge = Journal.objects.get(code="wallet.merge")
    assert sorted((e.account.owner_id, e.account.kind, e.amount) for e in journal_entries(merge)) == sorted(
        [
            (duplicate.pk, "wallet_principal", -300_000),
            (survivor.pk, "wallet_principal", 300_000),
            (duplicate.pk, "wallet_bonus", -10_000),
            (survivor.pk, "wallet_bonus", 10_000),
        ]
    )
    moved = AuditLog.objects.get(action="member.merge").detail["moved"]
    assert (moved["wallet_principal_fen"], moved["wallet_bonus_fen"], moved["recharges"]) == (300_000, 10_000, 1)
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_merge_of_a_member_without_a_wallet_posts_nothing(make_member, store1, hq_admin, actor_for):
    survivor, duplicate = make_member(store1), make_member(store1)
    before = ledger_state()

    member_merge(actor=actor_for(hq_admin), survivor=survivor, merged=duplicate)

    assert ledger_state()["journals"] == before["journals"]
    assert not Journal.objects.filter(code="wallet.merge").exists()


def test_refund_legs_for_a_merged_member_go_to_the_survivor(make_member, store1, recharge, hq_admin, actor_for):
    survivor, duplicate = make_member(store1), make_member(store1)
    recharge(duplicate, "100.00")
    member_merge(actor=actor_for(hq_admin), survivor=survivor, merged=duplicate)
    duplicate.refresh_from_db()

    legs = wallet_refund_legs(member=duplicate, principal=Money(500), bonus=Money(0))

    assert legs == [Leg(wallet_accounts(member=survivor).principal, 500)]


def test_export_holds_the_wallet(member, recharge, store1, hq_admin, actor_for):
    recharge(member, "1000.00", "200.00")
    pay(member, store1, "540.00")

    data = member_export(actor=actor_for(hq_admin), member=member)

    wallet = data["wallet"]
    assert (wallet["principal"], wallet["bonus"]) == ("550.00", "110.00")
    assert [(r["amount"], r["bonus"], r["tender"], r["store"]) for r in wallet["recharges"]] == [
        ("1000.00", "200.00", "wechat", store1.name)
    ]
    assert [(h["code"], h["principal_after"], h["bonus_after"]) for h in wallet["history"]] == [
        ("test.bill", "550.00", "110.00"),
        ("wallet.recharge", "1000.00", "200.00"),
    ]
    assert data["points"]["balance"] == 0


def test_erasure_keeps_the_phone_of_a_member_who_bought_stored_value(
    make_member, store1, recharge, hq_admin, actor_for
):
    # given one member with a recharge and one without
    buyer = make_member(store1, phone="13800135678")
    other = make_member(store1, phone="13800139999")
    recharge(buyer, "100.00")
    hq = actor_for(hq_admin)

    # when both ask to be erased
    member_erase(actor=hq, member=buyer, reason="本人申请注销")
    member_erase(actor=hq, member=other, reason="本人申请注销")

    # then the buyer's phone is kept (restricted) with the reason; the other's is erased
    buyer.refresh_from_db()
    other.refresh_from_db()
    assert buyer.phone == "13800135678"
    assert buyer.restricted is True
    kept = ErasureRecord.objects.get(member=buyer).kept_fields
    assert [k["field"] for k in kept] == ["phone"]
    assert "预付卡" in kept[0]["why"]
    assert other.phone is None
    assert "phone" in ErasureRecord.objects.get(member=other).erased_fields
    # the amounts stay
    assert wallet_balance(buyer).principal == Money(10_000)


def test_a_cashier_cannot_give_a_bonus_by_hand(member, cashier):
    from meiye.core.errors import PermissionDenied

    before = ledger_state()
    with pytest.raises(PermissionDenied) as exc:
        wallet_recharge(
            actor=cashier,
            member=member,
            amount=Money.parse("0.01"),
            bonus=Money.parse("50000.00"),
            tender="cash",
            idempotency_key="mint",
        )
    assert exc.value.code == "wallet.bonus_not_allowed"
    assert ledger_state() == before
