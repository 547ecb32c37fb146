"""Tier up at once, down only at the yearly review (S-09); grants by hand as a floor; the review job, its
command and its Huey task, and their idempotency."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from meiye.audit.models import AuditLog
from meiye.catalog.services import item_save
from meiye.core.errors import PermissionDenied
from meiye.core.money import Money
from meiye.loyalty.models import MemberTier, TierChange
from meiye.loyalty.selectors import growth_in_window, local_today, shift_months, tier_history, tier_reviews_due
from meiye.loyalty.tasks import tier_review_task
from meiye.loyalty.tiers import member_tier_info, tier_grant, tier_review_due
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.sales.services import LineInput, TenderInput, bill_checkout, bill_refund
from tests.loyalty.tiers_reference import reference_tiers
from tests.reference import reference_categories, reference_items
from tests.sales.support import balances


@pytest.fixture
def hq(hq_admin, actor_for, store1):
    return actor_for(hq_admin, store1)


@pytest.fixture
def refunder(manager, actor_for, store1):
    return actor_for(manager, store1)


@pytest.fixture
def tiers(hq):
    return reference_tiers(hq)


@pytest.fixture
def items(hq):
    categories = reference_categories(hq)
    made = reference_items(hq, categories)
    made["session"] = item_save(
        actor=hq,
        code="session",
        name="护理疗程",
        category=categories["basic_care"],
        price=Money.parse("100.00"),
        duration_minutes=30,
    )
    return made


@pytest.fixture
def today(store1):
    return local_today(store1)


@pytest.fixture
def job(org):
    return Actor.system(org)


def _cash(cashier, member, item, amount: str, key: str, quantity: int = 1):
    return bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=item.pk, quantity=quantity)],
        tenders=[TenderInput(kind="cash", amount=Money.parse(amount))],
        idempotency_key=key,
    )


def _state(member: Member) -> tuple[str, str]:
    state = MemberTier.objects.get(member=member)
    return state.tier.code, state.earned_tier.code


@pytest.fixture
def silver_after_refund(cashier, refunder, tiers, items, member, today):
    """S-09 up to the refund: 2,500.00, then 600.00 (Silver at once), then 200.00 refunded (growth 2,900)."""
    first = _cash(cashier, member, items["session"], "2500.00", "s09-1", quantity=25)
    assert MemberTier.objects.filter(member=member).exists() is False  # 2,500.00: still Regular
    second = _cash(cashier, member, items["care"], "600.00", "s09-2")
    assert second.payable_total_fen == 60_000  # priced as Regular: the Silver discount is for the next bill
    assert second.member_snapshot["tier"] == "regular"
    assert growth_in_window(member, on=today) == 310_000
    assert _state(member) == ("silver", "silver")
    bill_refund(
        actor=refunder,
        bill=first,
        lines=[(first.lines.get().pk, 2)],
        reason="少做两次 two sessions not done",
        idempotency_key="s09-refund",
    )
    return member


def test_S09_tier_up_and_down(silver_after_refund, job, today):
    member = silver_after_refund
    anniversary = shift_months(today, 12)

    # the refund lowers growth to 2,900 but does not downgrade
    assert growth_in_window(member, on=today) == 290_000
    assert balances(member)["growth"] == 290_000
    assert _state(member) == ("silver", "silver")
    assert MemberTier.objects.get(member=member).review_on == anniversary

    # the day before the anniversary nothing is due
    assert tier_review_due(actor=job, today=anniversary - timedelta(days=1)).reviewed == 0
    assert _state(member) == ("silver", "silver")

    # at the yearly review on the anniversary growth is 2,900 < 3,000: Regular again
    assert growth_in_window(member, on=anniversary) == 290_000
    result = tier_review_due(actor=job, today=anniversary)
    assert (result.reviewed, result.lowered, result.raised) == (1, 1, 0)
    assert _state(member) == ("regular", "regular")
    fresh = Member.objects.get(pk=member.pk)
    assert member_tier_info(fresh)["tier"] == "regular"
    assert MemberTier.objects.get(member=member).review_on is None  # nothing left to fall from
    history = [(c.from_tier.code, c.to_tier.code, c.cause, c.growth_fen, c.on) for c in tier_history(member)]
    assert history == [
        ("silver", "regular", "review", 290_000, anniversary),
        ("regular", "silver", "bill", 310_000, today),
    ]
    assert TierChange.objects.get(cause="review").staff is None  # the job


def test_S09_the_silver_discount_applies_from_the_next_bill(cashier, tiers, items, member):
    _cash(cashier, member, items["session"], "2500.00", "s09-1", quantity=25)
    _cash(cashier, member, items["care"], "600.00", "s09-2")

    third = _cash(cashier, member, items["care"], "540.00", "s09-3")

    assert third.member_snapshot["tier"] == "silver"
    assert (third.payable_total_fen, third.discount_total_fen) == (54_000, 6_000)
    assert third.lines.get().price_steps[-1]["reason"] == "银卡会员价 减10% Silver member price 10% off"


def test_S09_growth_leaves_the_window_after_12_months(silver_after_refund, today):
    assert growth_in_window(silver_after_refund, on=shift_months(today, 12)) == 290_000
    assert growth_in_window(silver_after_refund, on=shift_months(today, 12) + timedelta(days=1)) == 0
    assert growth_in_window(silver_after_refund, on=today - timedelta(days=1)) == 0  # nothing paid before


def test_the_review_keeps_a_tier_the_growth_still_reaches_and_moves_to_the_next_anniversary(
    cashier, tiers, items, member, job, today
):
    _cash(cashier, member, items["session"], "3100.00", "bill", quantity=31)
    anniversary = shift_months(today, 12)

    result = tier_review_due(actor=job, today=anniversary)

    assert (result.reviewed, result.changed) == (1, 0)
    state = MemberTier.objects.get(member=member)
    assert (state.tier.code, state.earned_since, state.review_on) == ("silver", today, shift_months(today, 24))
    assert TierChange.objects.filter(cause="review").count() == 0


def test_the_review_is_idempotent_through_the_command(silver_after_refund, today):
    anniversary = shift_months(today, 12).isoformat()
    out = StringIO()

    call_command("tier_review", "--date", anniversary, stdout=out, stderr=StringIO())
    call_command("tier_review", "--date", anniversary, stdout=out, stderr=StringIO())

    lines = out.getvalue().splitlines()
    assert lines[0].endswith(f"{anniversary}: 1 reviewed, 1 lowered, 0 raised")
    assert lines[1].endswith(f"{anniversary}: 0 reviewed, 0 lowered, 0 raised")
    assert TierChange.objects.filter(member=silver_after_refund).count() == 2
    assert AuditLog.objects.filter(action="loyalty.tier_change").count() == 2


def test_the_command_refuses_a_bad_date():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("tier_review", "--date", "2026-13-01", stdout=StringIO(), stderr=StringIO())


def test_the_huey_task_runs_the_review_of_today(silver_after_refund):
    tier_review_task.call_local()  # nothing is due today
    assert _state(silver_after_refund) == ("silver", "silver")


def test_the_review_needs_a_job_or_money_adjust(cashier, today):
    with pytest.raises(PermissionDenied):
        tier_review_due(actor=cashier, today=today)


# --- a grant by hand is a floor until its end date (S-09) -------------------------------------------------------


def test_S09_a_tier_granted_by_hand_is_a_floor_until_its_end_date(hq, tiers, member, job, today):
    until = today + timedelta(days=30)
    tier_grant(actor=hq, member=member, tier=tiers["gold"], until=until, reason="开业酬宾 opening gift")
    assert _state(member) == ("gold", "regular")
    assert tier_reviews_due(organisation_id=member.organisation_id, today=until) == []

    # up to and including the end date she is Gold; the review of the day after brings her back
    result = tier_review_due(actor=job, today=until + timedelta(days=1))

    assert (result.reviewed, result.lowered) == (1, 1)
    state = MemberTier.objects.get(member=member)
    assert (state.tier.code, state.floor_tier, state.floor_until, state.review_on) == ("regular", None, None, None)
    assert [(c.from_tier.code, c.to_tier.code, c.cause) for c in tier_history(member)] == [
        ("gold", "regular", "floor_end"),
        ("regular", "gold", "grant"),
    ]


def test_S09_the_floor_holds_at_the_anniversary_then_ends(hq, silver_after_refund, tiers, job, today):
    member = silver_after_refund
    anniversary = shift_months(today, 12)
    until = anniversary + timedelta(days=10)
    tier_grant(actor=hq, member=member, tier=tiers["silver"], until=until, reason="老客户 loyal customer")

    # at the anniversary growth (2,900) no longer earns Silver, but the grant holds her there
    result = tier_review_due(actor=job, today=anniversary)
    assert (result.reviewed, result.changed) == (1, 0)
    assert _state(member) == ("silver", "regular")
    assert MemberTier.objects.get(member=member).review_on == until + timedelta(days=1)

    # the day after the grant ends she is Regular
    result = tier_review_due(actor=job, today=until + timedelta(days=1))
    assert (result.reviewed, result.lowered) == (1, 1)
    assert _state(member) == ("regular", "regular")
    assert tier_history(member)[0].cause == "floor_end"


def test_an_upgrade_above_a_running_grant_is_kept_when_the_grant_ends(hq, cashier, tiers, items, member, job, today):
    until = today + timedelta(days=30)
    tier_grant(actor=hq, member=member, tier=tiers["silver"], until=until, reason="体验 trial")
    _cash(cashier, member, items["session"], "9000.00", "big", quantity=100)  # 10,000.00 − 10% Silver
    assert _state(member) == ("silver", "silver")  # 9,000.00: earned Silver, the grant changes nothing
    _cash(cashier, member, items["session"], "990.00", "more", quantity=11)  # 1,100.00 − 10% → 9,990.00
    _cash(cashier, member, items["care"], "540.00", "over")  # 10,530.00: Gold at once
    assert _state(member) == ("gold", "gold")

    result = tier_review_due(actor=job, today=until + timedelta(days=1))

    assert (result.reviewed, result.changed) == (1, 0)
    state = MemberTier.objects.get(member=member)
    assert (state.tier.code, state.floor_tier, state.review_on) == ("gold", None, shift_months(today, 12))


def test_a_new_grant_replaces_the_previous_one(hq, tiers, member, today):
    tier_grant(actor=hq, member=member, tier=tiers["diamond"], until=today + timedelta(days=5), reason="误操作 mistake")
    tier_grant(actor=hq, member=member, tier=tiers["gold"], until=today + timedelta(days=60), reason="更正 correction")
    state = MemberTier.objects.get(member=member)
    assert (state.tier.code, state.floor_tier.code, state.floor_until) == ("gold", "gold", today + timedelta(days=60))
    assert [(c.from_tier.code, c.to_tier.code) for c in tier_history(member)] == [
        ("diamond", "gold"),
        ("regular", "diamond"),
    ]
    assert AuditLog.objects.filter(action="loyalty.tier_grant").count() == 2
