"""Segment criteria: each one selects an exact set of members; bad criteria are refused and write nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from meiye.audit.models import AuditLog
from meiye.campaigns.models import Segment
from meiye.campaigns.segments import criteria_clean, segment_count, segment_members
from meiye.campaigns.services import segment_save
from meiye.core.errors import ApplicationError
from meiye.loyalty.tiers import tier_grant
from meiye.members.models import Member, MemberStatus
from meiye.org.context import Actor
from tests.campaigns.conftest import NOW


def names(actor: Actor, criteria: dict[str, Any]) -> set[str]:
    cleaned = criteria_clean(actor=actor, criteria=criteria)
    return {m.name for m in segment_members(actor=actor, criteria=cleaned, now=NOW)}


def test_no_criteria_selects_every_active_member(hq, people):
    Member.objects.filter(pk=people["c"].pk).update(status=MemberStatus.INACTIVE)
    assert names(hq, {}) == {"甲", "乙"}


def test_tiers_lowest_includes_members_without_a_tier_row(hq, people, tiers):
    tier_grant(actor=hq, member=people["b"], tier=tiers["silver"], until=date(2027, 6, 30), reason="VIP 客户")
    assert names(hq, {"tiers": ["silver"]}) == {"乙"}
    assert names(hq, {"tiers": ["regular"]}) == {"甲", "丙"}
    assert names(hq, {"tiers": ["regular", "silver"]}) == {"甲", "乙", "丙"}


def test_birthday_month(hq, people):
    assert names(hq, {"birthday_month": 6}) == {"甲"}
    assert names(hq, {"birthday_month": 7}) == {"乙"}
    assert names(hq, {"birthday_month": 1}) == set()


def test_dormant_days_counts_only_completed_bills(hq, people):
    assert names(hq, {"dormant_days": 30}) == {"乙", "丙"}
    assert names(hq, {"dormant_days": 5}) == {"甲", "乙", "丙"}
    assert names(hq, {"dormant_days": 101}) == {"丙"}


def test_last_visit_within_and_before(hq, people):
    assert names(hq, {"visited_within_days": 30}) == {"甲"}
    assert names(hq, {"visited_within_days": 101}) == {"甲", "乙"}
    assert names(hq, {"visited_before_days": 30}) == {"乙"}
    assert names(hq, {"visited_before_days": 5}) == {"甲", "乙"}


def test_visit_count_in_window(hq, people):
    assert names(hq, {"visits_min": {"days": 60, "count": 2}}) == {"甲"}
    assert names(hq, {"visits_min": {"days": 30, "count": 2}}) == set()
    assert names(hq, {"visits_min": {"days": 120, "count": 1}}) == {"甲", "乙"}


def test_spend_in_window_is_net_of_refunds(hq, people):
    # 甲: 600.00 + 300.00 − 100.00 refunded = 800.00 in the last 60 days.
    assert names(hq, {"spend_min": {"days": 60, "fen": 80_000}}) == {"甲"}
    assert names(hq, {"spend_min": {"days": 60, "fen": 80_001}}) == set()
    assert names(hq, {"spend_min": {"days": 30, "fen": 60_000}}) == {"甲"}
    assert names(hq, {"spend_min": {"days": 120, "fen": 80_000}}) == {"甲", "乙"}
    assert names(hq, {"spend_min": {"days": 120, "fen": 0}}) == {"甲", "乙", "丙"}


def test_tags_and_home_stores(hq, people, store1, store2):
    assert names(hq, {"tags": ["VIP"]}) == {"甲"}
    assert names(hq, {"tags": ["VIP", "新客"]}) == {"甲", "乙"}
    assert names(hq, {"store_ids": [store2.pk]}) == {"乙"}
    assert names(hq, {"store_ids": [store1.pk], "dormant_days": 30}) == {"丙"}


def test_points_balance_bounds(hq, people):
    assert names(hq, {"points_min": 200}) == {"丙"}
    assert names(hq, {"points_max": 200}) == {"甲", "乙"}
    assert names(hq, {"points_min": 100, "points_max": 100}) == {"甲"}


def test_holds_an_active_coupon_of_a_template(hq, people, template, other_template):
    assert names(hq, {"coupon_template_id": template.pk}) == {"甲"}
    assert names(hq, {"coupon_template_id": other_template.pk}) == {"乙"}


def test_store_scoped_by_the_actor(hq, people, manager, actor_for, store1):
    store_manager = actor_for(manager, store1)
    assert {m.name for m in segment_members(actor=store_manager, criteria={}, now=NOW)} == {"甲", "丙"}
    assert segment_count(actor=store_manager, criteria={"dormant_days": 30}, now=NOW) == 1
    assert segment_count(actor=hq, criteria={"dormant_days": 30}, now=NOW) == 2


def test_segment_members_is_one_query(hq, people, template, django_assert_num_queries):
    criteria = criteria_clean(
        actor=hq,
        criteria={
            "birthday_month": 6,
            "visits_min": {"days": 60, "count": 2},
            "spend_min": {"days": 60, "fen": 1},
            "points_min": 1,
            "coupon_template_id": template.pk,
            "tags": ["VIP"],
        },
    )
    with django_assert_num_queries(1):
        assert [m.name for m in segment_members(actor=hq, criteria=criteria, now=NOW)] == ["甲"]


@pytest.mark.parametrize(
    ("criteria", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"birthday_month": 13}, "birthday_month"),
        ({"dormant_days": "30"}, "dormant_days"),
        ({"visits_min": {"days": 30}}, "visits_min"),
        ({"spend_min": {"days": 30, "fen": -1}}, "spend_min"),
        ({"tiers": ["platinum"]}, "tiers"),
        ({"tags": ["不存在"]}, "tags"),
        ({"store_ids": [999_999]}, "store_ids"),
        ({"points_min": 10, "points_max": 5}, "points_max"),
        ({"coupon_template_id": 999_999}, "coupon_template_id"),
    ],
)
def test_bad_criteria_are_refused_and_nothing_is_written(hq, people, tiers, criteria, field):
    audit_before = AuditLog.objects.count()
    with pytest.raises(ApplicationError) as caught:
        segment_save(actor=hq, name="坏分群", criteria=criteria)
    assert caught.value.code == "segment.invalid_criteria"
    assert caught.value.field == field
    assert Segment.objects.count() == 0
    assert AuditLog.objects.count() == audit_before


def test_segment_save_and_update(hq, people, store1):
    segment = segment_save(actor=hq, name="沉睡会员", criteria={"dormant_days": 30, "tags": []})
    assert segment.criteria == {"dormant_days": 30}
    segment = segment_save(
        actor=hq, name="沉睡会员（静安）", criteria={"dormant_days": 30, "store_ids": [store1.pk]}, segment=segment
    )
    assert Segment.objects.get().criteria == {"dormant_days": 30, "store_ids": [store1.pk]}
    assert segment_count(actor=hq, criteria=segment.criteria, now=NOW) == 1


def test_segment_save_needs_campaigns_manage(manager, actor_for, store1, people):
    with pytest.raises(ApplicationError) as caught:
        segment_save(actor=actor_for(manager, store1), name="x", criteria={})
    assert caught.value.code == "permission_denied" or caught.value.status == 403
    assert Segment.objects.count() == 0
