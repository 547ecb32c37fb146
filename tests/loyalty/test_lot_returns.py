"""Points back into the lots they were spent from (``points_restore_part``): a partial refund of a bill paid
partly with points gives the member the same lots back, each with its own expiry, the lot expiring last first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from meiye.catalog.models import Item
from meiye.core.errors import Conflict, ValidationFailed
from meiye.core.money import Money
from meiye.ledger.models import Journal
from meiye.ledger.verification import verify_ledger
from meiye.loyalty.models import PointsLot, PointsLotReturn, PointsLotUse
from meiye.loyalty.services import (
    points_balance,
    points_restore,
    points_restore_part,
    points_spend,
    points_take_back,
    verify_points_lots,
)
from meiye.members.models import Member
from meiye.members.services import member_merge
from meiye.org.context import Actor
from meiye.sales.services import LineInput, TenderInput, bill_checkout, bill_refund
from tests.ledger.support import ledger_state
from tests.reference import reference_categories, reference_items


@pytest.fixture
def two_lots(member: Member, earn: Callable[..., PointsLot]) -> tuple[PointsLot, PointsLot]:
    """600 points valid until 2026-12-01 and 400 valid until 2027-03-01."""
    early = earn(member, 600, date(2025, 12, 1))
    late = earn(member, 400, date(2026, 3, 1))
    assert (early.expires_on, late.expires_on) == (date(2026, 12, 1), date(2027, 3, 1))
    return early, late


@pytest.fixture
def spend(cashier: Actor, member: Member, two_lots: tuple[PointsLot, PointsLot]) -> Journal:
    return points_spend(
        actor=cashier, member=member, points=1_000, reference_type="sales.Bill", reference_id="7", idempotency_key="s7"
    )


def remaining(*lots: PointsLot) -> list[int]:
    return [PointsLot.objects.get(pk=lot.pk).remaining for lot in lots]


def returned_by(journal: Journal) -> list[tuple[int, int]]:
    return list(PointsLotReturn.objects.filter(journal=journal).order_by("pk").values_list("lot_id", "amount"))


def test_a_part_goes_back_to_the_lot_expiring_last_first(cashier, member, two_lots, spend):
    early, late = two_lots
    assert remaining(early, late) == [0, 0]

    # when: half the offset comes back
    journal = points_restore_part(actor=cashier, spend_journal=spend, points=500, idempotency_key="r1")

    # then: 400 to the lot of 2027-03-01, 100 to the lot of 2026-12-01
    assert journal.code == "points.restore"
    assert (journal.reference_type, journal.reference_id) == ("sales.Bill", "7")
    assert journal.reversal_of_id is None
    assert returned_by(journal) == [(late.pk, 400), (early.pk, 100)]
    assert remaining(early, late) == [100, 400]
    assert points_balance(member) == 500
    assert verify_ledger() == []
    assert verify_points_lots() == []

    # when: the other half
    rest = points_restore_part(actor=cashier, spend_journal=spend, points=500, idempotency_key="r2")

    # then: the early lot is whole again
    assert returned_by(rest) == [(early.pk, 500)]
    assert remaining(early, late) == [600, 400]
    assert points_balance(member) == 1_000
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_a_replay_returns_the_first_journal_and_changes_nothing(cashier, member, two_lots, spend):
    first = points_restore_part(actor=cashier, spend_journal=spend, points=500, idempotency_key="r1")
    before = ledger_state()

    replay = points_restore_part(actor=cashier, spend_journal=spend, points=500, idempotency_key="r1")

    assert replay.pk == first.pk
    assert ledger_state() == before
    assert PointsLotReturn.objects.count() == 2
    assert remaining(*two_lots) == [100, 400]


def test_the_same_key_for_another_amount_is_a_conflict(cashier, two_lots, spend):
    points_restore_part(actor=cashier, spend_journal=spend, points=500, idempotency_key="r1")
    before = ledger_state()

    with pytest.raises(Conflict) as conflict:
        points_restore_part(actor=cashier, spend_journal=spend, points=300, idempotency_key="r1")

    assert conflict.value.code == "ledger.idempotency_conflict"
    assert ledger_state() == before
    assert PointsLotReturn.objects.count() == 2


def test_more_than_is_left_is_refused_and_nothing_changes(cashier, member, two_lots, spend):
    points_restore_part(actor=cashier, spend_journal=spend, points=700, idempotency_key="r1")
    before = ledger_state()

    with pytest.raises(ValidationFailed) as refused:
        points_restore_part(actor=cashier, spend_journal=spend, points=301, idempotency_key="r2")

    assert refused.value.code == "points.restore_too_much"
    assert refused.value.field == "points"
    assert refused.value.extra == {"spent": 1_000, "returned": 700, "points": 301}
    assert "最多可退回 300 积分" in refused.value.message_zh
    assert "at most 300" in refused.value.message_en
    assert ledger_state() == before
    assert remaining(*two_lots) == [300, 400]
    assert points_balance(member) == 700


def test_zero_or_negative_is_refused(cashier, spend):
    for points in (0, -5):
        with pytest.raises(ValidationFailed) as refused:
            points_restore_part(actor=cashier, spend_journal=spend, points=points, idempotency_key=f"z{points}")
        assert refused.value.code == "points.invalid_amount"


def test_a_spend_given_back_in_full_is_refused(cashier, two_lots, spend):
    points_restore_part(actor=cashier, spend_journal=spend, points=1_000, idempotency_key="r1")
    before = ledger_state()

    with pytest.raises(Conflict) as refused:
        points_restore_part(actor=cashier, spend_journal=spend, points=1, idempotency_key="r2")

    assert refused.value.code == "points.already_restored"
    assert ledger_state() == before


def test_a_reversed_spend_is_refused(cashier, two_lots, spend):
    reversal = points_restore(actor=cashier, spend_journal=spend, idempotency_key="full")
    assert returned_by(reversal) == [(two_lots[0].pk, 600), (two_lots[1].pk, 400)]
    before = ledger_state()

    with pytest.raises(Conflict) as refused:
        points_restore_part(actor=cashier, spend_journal=spend, points=1, idempotency_key="r2")

    assert refused.value.code == "points.already_restored"
    assert ledger_state() == before
    assert verify_points_lots() == []


def test_not_a_spend_is_refused(cashier, two_lots):
    earning = two_lots[0].journal
    with pytest.raises(ValidationFailed) as refused:
        points_restore_part(actor=cashier, spend_journal=earning, points=1, idempotency_key="r1")
    assert refused.value.code == "points.not_a_spend"


def test_full_restore_after_a_part_gives_back_only_what_is_left(cashier, member, two_lots, spend):
    early, late = two_lots
    points_restore_part(actor=cashier, spend_journal=spend, points=500, idempotency_key="r1")

    # when: the whole spend is restored
    rest = points_restore(actor=cashier, spend_journal=spend, idempotency_key="full")

    # then: 500 more, not 1,000; as a points.restore journal, not a reversal
    assert rest.code == "points.restore"
    assert rest.reversal_of_id is None
    assert returned_by(rest) == [(early.pk, 500)]
    assert remaining(early, late) == [600, 400]
    assert points_balance(member) == 1_000
    assert verify_points_lots() == []

    # a replay returns it; nothing is left for another key
    before = ledger_state()
    assert points_restore(actor=cashier, spend_journal=spend, idempotency_key="full").pk == rest.pk
    assert ledger_state() == before
    with pytest.raises(Conflict) as refused:
        points_restore(actor=cashier, spend_journal=spend, idempotency_key="again")
    assert refused.value.code == "points.already_restored"
    assert ledger_state() == before


def test_a_member_in_debt_repays_it_first(cashier, member, earn, two_lots, spend):
    # given: a third lot of 300, earned by a bill later refunded after the points were spent elsewhere
    third = earn(member, 300, date(2026, 6, 1))
    points_spend(
        actor=cashier, member=member, points=300, reference_type="test.Mall", reference_id="1", idempotency_key="m1"
    )
    points_take_back(actor=cashier, earn_journal=third.journal, idempotency_key="tb")
    assert points_balance(member) == -300

    # when: 500 of the bill's offset come back
    journal = points_restore_part(actor=cashier, spend_journal=spend, points=500, idempotency_key="r1")

    # then: 300 repay the debt, 200 are spendable; the returns are recorded, the settlement takes from the
    # lot expiring first
    assert points_balance(member) == 200
    assert returned_by(journal) == [(two_lots[1].pk, 400), (two_lots[0].pk, 100)]
    assert list(PointsLotUse.objects.filter(journal=journal).values_list("lot_id", "amount")) == [
        (two_lots[0].pk, 100),
        (two_lots[1].pk, 200),
    ]
    assert remaining(*two_lots, third) == [0, 200, 0]
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_a_member_merged_since_the_spend_gets_the_points_on_the_survivor(
    cashier, member, two_lots, spend, make_member, store1, hq_admin, actor_for
):
    survivor = make_member(store1)
    member_merge(actor=actor_for(hq_admin), survivor=survivor, merged=member)

    points_restore_part(actor=cashier, spend_journal=spend, points=500, idempotency_key="r1")

    assert points_balance(survivor) == 500
    assert points_balance(member) == 0
    assert remaining(*two_lots) == [100, 400]
    assert set(PointsLot.objects.filter(pk__in=[lot.pk for lot in two_lots]).values_list("member_id", flat=True)) == {
        survivor.pk
    }
    assert verify_ledger() == []
    assert verify_points_lots() == []


def test_verify_points_lots_reports_a_lot_out_of_step(member, two_lots):
    PointsLot.objects.filter(pk=two_lots[0].pk).update(remaining=500)
    # the member total and the lot are both wrong now
    problems = verify_points_lots()
    assert any(p.startswith(f"lot {two_lots[0].pk}: remaining 500") for p in problems)


def test_an_earning_that_repays_a_debt_records_it_as_a_use_of_its_own_journal(cashier, member, earn):
    lot = earn(member, 300, date(2026, 6, 1))
    points_spend(
        actor=cashier, member=member, points=300, reference_type="test.Mall", reference_id="1", idempotency_key="m1"
    )
    points_take_back(actor=cashier, earn_journal=lot.journal, idempotency_key="tb")

    repaying = earn(member, 500, date(2026, 7, 1))

    assert repaying.remaining == 200
    assert list(PointsLotUse.objects.filter(journal=repaying.journal).values_list("lot_id", "amount")) == [
        (repaying.pk, 300)
    ]
    assert verify_points_lots() == []


# --- Through a refund at the counter -------------------------------------------------------------------------


@pytest.fixture
def serum(cashier: Actor, hq_admin: Any, actor_for: Callable[..., Actor], store1: Any) -> Item:
    hq = actor_for(hq_admin, store1)
    return reference_items(hq, reference_categories(hq))["serum"]


@pytest.fixture
def bill(cashier: Actor, member: Member, serum: Item, two_lots: tuple[PointsLot, PointsLot]) -> Any:
    """2 × serum 250.00 = 500.00, paid 1,000 points (10.00) and WeChat 490.00."""
    return bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=serum.pk, quantity=2)],
        tenders=[
            TenderInput(kind="points", points=1_000),
            TenderInput(kind="wechat", amount=Money.parse("490.00"), external_ref="wx-1"),
        ],
        idempotency_key="bill",
    )


def test_partial_refunds_of_a_bill_give_the_offset_back_to_its_lots(manager, actor_for, store1, member, two_lots, bill):
    refunder = actor_for(manager, store1)
    early, late = two_lots
    line = bill.lines.get()
    assert remaining(early, late) == [0, 0]
    earned = bill.points_earned

    # when: one of the two serums is refunded
    half = bill_refund(actor=refunder, bill=bill, lines=[(line.pk, 1)], reason="过敏", idempotency_key="half")

    # then: 500 points back: 400 to the lot of 2027-03-01, 100 to the lot of 2026-12-01; no new lot
    assert half.points_restored == 500
    assert half.points_restore_journal.code == "points.restore"
    assert returned_by(half.points_restore_journal) == [(late.pk, 400), (early.pk, 100)]
    assert remaining(early, late) == [100, 400]
    assert not PointsLot.objects.filter(source_code="sales.refund_offset").exists()
    assert verify_ledger() == []
    assert verify_points_lots() == []

    # a replay of the refund changes nothing
    before = ledger_state()
    again = bill_refund(actor=refunder, bill=bill, lines=[(line.pk, 1)], reason="过敏", idempotency_key="half")
    assert again.pk == half.pk
    assert ledger_state() == before

    # when: the rest
    rest = bill_refund(actor=refunder, bill=bill, reason="整单退", idempotency_key="rest")

    # then: the other 500, and the member has her 1,000 points back on their own lots
    assert rest.points_restored == 500
    assert returned_by(rest.points_restore_journal) == [(early.pk, 500)]
    assert remaining(early, late) == [600, 400]
    assert points_balance(member) == 1_000
    assert bill.points_earned == earned
    assert verify_ledger() == []
    assert verify_points_lots() == []
