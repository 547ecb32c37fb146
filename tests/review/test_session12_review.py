"""Review of session 12 (8be0b19): the upgrade check after a bill takes her earned tier and 12-month growth from
the checkout's store read (``loyalty.tiers.GrowthSeen``), guarded by her growth balance's version.

What these pin: every change of what the sighting describes between the store read and the bill's lock is
caught by the version (a review that moves her earned tier, a merge whose merged member has no growth balance
left to move, a store row reused by the same actor for a second bill, a store whose zone changed since this
process remembered it), and the store read still answers for an organisation with no tiers and a member with
no growth account or tier state."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from meiye.ledger.models import Balance
from meiye.loyalty.models import MemberTier
from meiye.loyalty.selectors import member_growth_account, shift_months
from meiye.loyalty.tiers import tier_review_due
from meiye.members.models import Member
from meiye.members.services import member_merge
from meiye.org.context import Actor
from meiye.sales import services as sales_services
from meiye.sales.services import (
    _checkout_store_and_config,
    bill_refund,
    checkout_store_get,
)
from tests.loyalty.tiers_reference import (
    cash_bill,
    earned_tier_code,
    growth_version,
    reference_tiers,
    upgrade_reads,
)
from tests.reference import reference_categories, reference_items


@pytest.fixture
def hq(hq_admin, actor_for, store1):
    return actor_for(hq_admin, store1)


@pytest.fixture
def cashier(receptionist, store1, actor_for) -> Actor:
    return actor_for(receptionist, store1)


@pytest.fixture
def refunder(manager, actor_for, store1) -> Actor:
    return actor_for(manager, store1)


@pytest.fixture
def member(make_member, store1) -> Member:
    return make_member(store1)


@pytest.fixture
def tiers(hq):
    return reference_tiers(hq)  # Silver from 3,000.00, Gold from 10,000.00 of growth


@pytest.fixture
def items(hq):
    return reference_items(hq, reference_categories(hq))


def _between_read_and_lock(action):
    """Patch the checkout's balance lock so that ``action`` runs after its store read, before the lock."""
    real_lock = sales_services.accounts_lock

    def lock(**kwargs):
        action()
        return real_lock(**kwargs)

    return mock.patch.object(sales_services, "accounts_lock", lock)


# --- A review that moves her earned tier between the store read and the lock -----------------------------------


def test_a_review_lowering_her_after_the_store_read_is_read_again_and_the_bill_upgrades_her(
    cashier, tiers, items, member, org
):
    """The store read saw her earned Silver; the review (its tier anniversary: the growth it counts is that of
    another day) lowers her to Regular before the bill locks her growth. Her growth today with the bill reaches
    Silver, so the bill must raise her again: taken from the stale sighting (earned Silver) it would not."""
    cash_bill(cashier, member, items["care"], "3000.00", quantity=5)  # 3,000.00: Silver
    assert earned_tier_code(member) == "silver"
    today = timezone.localdate(timezone=sales_services.ZoneInfo(cashier.store.time_zone))
    after_anniversary = shift_months(today, 12) + timedelta(days=1)

    def review():
        result = tier_review_due(actor=Actor.system(org), today=after_anniversary)
        assert (result.reviewed, result.lowered) == (1, 1)
        assert earned_tier_code(member) == "regular"

    with _between_read_and_lock(review), CaptureQueriesContext(connection) as ctx:
        cash_bill(cashier, member, items["care"], "540.00")  # priced Silver (held when read): 3,540.00 today

    assert earned_tier_code(member) == "silver"
    assert upgrade_reads(ctx) == 1  # the version told the sighting was stale


# --- A merge whose merged member has no growth balance left -----------------------------------------------------


def test_a_merge_moving_no_growth_still_bumps_the_survivors_growth_version(
    hq, cashier, refunder, tiers, items, member, make_member, store1
):
    """``points_merge`` posts no ``growth.merge`` journal when the merged member's growth balance is 0 (all
    refunded), so only ``tier_merge``'s touch tells a checkout of the survivor that her earned tier (now the
    merged member's Silver) and her merged sources changed."""
    twin = make_member(store1, phone="13900001234")
    cash_bill(cashier, member, items["care"], "600.00")
    bill = cash_bill(cashier, twin, items["care"], "3000.00", quantity=5)
    assert earned_tier_code(twin) == "silver"
    bill_refund(actor=refunder, bill=bill, reason="test", idempotency_key=uuid.uuid4().hex)
    twin_account = member_growth_account(twin)
    assert twin_account is not None and Balance.objects.get(account=twin_account).amount == 0
    before = growth_version(member)

    member_merge(actor=hq, survivor=member, merged=twin)

    assert earned_tier_code(member) == "silver"  # hers now (the higher of the two)
    assert growth_version(member) == before + 1  # the touch: no growth posting moved


def test_a_merge_between_the_store_read_and_the_lock_is_read_again(
    hq, cashier, tiers, items, member, make_member, store1
):
    twin = make_member(store1, phone="13900001235")
    cash_bill(cashier, member, items["care"], "600.00")
    cash_bill(cashier, twin, items["care"], "1800.00", quantity=3)

    def merge():
        member_merge(actor=hq, survivor=member, merged=twin)

    with _between_read_and_lock(merge), CaptureQueriesContext(connection) as ctx:
        cash_bill(cashier, member, items["care"], "600.00")  # 600 + 1,800 (hers now) + 600 = 3,000.00

    assert earned_tier_code(member) == "silver"
    assert upgrade_reads(ctx) == 1


# --- A store row read for her and reused -------------------------------------------------------------------------


def test_a_store_row_reused_by_the_same_actor_for_a_second_bill_does_not_decide_on_its_stale_sighting(
    cashier, tiers, items, member
):
    """The API reads its acting store with the member's sighting once per request; an actor object that keeps
    that row (``known`` in ``_checkout_store_and_config``) carries the sighting of before its first bill into
    the second. The version of her growth balance moved with the first bill, so the second reads again."""
    cash_bill(cashier, member, items["care"], "600.00")  # her growth account exists
    cashier = replace(cashier, store=checkout_store_get(cashier, cashier.store.pk, member.pk))
    _, config = _checkout_store_and_config(cashier, member.pk)
    assert config.growth_seen is not None and config.growth_seen.growth == 60_000

    cash_bill(cashier, member, items["care"], "1800.00", quantity=3)  # 2,400.00: still Regular
    with CaptureQueriesContext(connection) as ctx:
        cash_bill(cashier, member, items["care"], "600.00")  # 3,000.00 (the row still says 600.00)

    assert earned_tier_code(member) == "silver"
    assert upgrade_reads(ctx) == 1


# --- Zones -------------------------------------------------------------------------------------------------------


def test_a_store_whose_zone_changed_since_this_process_read_it_is_read_again(cashier, tiers, items, member, store1):
    store1.time_zone = "Asia/Urumqi"
    store1.save(update_fields=["time_zone"])
    cashier.store.time_zone = "Asia/Urumqi"
    cash_bill(cashier, member, items["care"], "600.00")  # the process now remembers Urumqi for the store
    cash_bill(cashier, member, items["care"], "600.00")
    assert sales_services._STORE_ZONES[store1.pk] == "Asia/Urumqi"

    store1.time_zone = "Asia/Shanghai"  # and back
    store1.save(update_fields=["time_zone"])
    cashier.store.time_zone = "Asia/Shanghai"
    with CaptureQueriesContext(connection) as ctx:
        cash_bill(cashier, member, items["care"], "1800.00", quantity=3)  # 3,000.00

    assert earned_tier_code(member) == "silver"
    assert upgrade_reads(ctx) == 1  # the window was taken in Urumqi: not used
    assert sales_services._STORE_ZONES[store1.pk] == "Asia/Shanghai"


# --- No tiers, no growth account, no state row -------------------------------------------------------------------


def test_no_tiers_a_first_bill_reads_nothing_for_the_upgrade_check(cashier, items, member):
    _, config = _checkout_store_and_config(cashier, member.pk)
    assert config.growth_seen is not None
    assert (config.growth_seen.version, config.growth_seen.growth, config.growth_seen.earned_id) == (None, None, None)

    with CaptureQueriesContext(connection) as ctx:
        cash_bill(cashier, member, items["care"], "600.00")

    assert upgrade_reads(ctx) == 0
    assert not MemberTier.objects.filter(member=member).exists()


def test_a_first_bill_of_a_member_with_no_growth_account_reads_again_and_upgrades(cashier, tiers, items, member):
    _, config = _checkout_store_and_config(cashier, member.pk)
    assert config.growth_seen is not None
    assert (config.growth_seen.version, config.growth_seen.growth, config.growth_seen.earned_id) == (None, 0, None)

    with CaptureQueriesContext(connection) as ctx:
        cash_bill(cashier, member, items["care"], "3000.00", quantity=5)

    assert earned_tier_code(member) == "silver"
    assert upgrade_reads(ctx) == 1  # no version seen: nothing to compare
