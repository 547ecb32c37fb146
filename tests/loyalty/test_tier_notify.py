"""A tier change tells the member (notification event "tier.changed"): once per change, in her language, in the
transaction of the change (a refused change tells nothing)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from meiye.core.errors import ValidationFailed
from meiye.loyalty.models import TierChange
from meiye.loyalty.selectors import local_today
from meiye.loyalty.tiers import TIER_CHANGE_HOOKS, tier_change_notify, tier_grant, tier_review_due
from meiye.notify.models import Message
from meiye.notify.services import notify_preferences_set
from tests.loyalty.tiers_reference import grant, reference_tiers


@pytest.fixture
def hq(hq_admin, actor_for, store1):
    return actor_for(hq_admin, store1)


@pytest.fixture
def tiers(hq):
    return reference_tiers(hq)


@pytest.fixture
def member(make_member, store1):
    return make_member(store1, name="周女士", phone="13900001111")


def test_the_hook_is_registered_once():
    assert TIER_CHANGE_HOOKS.count(tier_change_notify) == 1


def test_a_grant_tells_the_member_her_new_tier(hq, tiers, member):
    grant(hq, member, tiers["gold"])

    change = TierChange.objects.get()
    message = Message.objects.get()
    assert (message.event, message.channel, message.member_id, message.status) == (
        "tier.changed",
        "sms",
        member.pk,
        "queued",
    )
    assert message.idempotency_key == f"tier.changed:{change.pk}"
    assert message.body == "周女士您好，您的会员等级已变更为金卡。"
    assert message.store_id == member.home_store_id

    tier_change_notify(change)  # told once per change
    assert Message.objects.count() == 1


def test_she_is_told_in_her_language_and_again_when_she_falls_back(hq, tiers, member, store1):
    notify_preferences_set(actor=hq, member=member, language="en", opt_outs={})
    today = local_today(store1)
    tier_grant(actor=hq, member=member, tier=tiers["silver"], until=today, reason="试用 trial")

    tier_review_due(actor=hq, today=today + timedelta(days=1))

    bodies = list(Message.objects.order_by("pk").values_list("body", flat=True))
    assert bodies == [
        "Dear 周女士, your membership tier is now Silver.",
        "Dear 周女士, your membership tier is now Regular.",
    ]
    assert Message.objects.values("idempotency_key").distinct().count() == 2


def test_no_change_no_message(hq, tiers, member, store1):
    grant(hq, member, tiers["gold"])
    grant(hq, member, tiers["gold"])  # the same tier again: no change
    with pytest.raises(ValidationFailed):
        tier_grant(actor=hq, member=member, tier=tiers["diamond"], until=local_today(store1), reason=" ")

    assert Message.objects.count() == TierChange.objects.count() == 1
