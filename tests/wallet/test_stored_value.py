"""Stored-value card products and recharge rules (issue 5): S-13 bonus in monthly parts, S-14 cooling-off
refund, S-15 closing refund after spending, S-16 the principal cap; and the services around them."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.core.management import call_command

from meiye.audit.models import AuditLog
from meiye.catalog.services import item_save
from meiye.contracts.models import Contract
from meiye.core.errors import ApplicationError, Conflict, PermissionDenied, ValidationFailed
from meiye.core.money import Money
from meiye.ledger.models import Entry, Journal
from meiye.ledger.selectors import balance_of, journal_entries
from meiye.loyalty.models import PointsLot
from meiye.loyalty.selectors import points_balance
from meiye.loyalty.services import growth_balance
from meiye.loyalty.tiers import tier_save
from meiye.members.services import member_export, member_merge
from meiye.promotions.models import Coupon, CouponKind, CouponStatus
from meiye.promotions.services import CouponTemplateInput, coupon_template_save
from meiye.sales.services import LineInput, TenderInput, bill_checkout
from meiye.wallet.models import BonusInstalment, InstalmentStatus, Recharge, WalletClosure
from meiye.wallet.selectors import add_months, bonus_plan, recharge_preview, recharge_rule_for
from meiye.wallet.services import (
    CardProductInput,
    RechargeRuleInput,
    card_product_input,
    card_product_save,
    recharge_rule_save,
    store_account,
    wallet_balance,
    wallet_bonus_release_due,
    wallet_close,
    wallet_recharge,
    wallet_recharge_refund,
    wallet_transfer,
)
from tests.ledger.support import ledger_state
from tests.reference import reference_categories
from tests.wallet.conftest import at

JAN15 = date(2026, 1, 15)
RELEASE_DAYS = [date(2026, 2, 15), date(2026, 3, 15), date(2026, 4, 15), date(2026, 5, 15), date(2026, 6, 15)]


def fen(member: Any) -> tuple[int, int, int]:
    balance = wallet_balance(member)
    return balance.principal.fen, balance.bonus.fen, balance.pending.fen


def entries_of(journal: Journal) -> set[tuple[str, str, int]]:
    return {
        (e.account.owner_type, e.account.kind, e.amount) for e in journal_entries(journal).select_related("account")
    }


def spend(cashier: Any, hq: Any, member: Any, amount: str, day: date, key: str) -> Any:
    """Spend from stored value through the real checkout (a service priced at ``amount``)."""
    categories = reference_categories(hq)
    item = item_save(
        actor=hq,
        code=f"svc-{key}",
        name=f"护理 {amount}",
        category=categories["basic_care"],
        price=Money.parse(amount),
        duration_minutes=60,
    )
    with at(day):
        return bill_checkout(
            actor=cashier,
            member=member,
            lines=[LineInput(item_id=item.pk)],
            tenders=[TenderInput(kind="stored_value", amount=Money.parse(amount))],
            idempotency_key=key,
        )


# --- S-13 ---------------------------------------------------------------------------------------------------


def test_S13_recharge_bonus_paid_monthly(cashier, member, s13_rule, s13_recharge, store1):
    # given 充3000送600 in 6 monthly parts + 300 points, a recharge of 3,000.00 by WeChat on 2026-01-15
    recharge = s13_recharge

    # then principal 3,000.00, bonus 100.00, pending 500.00, 300 points — and no spend points, no growth
    assert fen(member) == (300_000, 10_000, 50_000)
    assert points_balance(member) == 300
    assert growth_balance(member) == 0
    lot = PointsLot.objects.get(member=member)
    assert lot.source_code == f"wallet.recharge_rule:{s13_rule.pk}"
    assert (recharge.rule, recharge.bonus_fen, recharge.pending_bonus_fen, recharge.bonus_points) == (
        s13_rule,
        10_000,
        50_000,
        300,
    )
    assert recharge.cooling_off_until == date(2026, 1, 22)
    assert entries_of(recharge.journal) == {
        ("store", "tender_wechat", -300_000),
        ("member", "wallet_principal", 300_000),
        ("store", "bonus_issued", -60_000),
        ("member", "wallet_bonus", 10_000),
        ("member", "wallet_bonus_pending", 50_000),
    }
    parts = list(BonusInstalment.objects.filter(recharge=recharge).order_by("seq"))
    assert [(p.seq, p.due_on, p.amount_fen) for p in parts] == [
        (k + 2, day, 10_000) for k, day in enumerate(RELEASE_DAYS)
    ]

    # when the job runs the day before the first part: nothing
    assert wallet_bonus_release_due(on=date(2026, 2, 14)) == 0
    # when it runs on each release day (twice on the first): 100.00 each, once
    released_bonus = [10_000]
    for day in RELEASE_DAYS:
        assert wallet_bonus_release_due(on=day) == 1
        assert wallet_bonus_release_due(on=day) == 0
        released_bonus.append(fen(member)[1] - sum(released_bonus))
    assert released_bonus == [10_000] * 6

    # then bonus released totals 600.00, nothing pending, still 300 points
    assert fen(member) == (300_000, 60_000, 0)
    releases = Journal.objects.filter(code="wallet.bonus_release")
    assert releases.count() == 5
    assert (
        sum(
            e.amount
            for e in Entry.objects.filter(
                journal__in=releases, account__kind="wallet_bonus", account__owner_id=member.pk
            )
        )
        + recharge.bonus_fen
        == 60_000
    )
    assert points_balance(member) == 300
    assert BonusInstalment.objects.filter(status=InstalmentStatus.RELEASED).count() == 5


def test_S13_preview_text(product, s13_rule):
    plan = recharge_preview(product=product, amount=Money.parse("3000.00"), on=JAN15)
    assert plan.describe()["zh-hans"] == "充3000送600：立即到账 100.00，另 500.00 分 5 个月到账，送 300 积分"
    assert plan.describe()["en"] == "充3000送600: 100.00 at once, 500.00 more over 5 months, 300 points"
    assert recharge_preview(product=product, amount=Money.parse("2999.99"), on=JAN15).rule is None


# --- S-14 -----------------------------------------------------------------------------------------------------


def test_S14_cooling_off_refund(refunder, member, s13_recharge, store1, hq):
    # given the S-13 recharge, a coupon from its rule, nothing spent
    recharge = s13_recharge

    # when it is refunded on 2026-01-20
    with at(date(2026, 1, 20)):
        refunded = wallet_recharge_refund(
            actor=refunder, recharge=recharge, tender="wechat", idempotency_key="s14", reason="冷静期内反悔"
        )

    # then 3,000.00 back to WeChat, bonus 100.00 and pending 500.00 cancelled, the 300 points taken back
    assert fen(member) == (0, 0, 0)
    assert points_balance(member) == 0
    assert balance_of(store_account(store=store1, kind="tender_wechat")) == 0
    assert balance_of(store_account(store=store1, kind="bonus_issued")) == 0
    assert entries_of(refunded.refund_journal) == {
        ("member", "wallet_principal", -300_000),
        ("store", "tender_wechat", 300_000),
        ("member", "wallet_bonus", -10_000),
        ("member", "wallet_bonus_pending", -50_000),
        ("store", "bonus_issued", 60_000),
    }
    assert refunded.refund_journal.code == "wallet.recharge_refund"
    assert set(BonusInstalment.objects.values_list("status", flat=True)) == {InstalmentStatus.CANCELLED}
    assert AuditLog.objects.filter(action="wallet.recharge_refund").count() == 1
    # and the job releases nothing afterwards
    assert wallet_bonus_release_due(on=date(2026, 6, 30)) == 0

    # a replay returns the refunded recharge; another key is refused
    with at(date(2026, 1, 20)):
        again = wallet_recharge_refund(
            actor=refunder, recharge=recharge, tender="wechat", idempotency_key="s14", reason="冷静期内反悔"
        )
        assert again.refund_journal_id == refunded.refund_journal_id
        with pytest.raises(Conflict) as exc:
            wallet_recharge_refund(
                actor=refunder, recharge=recharge, tender="wechat", idempotency_key="s14-b", reason="again"
            )
    assert exc.value.code == "wallet.recharge_refunded"


def test_S14_refused_after_the_cooling_off_period_and_writes_nothing(refunder, member, s13_recharge):
    before = ledger_state()
    with at(date(2026, 1, 23)), pytest.raises(Conflict) as exc:
        wallet_recharge_refund(actor=refunder, recharge=s13_recharge, tender="wechat", idempotency_key="k", reason="r")
    assert exc.value.code == "wallet.cooling_off_over"
    assert "2026-01-22" in exc.value.message_zh and exc.value.field == "recharge"
    assert ledger_state() == before
    # the last day still works
    with at(date(2026, 1, 22)):
        wallet_recharge_refund(actor=refunder, recharge=s13_recharge, tender="cash", idempotency_key="k", reason="r")
    assert fen(member) == (0, 0, 0)


def test_S14_refused_once_anything_was_spent(refunder, cashier, hq, member, s13_recharge):
    spend(cashier, hq, member, "100.00", date(2026, 1, 16), "bill-1")
    before = ledger_state()
    with at(date(2026, 1, 17)), pytest.raises(Conflict) as exc:
        wallet_recharge_refund(actor=refunder, recharge=s13_recharge, tender="wechat", idempotency_key="k", reason="r")
    assert exc.value.code == "wallet.recharge_used"
    assert ledger_state() == before


def test_cooling_off_refund_needs_prepaid_refund(cashier, s13_recharge):
    with at(date(2026, 1, 16)), pytest.raises(PermissionDenied):
        wallet_recharge_refund(actor=cashier, recharge=s13_recharge, tender="wechat", idempotency_key="k", reason="r")


def test_cooling_off_refund_voids_the_rules_unused_coupons(hq, cashier, refunder, member, product):
    template = coupon_template_save(
        actor=hq,
        data=CouponTemplateInput(name="护理券50元", kind=CouponKind.AMOUNT_OFF, amount_off_fen=5_000, valid_days=90),
    )
    recharge_rule_save(
        actor=hq,
        product=product,
        data=RechargeRuleInput(threshold_fen=100_000, bonus_fen=10_000, coupon_template_id=template.pk, coupon_count=2),
    )
    with at(JAN15):
        recharge = wallet_recharge(
            actor=cashier, member=member, amount=Money.parse("1000.00"), tender="cash", idempotency_key="c"
        )
    assert Coupon.objects.filter(member=member, source=f"recharge:{recharge.pk}").count() == 2
    with at(date(2026, 1, 16)):
        wallet_recharge_refund(actor=refunder, recharge=recharge, tender="cash", idempotency_key="r", reason="r")
    assert set(Coupon.objects.filter(member=member).values_list("status", flat=True)) == {CouponStatus.VOID}


# --- S-15 ----------------------------------------------------------------------------------------------------------


def test_S15_close_after_spending(refunder, cashier, hq, member, s13_recharge, store1):
    # given principal 3,000.00, bonus 100.00 (and 500.00 pending); she spends 620.00 = 600.00 + 20.00
    assert fen(member) == (300_000, 10_000, 50_000)
    bill = spend(cashier, hq, member, "620.00", date(2026, 1, 18), "bill-620")
    assert fen(member) == (240_000, 8_000, 50_000)
    bill_journal = Journal.objects.get(code="sales.bill", reference_id=str(bill.pk))
    assert {(kind, amount) for owner, kind, amount in entries_of(bill_journal) if owner == "member"} == {
        ("wallet_principal", -60_000),
        ("wallet_bonus", -2_000),
    }

    # when she closes the card after the cooling-off period
    with at(date(2026, 2, 1)):
        closure = wallet_close(actor=refunder, member=member, tender="wechat", idempotency_key="s15", reason="搬家")

    # then 2,400.00 refunded, 80.00 bonus forfeited, the pending parts cancelled; each movement in the ledger
    assert (closure.principal_fen, closure.bonus_forfeited_fen, closure.pending_cancelled_fen) == (
        240_000,
        8_000,
        50_000,
    )
    assert fen(member) == (0, 0, 0)
    assert closure.journal.code == "wallet.close"
    assert entries_of(closure.journal) == {
        ("member", "wallet_principal", -240_000),
        ("store", "tender_wechat", 240_000),
        ("member", "wallet_bonus", -8_000),
        ("store", "bonus_forfeited", 8_000),
        ("member", "wallet_bonus_pending", -50_000),
        ("store", "bonus_issued", 50_000),
    }
    assert balance_of(store_account(store=store1, kind="bonus_forfeited")) == 8_000
    assert balance_of(store_account(store=store1, kind="tender_wechat")) == -300_000 + 240_000
    assert set(BonusInstalment.objects.values_list("status", flat=True)) == {InstalmentStatus.CANCELLED}
    assert wallet_bonus_release_due(on=date(2026, 6, 30)) == 0
    # a replay returns the same closure; a second close finds nothing
    with at(date(2026, 2, 1)):
        assert (
            wallet_close(actor=refunder, member=member, tender="wechat", idempotency_key="s15", reason="搬家").pk
            == closure.pk
        )
        with pytest.raises(Conflict) as exc:
            wallet_close(actor=refunder, member=member, tender="wechat", idempotency_key="s15-b", reason="again")
    assert exc.value.code == "wallet.nothing_to_close"
    assert WalletClosure.objects.count() == 1


# --- S-16 --------------------------------------------------------------------------------------------------


def test_S16_prepaid_cap(hq, cashier, member, product):
    # given the store caps a named card's principal at 5,000.00 and the member has 4,000.00
    card_product_save(
        actor=hq,
        product=product,
        data=CardProductInput(**{**card_product_input(product).__dict__, "named_cap_fen": 500_000}),
    )
    wallet_recharge(actor=cashier, member=member, amount=Money.parse("4000.00"), tender="cash", idempotency_key="a")
    before = (ledger_state(), Recharge.objects.count(), AuditLog.objects.count(), Contract.objects.count())

    # when she recharges 1,500.00
    with pytest.raises(ApplicationError) as exc:
        wallet_recharge(actor=cashier, member=member, amount=Money.parse("1500.00"), tender="cash", idempotency_key="b")

    # then refused, naming the field, the cap and the room left; nothing written
    error = exc.value
    assert (error.code, error.field) == ("wallet.cap_exceeded", "amount")
    assert (error.extra["cap"], error.extra["room"]) == ("5000.00", "1000.00")
    assert "5000.00" in error.message_zh and "1000.00" in error.message_zh and "1000.00" in error.message_en
    assert (ledger_state(), Recharge.objects.count(), AuditLog.objects.count(), Contract.objects.count()) == before
    # exactly up to the cap is fine
    wallet_recharge(actor=cashier, member=member, amount=Money.parse("1000.00"), tender="cash", idempotency_key="c")
    assert fen(member)[0] == 500_000


def test_anonymous_cap_applies_to_an_anonymous_recharge(hq, cashier, member, product):
    card_product_save(
        actor=hq,
        product=product,
        data=CardProductInput(**{**card_product_input(product).__dict__, "anonymous_cap_fen": 100_000}),
    )
    with pytest.raises(ApplicationError) as exc:
        wallet_recharge(
            actor=cashier, member=member, amount=Money.parse("1000.01"), tender="cash", idempotency_key="a", named=False
        )
    assert exc.value.code == "wallet.cap_exceeded" and exc.value.extra["named"] is False
    wallet_recharge(actor=cashier, member=member, amount=Money.parse("1000.01"), tender="cash", idempotency_key="b")


# --- rules, plans, recharge details ------------------------------------------------------------------------------


def test_the_highest_threshold_not_above_the_amount_applies(hq, product):
    small = recharge_rule_save(
        actor=hq, product=product, data=RechargeRuleInput(threshold_fen=100_000, bonus_fen=10_000)
    )
    big = recharge_rule_save(actor=hq, product=product, data=RechargeRuleInput(threshold_fen=500_000, bonus_fen=80_000))
    recharge_rule_save(
        actor=hq,
        product=product,
        data=RechargeRuleInput(threshold_fen=200_000, bonus_fen=30_000, active=False),
    )
    recharge_rule_save(
        actor=hq,
        product=product,
        data=RechargeRuleInput(threshold_fen=300_000, bonus_fen=50_000, starts_on=date(2026, 2, 1)),
    )
    assert recharge_rule_for(product, 99_999, JAN15) is None
    assert recharge_rule_for(product, 100_000, JAN15) == small
    assert recharge_rule_for(product, 400_000, JAN15) == small  # the 3,000 rule starts in February
    assert recharge_rule_for(product, 400_000, date(2026, 2, 1)).threshold_fen == 300_000
    assert recharge_rule_for(product, 900_000, JAN15) == big


def test_instalments_split_by_largest_remainder_and_clamp_to_month_end(hq, product):
    rule = recharge_rule_save(
        actor=hq, product=product, data=RechargeRuleInput(threshold_fen=100, bonus_fen=1_000, instalments=3)
    )
    plan = bonus_plan(rule, date(2026, 1, 31))
    assert plan.now == Money(334)
    assert [(p.seq, p.due_on, p.amount.fen) for p in plan.later] == [
        (2, date(2026, 2, 28), 333),
        (3, date(2026, 3, 31), 333),
    ]
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)


def test_a_rule_bonus_needs_no_money_adjust_but_a_hand_bonus_does(
    cashier, member, s13_rule, manager, actor_for, store1
):
    with pytest.raises(PermissionDenied):
        wallet_recharge(
            actor=cashier,
            member=member,
            amount=Money.parse("3000.00"),
            bonus=Money.parse("50.00"),
            tender="cash",
            idempotency_key="a",
        )
    recharge = wallet_recharge(
        actor=actor_for(manager, store1),
        member=member,
        amount=Money.parse("3000.00"),
        bonus=Money.parse("50.00"),
        tender="cash",
        idempotency_key="b",
    )
    assert (recharge.hand_bonus_fen, recharge.bonus_fen, recharge.pending_bonus_fen) == (5_000, 15_000, 50_000)
    assert balance_of(store_account(store=store1, kind="bonus_issued")) == -65_000


def test_recharge_replay_returns_the_first_and_a_different_product_conflicts(cashier, member, s13_rule, hq):
    with at(JAN15):
        first = wallet_recharge(
            actor=cashier, member=member, amount=Money.parse("3000.00"), tender="wechat", idempotency_key="x"
        )
        again = wallet_recharge(
            actor=cashier, member=member, amount=Money.parse("3000.00"), tender="wechat", idempotency_key="x"
        )
        other = card_product_save(actor=hq, data=CardProductInput(code="vip", name="VIP卡"))
        with pytest.raises(ApplicationError) as exc:
            wallet_recharge(
                actor=cashier,
                member=member,
                amount=Money.parse("3000.00"),
                tender="wechat",
                idempotency_key="x",
                product=other,
            )
    assert again.pk == first.pk
    assert exc.value.code == "idempotency.key_reused"
    assert BonusInstalment.objects.count() == 5 and points_balance(member) == 300


def test_recharge_creates_the_stored_value_contract(s13_recharge, product):
    contract = Contract.objects.get(reference_type="wallet.Recharge", reference_id=str(s13_recharge.pk))
    assert s13_recharge.contract == contract
    assert (contract.kind, contract.price_fen) == ("stored_value", 300_000)
    assert contract.body["validity"]["zh-hans"] == "长期有效"
    assert "7 天" in contract.body["refund_method"]["zh-hans"]
    assert "充3000送600" in contract.body["items"][0]["detail"]["zh-hans"]


def test_an_inactive_product_is_refused(hq, cashier, member, product):
    card_product_save(
        actor=hq, product=product, data=CardProductInput(**{**card_product_input(product).__dict__, "active": False})
    )
    with pytest.raises(Conflict) as exc:
        wallet_recharge(
            actor=cashier,
            member=member,
            amount=Money.parse("10.00"),
            tender="cash",
            idempotency_key="a",
            product=product,
        )
    assert exc.value.code == "wallet.product_inactive"
    # without a product: the default is inactive, so no product at all
    recharge = wallet_recharge(
        actor=cashier, member=member, amount=Money.parse("10.00"), tender="cash", idempotency_key="b"
    )
    assert recharge.product is None and recharge.cooling_off_until is None


def test_rule_grants_a_tier(hq, cashier, member, product):
    tier_save(actor=hq, code="normal", name_zh="普通", threshold=Money(0))
    gold = tier_save(actor=hq, code="gold", name_zh="金卡", threshold=Money.parse("50000.00"))
    recharge_rule_save(
        actor=hq,
        product=product,
        data=RechargeRuleInput(threshold_fen=1_000_000, bonus_fen=0, grant_tier_id=gold.pk, grant_months=12),
    )
    with at(JAN15):
        wallet_recharge(
            actor=cashier, member=member, amount=Money.parse("10000.00"), tender="card", idempotency_key="t"
        )
    from meiye.loyalty.selectors import member_tier_state

    state = member_tier_state(member)
    assert state is not None and state.tier_id == gold.pk
    assert (state.floor_tier_id, state.floor_until) == (gold.pk, date(2027, 1, 14))


def test_rule_validation(hq, product):
    with pytest.raises(ValidationFailed) as exc:
        recharge_rule_save(actor=hq, product=product, data=RechargeRuleInput(threshold_fen=0))
    assert exc.value.field == "threshold"
    with pytest.raises(ValidationFailed) as exc:
        recharge_rule_save(actor=hq, product=product, data=RechargeRuleInput(threshold_fen=1, instalments=61))
    assert exc.value.field == "instalments"


def test_products_and_rules_need_cards_manage(cashier, product):
    with pytest.raises(PermissionDenied):
        card_product_save(actor=cashier, data=CardProductInput(code="x", name="x"))
    with pytest.raises(PermissionDenied):
        recharge_rule_save(actor=cashier, product=product, data=RechargeRuleInput(threshold_fen=1))


# --- the job ----------------------------------------------------------------------------------------------------


def test_release_job_by_organisation_and_command(s13_recharge, member, org, capsys):
    assert wallet_bonus_release_due(on=date(2026, 3, 15), organisation_id=org.pk + 1000) == 0
    call_command("wallet_bonus_release", "--date", "2026-03-15")
    assert fen(member) == (300_000, 30_000, 30_000)
    assert "2" in capsys.readouterr().out
    call_command("wallet_bonus_release", "--date", "2026-03-15")
    assert fen(member) == (300_000, 30_000, 30_000)


def test_release_job_sends_one_message_per_member_and_day(s13_recharge, member):
    from meiye.notify.models import Message

    wallet_bonus_release_due(on=date(2026, 3, 15))
    assert Message.objects.filter(event="wallet.bonus_released", member=member).count() == 1


# --- transfer and merge --------------------------------------------------------------------------------------


def test_transfer_moves_principal_bonus_pending_and_instalments(refunder, member, make_member, store1, s13_recharge):
    other = make_member(store1)
    journal = wallet_transfer(actor=refunder, source=member, target=other, idempotency_key="t", reason="转给女儿")
    assert journal.code == "wallet.transfer"
    assert fen(member) == (0, 0, 0)
    assert fen(other) == (300_000, 10_000, 50_000)
    assert set(BonusInstalment.objects.values_list("member_id", flat=True)) == {other.pk}
    assert (
        wallet_transfer(actor=refunder, source=member, target=other, idempotency_key="t", reason="转给女儿") == journal
    )
    with pytest.raises(Conflict):
        wallet_transfer(actor=refunder, source=member, target=other, idempotency_key="t2", reason="again")
    with pytest.raises(ValidationFailed):
        wallet_transfer(actor=refunder, source=other, target=other, idempotency_key="t3", reason="x")
    wallet_bonus_release_due(on=date(2026, 2, 15))
    assert fen(other) == (300_000, 20_000, 40_000)


def test_merge_moves_pending_bonus_and_instalments(hq, member, make_member, store1, s13_recharge):
    survivor = make_member(store1)
    member_merge(actor=hq, survivor=survivor, merged=member)
    assert fen(survivor) == (300_000, 10_000, 50_000)
    assert fen(member) == (0, 0, 0)
    assert set(BonusInstalment.objects.values_list("member_id", flat=True)) == {survivor.pk}


def test_export_has_pending_and_instalments(hq, member, s13_recharge):
    section = member_export(actor=hq, member=member)["wallet"]
    assert section["pending"] == "500.00"
    assert len(section["instalments"]) == 5


# --- concurrency -------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_release_runs_and_a_refund_release_each_part_once(
    cashier, refunder, member, make_member, store1, product, s13_rule
):
    """Four job runs at once, and the cooling-off refund of another recharge at the same moment: each
    instalment is released exactly once, the refunded recharge's parts are cancelled, never released."""
    import threading

    from django.db import connection

    other = make_member(store1)
    with at(JAN15, 10):
        wallet_recharge(
            actor=cashier, member=member, amount=Money.parse("3000.00"), tender="wechat", idempotency_key="a"
        )
        refunded = wallet_recharge(
            actor=cashier, member=other, amount=Money.parse("3000.00"), tender="wechat", idempotency_key="b"
        )
    start = threading.Barrier(5)
    results: list[Any] = []

    def run() -> None:
        try:
            start.wait()
            results.append(wallet_bonus_release_due(on=date(2026, 1, 20), batch_size=2))
        except Exception as error:
            results.append(repr(error))
        finally:
            connection.close()

    def refund() -> None:
        try:
            start.wait()
            with at(date(2026, 1, 20)):
                wallet_recharge_refund(
                    actor=refunder, recharge=refunded, tender="wechat", idempotency_key="r", reason="r"
                )
            results.append("refunded")
        except Exception as error:
            results.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)] + [threading.Thread(target=refund)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # nothing is due on 01-20: the runs release nothing; now the real day, four runs at once
    assert sorted(map(str, results)) == ["0", "0", "0", "0", "refunded"], results
    results.clear()
    start = threading.Barrier(4)

    def run_later() -> None:
        try:
            start.wait()
            results.append(wallet_bonus_release_due(on=date(2026, 6, 15), batch_size=2))
        except Exception as error:
            results.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=run_later) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == 5
    assert fen(member) == (300_000, 60_000, 0)
    assert fen(other) == (0, 0, 0)
    assert Journal.objects.filter(code="wallet.bonus_release").count() == 5
