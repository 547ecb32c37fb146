"""Tiers: configuration and its validation, the tier price (S-01), multipliers and truncation (S-03), the
tier's points lifetime (S-08) and offset rate, grants by hand, progress, history, merge, export, queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, transaction
from django.test import override_settings

from meiye.audit.models import AuditLog
from meiye.catalog.services import item_save
from meiye.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from meiye.core.money import Money
from meiye.loyalty.models import GrowthSource, MemberTier, PointsLot, Tier, TierChange
from meiye.loyalty.selectors import growth_in_window, local_today, shift_months, tier_history, tier_progress
from meiye.loyalty.services import add_months, points_earn
from meiye.loyalty.tiers import member_tier_info, tier_delete, tier_grant, tier_save
from meiye.members.services import member_export, member_merge
from meiye.org.models import Organisation
from meiye.sales.models import Tender
from meiye.sales.pricing import (
    EarningContext,
    LineEarning,
    earn_line,
    tier_price_fen,
)
from meiye.sales.services import LineInput, TenderInput, bill_checkout
from tests.factories import StaffFactory
from tests.loyalty.tiers_reference import grant, reference_tiers
from tests.reference import reference_categories, reference_items

# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture
def hq(hq_admin, actor_for, store1):
    return actor_for(hq_admin, store1)


@pytest.fixture
def tiers(hq):
    return reference_tiers(hq)


@pytest.fixture
def categories(hq):
    return reference_categories(hq)


@pytest.fixture
def items(hq, categories):
    made = reference_items(hq, categories)
    made["hydra"] = item_save(
        actor=hq,
        code="hydra-facial",
        name="水光补水",
        category=categories["basic_care"],
        price=Money.parse("680.00"),
        duration_minutes=60,
    )
    made["cream"] = item_save(
        actor=hq, code="cream", name="修护面霜", category=categories["retail"], price=Money.parse("260.00")
    )
    return made


def _service(hq, categories, code: str, price: str):
    return item_save(
        actor=hq,
        code=code,
        name=code,
        category=categories["basic_care"],
        price=Money.parse(price),
        duration_minutes=60,
    )


def _cash(cashier, member, item, amount: str, key: str, quantity: int = 1):
    return bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=item.pk, quantity=quantity)],
        tenders=[TenderInput(kind="cash", amount=Money.parse(amount))],
        idempotency_key=key,
    )


def _tier_rows():
    return list(Tier.objects.order_by("threshold_fen").values_list("code", "threshold_fen"))


# --- configuration ---------------------------------------------------------------------------------------


def test_reference_ladder_and_what_a_checkout_reads(hq, tiers, member):
    assert _tier_rows() == [("regular", 0), ("silver", 300_000), ("gold", 1_000_000), ("diamond", 3_000_000)]
    # a member without a tier row is on the lowest tier
    assert member_tier_info(member) == {
        "tier": "regular",
        "tier_name": "普通会员",
        "tier_name_en": "Regular",
        "tier_discounts_bp": {},
        "points_multiplier_num": 1,
        "points_multiplier_den": 1,
        "points_per_yuan_offset": 100,
        "points_lifetime_months": 12,
    }
    grant(hq, member, tiers["gold"])
    assert member_tier_info(member)["tier"] == "regular"  # cached on this instance, as within one checkout
    fresh = type(member).objects.get(pk=member.pk)
    assert member_tier_info(fresh) == {
        "tier": "gold",
        "tier_name": "金卡",
        "tier_name_en": "Gold",
        "tier_discounts_bp": {"service": 1_500},
        "points_multiplier_num": 6,
        "points_multiplier_den": 5,
        "points_per_yuan_offset": 90,
        "points_lifetime_months": 12,
    }
    assert AuditLog.objects.filter(action="loyalty.tier_save").count() == 4


def test_no_tiers_means_an_empty_snapshot(member, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert member_tier_info(member) == {}
        assert member_tier_info(member) == {}  # the second ask in the same checkout is free


def test_the_lowest_tier_must_start_at_zero(hq):
    with pytest.raises(ValidationFailed) as refused:
        tier_save(actor=hq, code="silver", name_zh="银卡", name_en="Silver", threshold=Money.parse("3000"))
    assert (refused.value.code, refused.value.field) == ("tier.lowest_not_zero", "threshold")
    assert "门槛成长值" in refused.value.message_zh and "threshold" in refused.value.message_en
    assert _tier_rows() == []
    assert not AuditLog.objects.filter(action="loyalty.tier_save").exists()


def test_thresholds_must_strictly_increase_and_the_lowest_stays_at_zero(hq, tiers):
    before = _tier_rows()
    with pytest.raises(ValidationFailed) as same:
        tier_save(actor=hq, code="platinum", name_zh="白金", name_en="Platinum", threshold=Money.parse("10000"))
    assert (same.value.code, same.value.field) == ("tier.threshold_not_increasing", "threshold")
    assert "金卡" in same.value.message_zh and "Gold" in same.value.message_en
    with pytest.raises(ValidationFailed) as lowest:
        tier_save(actor=hq, code="regular", name_zh="普通会员", threshold=Money.parse("100"))
    assert (lowest.value.code, lowest.value.field) == ("tier.lowest_not_zero", "threshold")
    assert _tier_rows() == before

    # an update keeps the rest of the ladder
    tier_save(actor=hq, code="silver", name_zh="银卡", name_en="Silver", threshold=Money.parse("5000"))
    assert _tier_rows()[1] == ("silver", 500_000)


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"threshold": Money(-1)}, "tier.invalid_threshold", "threshold"),
        ({"discounts_bp": {"retail": 10_001}}, "tier.invalid_number", "discounts_bp.retail"),
        ({"discounts_bp": {"toys": 500}}, "tier.invalid_discount_category", "discounts_bp.toys"),
        ({"points_multiplier_bp": 0}, "tier.invalid_number", "points_multiplier_bp"),
        ({"points_per_yuan_offset": 0}, "tier.invalid_number", "points_per_yuan_offset"),
        ({"points_lifetime_months": 121}, "tier.invalid_number", "points_lifetime_months"),
        ({"code": "Gold Card"}, "tier.invalid_code", "code"),
        ({"name_zh": "  "}, "input.invalid", "name_zh"),
    ],
)
def test_invalid_tier_settings_are_refused_naming_the_field(hq, tiers, changes, code, field):
    arguments = {"code": "gold", "name_zh": "金卡", "threshold": Money.parse("10000"), **changes}
    before = list(Tier.objects.order_by("pk").values())
    with pytest.raises(ValidationFailed) as refused:
        tier_save(actor=hq, **arguments)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert refused.value.message_zh and field in refused.value.message_en
    assert list(Tier.objects.order_by("pk").values()) == before


def test_configuring_tiers_needs_catalog_manage(cashier):
    with pytest.raises(PermissionDenied):
        tier_save(actor=cashier, code="regular", name_zh="普通会员", threshold=Money(0))
    assert _tier_rows() == []


def test_a_tier_held_by_a_member_cannot_be_deleted(hq, tiers, member):
    grant(hq, member, tiers["silver"])
    with pytest.raises(Conflict) as refused:
        tier_delete(actor=hq, tier=tiers["silver"])
    assert refused.value.code == "tier.in_use"
    with pytest.raises(ValidationFailed) as lowest:
        tier_delete(actor=hq, tier=tiers["regular"])
    assert lowest.value.code == "tier.lowest_required"
    tier_delete(actor=hq, tier=tiers["diamond"])
    assert [code for code, _ in _tier_rows()] == ["regular", "silver", "gold"]


# --- S-01: the tier price ---------------------------------------------------------------------------------


def test_S01_tier_discount_on_services_not_retail(hq, cashier, tiers, items, member):
    # given: a Gold member
    grant(hq, member, tiers["gold"])

    # when she buys 水光补水 (680.00) and a retail item (260.00)
    bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=items["hydra"].pk), LineInput(item_id=items["cream"].pk)],
        tenders=[TenderInput(kind="cash", amount=Money.parse("838.00"))],
        idempotency_key="s01",
    )

    # then: the facial costs 578.00, the retail item stays 260.00, the bill is 838.00
    hydra, cream = bill.lines.order_by("pk")
    assert (hydra.unit_price_fen, cream.unit_price_fen) == (57_800, 26_000)
    assert (bill.list_total_fen, bill.discount_total_fen, bill.payable_total_fen) == (94_000, 10_200, 83_800)
    assert hydra.price_steps == [
        {"step": "list_price", "unit_price_fen": 68_000, "reason": "标价 List price"},
        {"step": "member_price", "unit_price_fen": 57_800, "reason": "金卡会员价 减15% Gold member price 15% off"},
    ]
    assert cream.price_steps == [{"step": "list_price", "unit_price_fen": 26_000, "reason": "标价 List price"}]
    assert (bill.member_snapshot["tier"], bill.member_snapshot["tier_name"]) == ("gold", "金卡")


def test_a_discount_by_earning_category_wins_over_the_kind(hq, cashier, tiers, items, member):
    tier_save(
        actor=hq,
        code="gold",
        name_zh="金卡",
        name_en="Gold",
        threshold=Money.parse("10000"),
        discounts_bp={"service": 1_500, "retail": 500, "anti_ageing": 0},
        points_multiplier_bp=12_000,
    )
    grant(hq, member, tiers["gold"])
    bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[
            LineInput(item_id=items["care"].pk),
            LineInput(item_id=items["lifting"].pk),
            LineInput(item_id=items["serum"].pk),
        ],
        tenders=[TenderInput(kind="cash", amount=Money.parse("1747.50"))],
        idempotency_key="by-category",
    )
    # basic care 600.00 −15% = 510.00; anti-ageing named with 0: 1,000.00; retail 250.00 −5% = 237.50
    assert [line.unit_price_fen for line in bill.lines.order_by("pk")] == [51_000, 100_000, 23_750]


def test_tier_price_rounds_half_up_to_the_fen():
    assert tier_price_fen(68_000, 1_500) == 57_800
    assert tier_price_fen(11_764, 1_500) == 9_999  # 99.994 → 99.99
    assert tier_price_fen(117_647, 1_500) == 100_000  # 999.9995 → 1,000.00
    assert tier_price_fen(3, 5_000) == 2  # 0.015 → 0.02 (half up)
    assert tier_price_fen(60_000, 0) == 60_000


# --- S-03: multipliers and truncation ----------------------------------------------------------------------


def _earn(member_info, fen: int) -> LineEarning:
    ctx = EarningContext(
        actor=None,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        member=None,  # type: ignore[arg-type]
        rates={"basic_care": 1},
        on=None,  # type: ignore[arg-type]
        member_info=member_info,
    )
    return earn_line(ctx, LineEarning(earning_category="basic_care", earning_fen=fen))


def test_S03_multipliers_and_truncation_in_the_earning_steps(tiers):
    from meiye.loyalty.tiers import tier_rules

    gold, diamond = tier_rules(tiers["gold"]), tier_rules(tiers["diamond"])
    assert _earn(gold, 100_000).points == 1_200
    assert _earn(diamond, 100_000).points == 1_500
    assert _earn(gold, 9_999).points == 119  # floor(119.988)
    assert _earn(tier_rules(tiers["regular"]), 100_000).points == 1_000
    assert _earn(gold, 100_000).steps == [
        {"step": "base_rate", "points_per_yuan": 1, "reason": "基础积分 Base rate"},
        {"step": "tier_multiplier", "multiplier": "6/5", "reason": "金卡积分×1.2 Gold points ×1.2"},
    ]


def test_S03_multipliers_and_truncation_on_real_bills(hq, cashier, tiers, categories, make_member, store1):
    # given: a Gold and a Diamond member, and basic-care services whose tier price is what the scenario pays
    gold, diamond = make_member(store1), make_member(store1)
    grant(hq, gold, tiers["gold"])
    grant(hq, diamond, tiers["diamond"])
    gold_care = _service(hq, categories, "gold-care", "1176.47")  # −15% = 999.9995 → 1,000.00
    diamond_care = _service(hq, categories, "diamond-care", "1250.00")  # −20% = 1,000.00
    small_care = _service(hq, categories, "small-care", "117.64")  # −15% = 99.994 → 99.99

    # when: each pays cash
    gold_bill = _cash(cashier, gold, gold_care, "1000.00", "s03-gold")
    diamond_bill = _cash(cashier, diamond, diamond_care, "1000.00", "s03-diamond")
    small_bill = _cash(cashier, gold, small_care, "99.99", "s03-small")

    # then: 1,200 / 1,500 / floor(119.988) = 119 points
    assert (gold_bill.payable_total_fen, gold_bill.points_earned) == (100_000, 1_200)
    assert (diamond_bill.payable_total_fen, diamond_bill.points_earned) == (100_000, 1_500)
    assert (small_bill.payable_total_fen, small_bill.points_earned) == (9_999, 119)
    assert small_bill.lines.get().earning_steps[-1]["step"] == "tier_multiplier"


# --- S-08: the tier's points lifetime; the tier's offset rate ------------------------------------------------


def test_S08_a_diamond_members_points_last_24_months(hq, cashier, tiers, items, make_member, store1):
    regular, diamond = make_member(store1), make_member(store1)
    grant(hq, diamond, tiers["diamond"])
    today = local_today(store1)

    _cash(cashier, regular, items["serum"], "250.00", "s08-regular")
    _cash(cashier, diamond, items["serum"], "250.00", "s08-diamond")

    assert PointsLot.objects.get(member=regular).expires_on == add_months(today, 12)
    diamond_lot = PointsLot.objects.get(member=diamond)
    assert (diamond_lot.amount, diamond_lot.expires_on) == (750, add_months(today, 24))  # 250 × 2 × 1.5


def test_points_rebooked_by_a_partial_refund_keep_the_tiers_lifetime(
    hq, cashier, manager, actor_for, tiers, items, make_member, store1
):
    # given: a Diamond member buys two serums (2 × 250.00 cash, 1,500 points lasting 24 months)
    from meiye.sales.services import bill_refund

    diamond = make_member(store1)
    grant(hq, diamond, tiers["diamond"])
    today = local_today(store1)
    bill = _cash(cashier, diamond, items["serum"], "500.00", "rebook", quantity=2)

    # when: one serum is refunded
    bill_refund(
        actor=actor_for(manager, store1),
        bill=bill,
        lines=[(bill.lines.get().pk, 1)],
        reason="退一瓶",
        idempotency_key="rebook-refund",
    )

    # then: the 750 points still earned are rebooked with the Diamond lifetime, not the default 12 months
    rebooked = PointsLot.objects.filter(member=diamond, remaining__gt=0).get()
    assert (rebooked.remaining, rebooked.expires_on) == (750, add_months(today, 24))


def test_a_gold_member_offsets_at_90_points_per_yuan(hq, cashier, tiers, items, member):
    grant(hq, member, tiers["gold"])
    points_earn(
        actor=cashier,
        member=member,
        points=900,
        source_code="test.opening",
        reference_type="test",
        reference_id="opening",
        idempotency_key="opening",
    )
    bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=items["serum"].pk)],
        tenders=[TenderInput(kind="points", points=900), TenderInput(kind="cash", amount=Money.parse("240.00"))],
        idempotency_key="offset",
    )
    assert Tender.objects.get(bill=bill, kind="points").amount_fen == 1_000  # 900 points = 10.00 at 90/元


# --- upgrades at once, progress ---------------------------------------------------------------------------


def test_a_bill_crossing_a_threshold_upgrades_at_once_with_history(hq, cashier, tiers, categories, member, store1):
    big = _service(hq, categories, "big-care", "8766.00")
    today = local_today(store1)

    bill = _cash(cashier, member, big, "8766.00", "upgrade")

    state = MemberTier.objects.get(member=member)
    assert (state.tier.code, state.since, state.earned_tier.code, state.earned_since) == (
        "silver",
        today,
        "silver",
        today,
    )
    assert state.review_on == shift_months(today, 12)
    assert bill.member_snapshot["tier"] == "regular"  # priced before the upgrade
    change = TierChange.objects.get(member=member)
    assert (change.from_tier.code, change.to_tier.code, change.cause, change.growth_fen, change.on) == (
        "regular",
        "silver",
        "bill",
        876_600,
        today,
    )
    assert change.staff == cashier.staff
    assert AuditLog.objects.filter(action="loyalty.tier_change", object_id=str(member.pk)).count() == 1

    progress = tier_progress(member)
    assert (progress.tier.code, progress.next_tier.code, progress.growth_fen, progress.remaining_fen) == (
        "silver",
        "gold",
        876_600,
        123_400,
    )
    assert progress.message_zh == "距离金卡还差 ¥1,234"
    assert progress.message_en == "¥1,234 to Gold"


def test_a_bill_can_jump_several_tiers_and_a_second_bill_below_the_next_changes_nothing(
    hq, cashier, tiers, categories, member, django_assert_max_num_queries
):
    big = _service(hq, categories, "big-care", "12000.00")
    _cash(cashier, member, big, "12000.00", "jump")
    assert MemberTier.objects.get(member=member).tier.code == "gold"
    assert tier_progress(member).message_zh == "距离钻石还差 ¥18,000"

    small = _service(hq, categories, "small-care", "100.00")
    _cash(cashier, member, small, "85.00", "small")  # Gold price
    assert TierChange.objects.filter(member=member).count() == 1


def test_progress_without_tiers_and_at_the_top(hq, tiers, member, make_member, store1):
    other = make_member(store1)
    assert tier_progress(other).message_en == "¥3,000 to Silver"
    grant(hq, member, tiers["diamond"])
    progress = tier_progress(member)
    assert (progress.next_tier, progress.remaining_fen) == (None, 0)
    assert progress.message_zh == "已是最高等级钻石"
    assert progress.message_en == "Diamond is the highest tier"


def test_progress_when_no_tier_is_configured(member):
    progress = tier_progress(member)
    assert (progress.tier, progress.message_zh, progress.message_en) == (None, "", "")


# --- grants by hand -------------------------------------------------------------------------------------------


def test_grant_by_hand_needs_a_reason_a_permission_and_a_future_date(hq, cashier, tiers, member, store1):
    today = local_today(store1)
    cases = [
        (hq, {"reason": "  "}, ValidationFailed, "input.invalid"),
        (hq, {"until": today - timedelta(days=1)}, ValidationFailed, "tier.invalid_until"),
        (cashier, {}, PermissionDenied, "auth.permission_denied"),
    ]
    for actor, changes, error, code in cases:
        arguments = {"member": member, "tier": tiers["gold"], "until": today, "reason": "老客户 loyal", **changes}
        with pytest.raises(error) as refused:
            tier_grant(actor=actor, **arguments)
        assert refused.value.code == code
    assert not MemberTier.objects.exists()
    assert not TierChange.objects.exists()
    assert not AuditLog.objects.filter(action="loyalty.tier_grant").exists()


def test_grant_of_a_tier_of_another_organisation_is_not_found(hq, member):
    other = Organisation.objects.create(name="别家美业", code="other")
    foreign = Tier.objects.create(organisation=other, code="x", name_zh="外", threshold_fen=0)
    with pytest.raises(NotFound):
        tier_grant(actor=hq, member=member, tier=foreign, until=local_today(None), reason="x")


def test_grant_by_hand_is_recorded_with_who_and_why(hq, tiers, member, store1):
    today = local_today(store1)
    state = tier_grant(actor=hq, member=member, tier=tiers["gold"], until=today + timedelta(days=30), reason="店庆")
    assert (state.tier.code, state.floor_tier.code, state.floor_until) == ("gold", "gold", today + timedelta(days=30))
    assert state.review_on == today + timedelta(days=31)  # the day after the grant ends
    (change,) = tier_history(member)
    assert (change.from_tier.code, change.to_tier.code, change.cause, change.note, change.staff) == (
        "regular",
        "gold",
        "grant",
        "店庆",
        hq.staff,
    )
    audit = AuditLog.objects.get(action="loyalty.tier_grant")
    assert audit.detail["reason"] == "店庆" and audit.detail["tier"] == "gold"


@override_settings(MEIYE_ALLOW_PURGE=False)
def test_tier_history_is_append_only(hq, tiers, member):
    grant(hq, member, tiers["gold"])
    change = TierChange.objects.get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        TierChange.objects.filter(pk=change.pk).update(note="changed")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        TierChange.objects.filter(pk=change.pk).delete()
    assert TierChange.objects.get().note == "测试 test set-up"


# --- merge and export ---------------------------------------------------------------------------------------------


def test_merge_moves_the_tier_and_counts_the_merged_members_growth(hq, cashier, tiers, categories, make_member, store1):
    survivor, merged = make_member(store1), make_member(store1)
    _cash(cashier, merged, _service(hq, categories, "a", "3100.00"), "3100.00", "merged-bill")
    _cash(cashier, survivor, _service(hq, categories, "b", "500.00"), "500.00", "survivor-bill")
    assert MemberTier.objects.get(member=merged).tier.code == "silver"
    today = local_today(store1)

    member_merge(actor=hq, survivor=survivor, merged=merged)

    state = MemberTier.objects.get(member=survivor)
    assert (state.tier.code, state.earned_tier.code, state.earned_since) == ("silver", "silver", today)
    assert list(GrowthSource.objects.values_list("member_id", "source_id")) == [(survivor.pk, merged.pk)]
    assert growth_in_window(survivor, on=today) == 360_000  # the growth.merge journal is not counted twice
    assert MemberTier.objects.get(member=merged).review_on is None
    change = tier_history(survivor)[0]
    assert (change.from_tier.code, change.to_tier.code, change.cause) == ("regular", "silver", "merge")
    assert AuditLog.objects.get(action="member.merge").detail["moved"]["tier"] == "silver"


def test_merge_of_merges_counts_everyone_and_combined_growth_can_upgrade(
    hq, cashier, tiers, categories, make_member, store1
):
    a, b, c = make_member(store1), make_member(store1), make_member(store1)
    for member, key in ((a, "a"), (b, "b"), (c, "c")):
        _cash(cashier, member, _service(hq, categories, f"care-{key}", "1200.00"), "1200.00", f"bill-{key}")
    member_merge(actor=hq, survivor=b, merged=a)
    assert not MemberTier.objects.filter(member=b).exists()  # 2,400.00 together: still Regular
    member_merge(actor=hq, survivor=c, merged=b)

    assert growth_in_window(c, on=local_today(store1)) == 360_000
    assert set(GrowthSource.objects.filter(member=c).values_list("source_id", flat=True)) == {a.pk, b.pk}
    assert MemberTier.objects.get(member=c).tier.code == "silver"


def test_export_holds_the_tier_and_its_history(hq, tiers, member, store1):
    grant(hq, member, tiers["gold"])
    data = member_export(actor=hq, member=member)
    tier = data["tier"]
    assert (tier["tier"], tier["granted_tier"], tier["granted_until"]) == ("gold", "gold", "2099-12-31")
    assert [(h["from"], h["to"], h["cause"]) for h in tier["history"]] == [("regular", "gold", "grant")]


# --- the hot path ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", [None, "regular", "gold", "diamond"])
def test_checkout_with_tiers_stays_within_the_query_budget(
    hq, cashier, tiers, items, member, tier, django_assert_max_num_queries
):
    if tier is not None:
        grant(hq, member, tiers[tier])
    _cash(cashier, member, items["serum"], "250.00", "warm")
    with django_assert_max_num_queries(20):
        _cash(cashier, member, items["serum"], "250.00", "measured")


def test_staff_of_another_organisation_cannot_grant(tiers, member, actor_for):
    other = Organisation.objects.create(name="别家美业", code="other")
    stranger = StaffFactory(organisation=other, position="hq_admin", stores=[], username="stranger")
    with pytest.raises(NotFound):
        tier_grant(actor=actor_for(stranger), member=member, tier=tiers["gold"], until=local_today(None), reason="x")


def test_an_open_bill_keeps_the_tier_it_was_opened_with(hq, cashier, tiers, items, member):
    from meiye.sales.services import bill_add_line, bill_complete, bill_open

    # given: a Gold member's bill opened and a facial added (priced at the Gold price)
    grant(hq, member, tiers["gold"])
    bill = bill_open(actor=cashier, member=member)
    line = bill_add_line(actor=cashier, bill=bill, item=items["hydra"])
    assert line.unit_price_fen == 57_800

    # when it is paid
    done = bill_complete(
        actor=cashier, bill=bill, tenders=[TenderInput(kind="cash", amount=Money.parse("578.00"))], idempotency_key="o"
    )

    # then: 578.00 basic care × 1 point × 1.2 = 693.6 → 693 points
    assert (done.payable_total_fen, done.points_earned) == (57_800, 693)


def test_tier_change_hooks_see_each_change(hq, tiers, member, monkeypatch):
    from meiye.loyalty import tiers as tiers_module

    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(tiers_module, "TIER_CHANGE_HOOKS", [lambda c: seen.append((c.to_tier.code, c.cause))])
    grant(hq, member, tiers["gold"])
    assert seen == [("gold", "grant")]


def test_S06_points_offset_capped_at_10_percent_in_whole_yuan(hq, cashier, tiers, items, member):
    # given: a Gold member (90 points per 元) with 10,000 points and a bill payable 500.00 (cap 10% = 50.00)
    from meiye.sales.pricing import points_offset_quote
    from meiye.sales.selectors import points_offset_quote_for

    grant(hq, member, tiers["gold"])
    points_earn(
        actor=cashier,
        member=member,
        points=10_000,
        source_code="test.opening",
        reference_type="test",
        reference_id="opening",
        idempotency_key="s06-opening",
    )

    # when / then: 50.00 using 4,500 points
    quote = points_offset_quote_for(cashier, member, store=cashier.store, payable=Money.parse("500.00"))
    assert (quote.value, quote.points, quote.points_per_yuan) == (Money.parse("50.00"), 4_500, 90)
    # with 4,000 points: 44.00 using 3,960 points (whole 元, never rounded up)
    assert points_offset_quote(payable_fen=50_000, points_balance=4_000, points_per_yuan=90, cap_bp=1_000) == (
        4_400,
        3_960,
    )

    # and the checkout takes exactly the quoted points (2 × serum 250.00, retail: no Gold discount)
    bill = bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=items["serum"].pk, quantity=2)],
        tenders=[
            TenderInput(kind="points", points=quote.points),
            TenderInput(kind="cash", amount=Money.parse("450.00")),
        ],
        idempotency_key="s06",
    )
    assert bill.payable_total_fen == 50_000
    assert Tender.objects.get(bill=bill, kind="points").amount_fen == 5_000
