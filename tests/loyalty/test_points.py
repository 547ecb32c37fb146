"""Points: rates and arithmetic (S-02, S-03), lots and expiry (S-08), take-back and debt (S-22),
restore, idempotency, refusals, growth value, merge and export."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import transaction

from meiye.audit.models import AuditLog
from meiye.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from meiye.ledger.models import Journal
from meiye.ledger.selectors import journal_entries
from meiye.ledger.verification import verify_ledger
from meiye.loyalty.models import EarningRate, PointsLot, PointsLotUse
from meiye.loyalty.selectors import earning_rates, points_expiring, points_history, points_lots
from meiye.loyalty.services import (
    add_months,
    earning_rate_set,
    growth_add,
    growth_balance,
    loyalty_settings_set,
    points_balance,
    points_earn,
    points_expire_due,
    points_for_amount,
    points_restore,
    points_spend,
    points_take_back,
    verify_points_lots,
)
from meiye.members.services import member_export, member_merge
from meiye.org.models import Organisation
from tests.factories import StaffFactory, StoreFactory
from tests.ledger.support import ledger_state

# --- S-02, S-03: rates and arithmetic ------------------------------------------------------------------------


def test_S02_category_rates(hq_admin, actor_for, org):
    # given the reference configuration
    hq = actor_for(hq_admin)
    earning_rate_set(actor=hq, earning_category="basic_care", points_per_yuan=1)
    earning_rate_set(actor=hq, earning_category="anti_ageing", points_per_yuan=3)
    earning_rate_set(actor=hq, earning_category="retail", points_per_yuan=2)
    rates = earning_rates(org)

    # when a Regular member pays cash for basic care 350.00, anti-ageing 1,000.00 and retail 250.00
    lines = [("basic_care", 35_000), ("anti_ageing", 100_000), ("retail", 25_000)]
    points = [points_for_amount(earning_fen=fen, points_per_yuan=rates.get(cat, 0)) for cat, fen in lines]

    # then
    assert rates == {"anti_ageing": 3, "basic_care": 1, "retail": 2}
    assert points == [350, 3_000, 500]
    assert sum(points) == 3_850
    assert rates.get("hair", 0) == 0  # a category without a rate earns nothing
    assert AuditLog.objects.filter(action="loyalty.earning_rate_set").count() == 3


def test_earning_rate_set_changes_the_rate_in_place(hq_admin, actor_for, org):
    hq = actor_for(hq_admin)
    earning_rate_set(actor=hq, earning_category="basic_care", points_per_yuan=1)

    earning_rate_set(actor=hq, earning_category="basic_care", points_per_yuan=2)

    assert earning_rates(org) == {"basic_care": 2}
    assert EarningRate.objects.count() == 1


def test_earning_rate_set_needs_catalog_permission_and_a_valid_category(manager, hq_admin, actor_for, org):
    with pytest.raises(PermissionDenied):
        earning_rate_set(actor=actor_for(manager), earning_category="basic_care", points_per_yuan=1)
    with pytest.raises(ValidationFailed) as bad_category:
        earning_rate_set(actor=actor_for(hq_admin), earning_category="none", points_per_yuan=1)
    with pytest.raises(ValidationFailed) as bad_rate:
        earning_rate_set(actor=actor_for(hq_admin), earning_category="retail", points_per_yuan=-1)

    assert bad_category.value.field == "earning_category"
    assert bad_rate.value.field == "points_per_yuan"
    assert earning_rates(org) == {}
    assert not AuditLog.objects.filter(action="loyalty.earning_rate_set").exists()


def test_S03_multipliers_and_truncation():
    # Gold ×1.2 = 6/5, Diamond ×1.5 = 3/2, basic care 1 point per 元
    assert points_for_amount(earning_fen=100_000, points_per_yuan=1, multiplier_num=6, multiplier_den=5) == 1_200
    assert points_for_amount(earning_fen=100_000, points_per_yuan=1, multiplier_num=3, multiplier_den=2) == 1_500
    # Gold pays 99.99: floor(119.988) = 119, never rounded up
    assert points_for_amount(earning_fen=9_999, points_per_yuan=1, multiplier_num=6, multiplier_den=5) == 119
    # less than one point is nothing
    assert points_for_amount(earning_fen=99, points_per_yuan=1) == 0
    assert points_for_amount(earning_fen=0, points_per_yuan=3) == 0


def test_points_for_amount_takes_only_non_negative_integers():
    with pytest.raises(TypeError):
        points_for_amount(earning_fen=99.99, points_per_yuan=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        points_for_amount(earning_fen=100, points_per_yuan=1, multiplier_num=1.2)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        points_for_amount(earning_fen=-100, points_per_yuan=1)
    with pytest.raises(ValueError):
        points_for_amount(earning_fen=100, points_per_yuan=1, multiplier_den=0)


# --- lots and expiry (S-08) ------------------------------------------------------------------------------------


def test_add_months_keeps_the_day_or_clamps_to_the_month_end():
    assert add_months(date(2025, 3, 10), 12) == date(2026, 3, 10)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2025, 8, 31), 24) == date(2027, 8, 31)
    assert add_months(date(2025, 11, 30), 3) == date(2026, 2, 28)


def test_S08_points_are_spent_from_the_lots_expiring_first(member, earn, cashier):
    # given: a Regular member earns 1,000 on 2025-03-10 and 500 on 2025-09-01 (12-month lifetime)
    first = earn(member, 1_000, date(2025, 3, 10))
    second = earn(member, 500, date(2025, 9, 1))
    assert (first.expires_on, second.expires_on) == (date(2026, 3, 10), date(2026, 9, 1))

    # when she spends 1,200 on 2026-02-01
    journal = points_spend(
        actor=cashier,
        member=member,
        points=1_200,
        reference_type="test.Bill",
        reference_id="B9",
        idempotency_key="spend-1",
    )

    # then 1,000 come from the first lot and 200 from the second
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.remaining, second.remaining) == (0, 300)
    uses = list(PointsLotUse.objects.filter(journal=journal).order_by("pk").values_list("lot_id", "amount"))
    assert uses == [(first.pk, 1_000), (second.pk, 200)]
    assert points_balance(member) == 300
    assert list(points_lots(member)) == [second]
    assert sorted((e.account.kind, e.amount) for e in journal_entries(journal)) == [
        ("points", -1_200),
        ("points_redeemed", 1_200),
    ]
    assert journal.code == "points.spend"
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_S08_reminder_and_expiry_job(member, earn, cashier, org):
    # given the S-08 member after her spend: 300 points left on the lot valid until 2026-09-01
    earn(member, 1_000, date(2025, 3, 10))
    earn(member, 500, date(2025, 9, 1))
    points_spend(
        actor=cashier, member=member, points=1_200, reference_type="test.Bill", reference_id="B9", idempotency_key="s1"
    )
    job = cashier.system(org)

    # on 2026-08-01 the reminder says 300 points expire on 2026-09-01
    assert points_expiring(member, until=date(2026, 9, 1)) == [(date(2026, 9, 1), 300)]
    # the points are still valid on their last day
    assert points_expire_due(actor=job, today=date(2026, 9, 1)) == 0
    assert points_balance(member) == 300

    # when the job of 2026-09-02 runs (twice)
    expired = points_expire_due(actor=job, today=date(2026, 9, 2))
    again = points_expire_due(actor=job, today=date(2026, 9, 2))

    # then the balance is 0 and the ledger shows one 300-point expiry
    assert (expired, again) == (300, 0)
    assert points_balance(member) == 0
    expiry = Journal.objects.get(code="points.expire")
    assert sorted((e.account.kind, e.amount) for e in journal_entries(expiry)) == [
        ("points", -300),
        ("points_expired", 300),
    ]
    assert [line.amount for line in points_history(member)] == [-300, -1_200, 500, 1_000]
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_S08_lifetime_follows_the_organisation_setting_or_the_tier(member, hq_admin, actor_for, earn, cashier):
    # a Diamond member's points last 24 months (the tier passes its lifetime)
    diamond = points_earn(
        actor=cashier,
        member=member,
        points=1_000,
        source_code="earn.bill",
        reference_type="test.Bill",
        reference_id="B1",
        idempotency_key="diamond",
        earned_on=date(2025, 9, 1),
        lifetime_months=24,
    )
    # an organisation may set another default lifetime
    loyalty_settings_set(actor=actor_for(hq_admin), points_lifetime_months=6)
    regular = earn(member, 100, date(2025, 9, 1))

    assert diamond is not None
    assert diamond.expires_on == date(2027, 9, 1)
    assert regular.expires_on == date(2026, 3, 1)


# --- S-22: take-back, debt and restore -----------------------------------------------------------------------


def test_S22_taking_back_spent_points_leaves_a_debt_that_the_next_earning_repays(
    member, earn, cashier, manager, actor_for
):
    # given: 450 earned, 350 of them spent; balance 100
    bill_lot = earn(member, 450, date(2026, 1, 10))
    points_spend(
        actor=cashier, member=member, points=350, reference_type="test.Bill", reference_id="B2", idempotency_key="s1"
    )
    assert points_balance(member) == 100

    # when the bill that earned the 450 is refunded
    reversal = points_take_back(
        actor=actor_for(manager), earn_journal=Journal.objects.get(pk=bill_lot.journal_id), idempotency_key="r1:pts"
    )

    # then the balance is negative and no points are spendable; a replay changes nothing
    before = ledger_state()
    replay = points_take_back(
        actor=actor_for(manager), earn_journal=Journal.objects.get(pk=bill_lot.journal_id), idempotency_key="r1:pts"
    )
    assert replay.pk == reversal.pk
    assert ledger_state() == before
    assert points_balance(member) == -350
    bill_lot.refresh_from_db()
    assert bill_lot.remaining == 0
    assert reversal.reversal_of_id == bill_lot.journal_id
    assert reversal.code == "points.earn.reversal"
    assert list(points_lots(member)) == []

    # and the next earning of 500 repays the 350 first
    lot = earn(member, 500, date(2026, 2, 1))
    assert points_balance(member) == 150
    assert (lot.amount, lot.remaining) == (500, 150)
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_an_earning_smaller_than_the_debt_creates_an_empty_lot(member, earn, cashier, manager, actor_for):
    lot = earn(member, 450, date(2026, 1, 10))
    points_spend(actor=cashier, member=member, points=450, reference_type="t", reference_id="1", idempotency_key="s1")
    points_take_back(actor=actor_for(manager), earn_journal=Journal.objects.get(pk=lot.journal_id), idempotency_key="r")

    small = earn(member, 100, date(2026, 2, 1))

    assert points_balance(member) == -350
    assert (small.amount, small.remaining) == (100, 0)
    assert verify_points_lots() == []


def test_taking_back_spent_points_takes_them_from_the_other_lots_first(member, earn, cashier, manager, actor_for):
    # given: lot A (450) expiring first and lot B (1,000); a spend of 450 empties A
    lot_a = earn(member, 450, date(2025, 1, 1))
    lot_b = earn(member, 1_000, date(2025, 2, 1))
    points_spend(actor=cashier, member=member, points=450, reference_type="t", reference_id="1", idempotency_key="s1")

    # when A's earning is taken back
    reversal = points_take_back(
        actor=actor_for(manager), earn_journal=Journal.objects.get(pk=lot_a.journal_id), idempotency_key="r"
    )

    # then the balance is 550, and lot B holds exactly that
    lot_b.refresh_from_db()
    assert points_balance(member) == 550
    assert lot_b.remaining == 550
    assert list(PointsLotUse.objects.filter(journal=reversal).values_list("lot_id", "amount")) == [(lot_b.pk, 450)]
    assert verify_points_lots() == []


def test_restore_puts_the_spent_points_back_on_the_same_lots(member, earn, cashier, manager, actor_for):
    # given the S-08 spend of 1,200 from two lots
    first = earn(member, 1_000, date(2025, 3, 10))
    second = earn(member, 500, date(2025, 9, 1))
    spend = points_spend(
        actor=cashier, member=member, points=1_200, reference_type="test.Bill", reference_id="B9", idempotency_key="s1"
    )

    # when the bill is refunded
    refund = actor_for(manager)
    restored = points_restore(actor=refund, spend_journal=spend, idempotency_key="refund-1:pts")
    replay = points_restore(actor=refund, spend_journal=spend, idempotency_key="refund-1:pts")

    # then the points are back where they came from, once
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.remaining, second.remaining) == (1_000, 500)
    assert points_balance(member) == 1_500
    assert restored.reversal_of_id == spend.pk
    assert replay.pk == restored.pk
    assert Journal.objects.filter(reversal_of=spend).count() == 1
    with pytest.raises(Conflict) as twice:
        points_restore(actor=refund, spend_journal=spend, idempotency_key="refund-2:pts")
    assert twice.value.code == "ledger.already_reversed"
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_restore_and_take_back_refuse_the_wrong_kind_of_journal(member, earn, cashier, manager, actor_for):
    lot = earn(member, 100, date(2025, 3, 10))
    spend = points_spend(
        actor=cashier, member=member, points=10, reference_type="t", reference_id="1", idempotency_key="s"
    )
    before = ledger_state()

    with pytest.raises(ValidationFailed) as refused:
        points_restore(
            actor=actor_for(manager), spend_journal=Journal.objects.get(pk=lot.journal_id), idempotency_key="x"
        )

    assert refused.value.code == "points.not_a_spend"
    with pytest.raises(ValidationFailed) as not_earning:
        points_take_back(actor=actor_for(manager), earn_journal=spend, idempotency_key="y")
    assert not_earning.value.code == "points.not_an_earning"
    assert ledger_state() == before


@pytest.mark.parametrize("order", ["restore_first", "take_back_first"])
def test_S22_refund_of_the_S05_bill_after_the_earned_points_were_spent(
    member, earn, cashier, manager, actor_for, order
):
    # given: 12,000 points; the S-05 bill offsets 1,000 and earns 450; then the member spends all she has
    earn(member, 12_000, date(2025, 12, 1))
    offset = points_spend(
        actor=cashier, member=member, points=1_000, reference_type="sales.Bill", reference_id="1", idempotency_key="b1"
    )
    earned = earn(member, 450, date(2026, 1, 5))
    assert points_balance(member) == 11_450
    points_spend(
        actor=cashier, member=member, points=11_450, reference_type="mall", reference_id="2", idempotency_key="b2"
    )

    # when the S-05 bill is refunded in full (the 1,000 come back, the 450 are taken back)
    refund = actor_for(manager)
    steps = [
        lambda: points_restore(actor=refund, spend_journal=offset, idempotency_key="refund:pts-restore"),
        lambda: points_take_back(
            actor=refund, earn_journal=Journal.objects.get(pk=earned.journal_id), idempotency_key="refund:pts-take"
        ),
    ]
    for step in steps if order == "restore_first" else reversed(steps):
        step()

    # then 1,000 − 450 = 550 spendable points, held by the lots
    assert points_balance(member) == 550
    assert sum(lot.remaining for lot in points_lots(member)) == 550
    assert verify_ledger() == []
    assert verify_points_lots() == []


# --- idempotency and refusals ------------------------------------------------------------------------------------


def test_points_earn_replay_returns_the_first_lot_and_writes_nothing(member, cashier):
    kwargs = {
        "actor": cashier,
        "member": member,
        "points": 450,
        "source_code": "earn.bill",
        "reference_type": "sales.Bill",
        "reference_id": "42",
        "idempotency_key": "bill-42:pts",
        "earned_on": date(2026, 1, 5),
    }
    lot = points_earn(**kwargs)
    before = ledger_state()

    replay = points_earn(**kwargs)

    assert replay == lot
    assert ledger_state() == before
    assert PointsLot.objects.count() == 1
    assert points_balance(member) == 450
    with pytest.raises(Conflict) as conflict:
        points_earn(**{**kwargs, "points": 451})
    assert conflict.value.code == "ledger.idempotency_conflict"
    assert ledger_state() == before


def test_points_spend_replay_returns_the_first_journal_even_after_the_balance_changed(member, earn, cashier):
    earn(member, 500, date(2026, 1, 5))
    kwargs = {
        "actor": cashier,
        "member": member,
        "points": 500,
        "reference_type": "sales.Bill",
        "reference_id": "7",
        "idempotency_key": "bill-7:pts",
    }
    first = points_spend(**kwargs)
    before = ledger_state()

    replay = points_spend(**kwargs)

    assert replay.pk == first.pk
    assert ledger_state() == before
    assert PointsLotUse.objects.count() == 1
    assert points_balance(member) == 0


def test_spending_more_points_than_the_balance_is_refused_and_nothing_changes(member, earn, cashier):
    lot = earn(member, 300, date(2026, 1, 5))
    before = ledger_state()

    with pytest.raises(ApplicationError) as refused:
        points_spend(
            actor=cashier, member=member, points=301, reference_type="t", reference_id="1", idempotency_key="s1"
        )

    assert refused.value.code == "points.insufficient"
    assert refused.value.field == "points"
    assert refused.value.extra == {"balance": 300, "points": 301}
    assert "积分不足" in refused.value.message_zh
    assert "Not enough points" in refused.value.message_en
    assert ledger_state() == before
    lot.refresh_from_db()
    assert lot.remaining == 300
    assert not PointsLotUse.objects.exists()


def test_points_spend_refuses_a_member_in_debt_and_zero_points(member, earn, cashier, manager, actor_for):
    lot = earn(member, 100, date(2026, 1, 5))
    points_spend(actor=cashier, member=member, points=100, reference_type="t", reference_id="1", idempotency_key="s1")
    points_take_back(actor=actor_for(manager), earn_journal=Journal.objects.get(pk=lot.journal_id), idempotency_key="r")
    before = ledger_state()

    with pytest.raises(ApplicationError) as in_debt:
        points_spend(actor=cashier, member=member, points=1, reference_type="t", reference_id="2", idempotency_key="s2")
    with pytest.raises(ValidationFailed) as zero:
        points_spend(actor=cashier, member=member, points=0, reference_type="t", reference_id="3", idempotency_key="s3")

    assert in_debt.value.code == "points.insufficient"
    assert zero.value.code == "points.invalid_amount"
    assert ledger_state() == before


def test_points_earn_of_zero_writes_nothing(member, cashier):
    before = ledger_state()

    result = points_earn(
        actor=cashier,
        member=member,
        points=0,
        source_code="earn.bill",
        reference_type="sales.Bill",
        reference_id="1",
        idempotency_key="k",
    )

    assert result is None
    assert ledger_state() == before
    assert not PointsLot.objects.exists()


def test_points_need_a_checkout_or_refund_role_and_a_member_of_the_organisation(member, beautician, actor_for):
    before = ledger_state()
    with pytest.raises(PermissionDenied):
        points_earn(
            actor=actor_for(beautician),
            member=member,
            points=10,
            source_code="earn.bill",
            reference_type="t",
            reference_id="1",
            idempotency_key="k",
        )
    other_org = Organisation.objects.create(name="别家", code="other")
    outsider = StaffFactory(organisation=other_org, position="hq_admin", username="other-hq")
    with pytest.raises(NotFound):
        points_spend(
            actor=actor_for(outsider, StoreFactory(organisation=other_org)),
            member=member,
            points=1,
            reference_type="t",
            reference_id="1",
            idempotency_key="k",
        )
    assert ledger_state() == before


def test_points_services_work_inside_an_outer_transaction_and_roll_back_with_it(member, earn, cashier):
    earn(member, 1_000, date(2026, 1, 5))
    before = ledger_state()

    with pytest.raises(RuntimeError), transaction.atomic():
        points_spend(
            actor=cashier, member=member, points=400, reference_type="t", reference_id="1", idempotency_key="s1"
        )
        assert points_balance(member) == 600
        raise RuntimeError("the checkout failed after the points were taken")

    assert ledger_state() == before
    assert points_balance(member) == 1_000
    assert not PointsLotUse.objects.exists()
    assert verify_points_lots() == []


# --- growth value -------------------------------------------------------------------------------------------


def test_growth_add_and_refund(member, cashier, manager, actor_for):
    # a member pays 2,500.00 and 600.00 (S-09): growth 3,100 元; a refund of 200.00 makes it 2,900 元
    growth_add(
        actor=cashier, member=member, amount_fen=250_000, reference_type="t", reference_id="1", idempotency_key="g1"
    )
    paid = growth_add(
        actor=cashier, member=member, amount_fen=60_000, reference_type="t", reference_id="2", idempotency_key="g2"
    )
    assert growth_balance(member) == 310_000
    refund = growth_add(
        actor=actor_for(manager),
        member=member,
        amount_fen=-20_000,
        reference_type="t",
        reference_id="3",
        idempotency_key="g3",
    )
    before = ledger_state()
    replay = growth_add(
        actor=cashier, member=member, amount_fen=60_000, reference_type="t", reference_id="2", idempotency_key="g2"
    )
    nothing = growth_add(
        actor=cashier, member=member, amount_fen=0, reference_type="t", reference_id="4", idempotency_key="g4"
    )

    assert growth_balance(member) == 290_000
    assert refund is not None and refund.code == "growth.refund"
    assert paid is not None and paid.code == "growth.earn"
    assert replay is not None and replay.pk == paid.pk
    assert nothing is None
    assert ledger_state() == before
    assert sorted((e.account.kind, e.amount) for e in journal_entries(refund)) == [
        ("growth", -20_000),
        ("growth_source", 20_000),
    ]
    assert points_balance(member) == 0  # growth is never points
    assert verify_ledger() == []


# --- merge and export -----------------------------------------------------------------------------------------


def test_merge_moves_points_lots_and_growth_to_the_survivor(make_member, store1, earn, cashier, hq_admin, actor_for):
    # given two records of one person, both with points and growth
    survivor = make_member(store1)
    duplicate = make_member(store1)
    kept_lot = earn(survivor, 1_000, date(2025, 3, 10))
    moved_lot = earn(duplicate, 300, date(2025, 9, 1))
    growth_add(
        actor=cashier, member=duplicate, amount_fen=30_000, reference_type="t", reference_id="1", idempotency_key="g1"
    )

    # when they are merged
    member_merge(actor=actor_for(hq_admin), survivor=survivor, merged=duplicate)

    # then the survivor holds everything, the lots included
    assert points_balance(survivor) == 1_300
    assert points_balance(duplicate) == 0
    assert growth_balance(survivor) == 30_000
    assert growth_balance(duplicate) == 0
    assert list(points_lots(survivor)) == [kept_lot, moved_lot]
    assert Journal.objects.filter(code__in=["points.merge", "growth.merge"]).count() == 2
    merge_audit = AuditLog.objects.get(action="member.merge")
    assert merge_audit.detail["moved"]["points"] == 300
    assert merge_audit.detail["moved"]["points_lots"] == 1
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_merge_with_a_member_in_debt_settles_it_against_the_survivors_lots(
    make_member, store1, earn, cashier, manager, hq_admin, actor_for
):
    survivor = make_member(store1)
    duplicate = make_member(store1)
    earn(survivor, 1_000, date(2025, 3, 10))
    lot = earn(duplicate, 400, date(2025, 9, 1))
    points_spend(actor=cashier, member=duplicate, points=400, reference_type="t", reference_id="1", idempotency_key="s")
    points_take_back(actor=actor_for(manager), earn_journal=Journal.objects.get(pk=lot.journal_id), idempotency_key="r")
    assert points_balance(duplicate) == -400

    member_merge(actor=actor_for(hq_admin), survivor=survivor, merged=duplicate)

    assert points_balance(survivor) == 600
    assert sum(lot.remaining for lot in points_lots(survivor)) == 600
    assert verify_points_lots() == []


def test_refund_after_a_merge_follows_the_member_into_the_survivor(
    make_member, store1, earn, cashier, manager, hq_admin, actor_for
):
    survivor = make_member(store1)
    duplicate = make_member(store1)
    earn(duplicate, 1_000, date(2025, 9, 1))
    spend = points_spend(
        actor=cashier, member=duplicate, points=400, reference_type="t", reference_id="1", idempotency_key="s"
    )
    member_merge(actor=actor_for(hq_admin), survivor=survivor, merged=duplicate)
    assert points_balance(survivor) == 600

    points_restore(actor=actor_for(manager), spend_journal=spend, idempotency_key="r")

    assert points_balance(survivor) == 1_000
    assert points_balance(duplicate) == 0
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_export_holds_the_points_balance_lots_and_growth(member, earn, cashier, hq_admin, actor_for):
    earn(member, 1_000, date(2025, 3, 10), source_code="earn.birthday")
    points_spend(actor=cashier, member=member, points=200, reference_type="t", reference_id="1", idempotency_key="s")

    data = member_export(actor=actor_for(hq_admin), member=member)

    assert data["points"] == {
        "balance": 800,
        "growth_fen": 0,
        "lots": [
            {
                "source": "earn.birthday",
                "earned_on": "2025-03-10",
                "expires_on": "2026-03-10",
                "amount": 1_000,
                "remaining": 800,
            }
        ],
    }
