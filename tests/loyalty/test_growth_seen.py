"""The upgrade check after a checkout takes her earned tier and 12-month growth from the checkout's store read
(``loyalty.tiers.GrowthSeen``) when her growth balance, once locked, is at the version that read saw — and reads
them again whenever anything they describe may have changed in between: a growth posting, a review that moved
her earned tier, a merge, another day or time zone, members merged into her."""

from __future__ import annotations

import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from meiye.ledger.models import Balance
from meiye.ledger.services import balances_touch
from meiye.loyalty.models import LoyaltySettings
from meiye.loyalty.selectors import member_growth_account, shift_months
from meiye.loyalty.services import growth_add
from meiye.loyalty.tiers import GrowthSeen, tier_after_bill, tier_review_due, tier_view_known
from meiye.members.services import member_merge
from meiye.org.context import Actor
from meiye.sales import services as sales_services
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
def tiers(hq):
    return reference_tiers(hq)  # Silver from 3,000.00 of growth


@pytest.fixture
def items(hq):
    return reference_items(hq, reference_categories(hq))


def test_a_bill_crossing_the_threshold_upgrades_her_from_what_the_store_read_saw(cashier, tiers, items, member):
    cash_bill(cashier, member, items["care"], "2400.00", quantity=4)
    assert earned_tier_code(member) is None  # 2,400.00: still Regular (no state row yet)

    with CaptureQueriesContext(connection) as ctx:
        cash_bill(cashier, member, items["care"], "600.00")  # 3,000.00: Silver at once

    assert earned_tier_code(member) == "silver"
    assert upgrade_reads(ctx) == 0


def test_growth_posted_between_the_store_read_and_the_lock_is_read_again(cashier, tiers, items, member):
    cash_bill(cashier, member, items["care"], "600.00")  # growth 600.00
    real_lock = sales_services.accounts_lock

    def lock_after_another_bill(**kwargs):
        # as if another checkout of hers committed 2,000.00 of growth after this one read its store row
        growth_add(
            actor=cashier,
            member=member,
            amount_fen=200_000,
            reference_type="test",
            reference_id="other-bill",
            idempotency_key=uuid.uuid4().hex,
        )
        return real_lock(**kwargs)

    with (
        mock.patch.object(sales_services, "accounts_lock", lock_after_another_bill),
        CaptureQueriesContext(connection) as ctx,
    ):
        cash_bill(cashier, member, items["care"], "600.00")  # 600 + 2,000 + 600 = 3,200.00

    # the store read saw 600.00; the version told it was stale, so the check read 3,200.00 and upgraded her
    assert earned_tier_code(member) == "silver"
    assert upgrade_reads(ctx) == 1


def test_a_stale_sighting_is_not_used_and_a_current_one_is(cashier, tiers, items, member):
    cash_bill(cashier, member, items["care"], "600.00")  # her growth account exists, growth 600.00
    version = growth_version(member)
    today = sales_services.timezone.localdate(timezone=sales_services.ZoneInfo(cashier.store.time_zone))

    def check(seen: GrowthSeen, locked_version: int) -> tuple[str | None, int]:
        tier_view_known(member, version=None, held_tier_id=None)  # forget the view, then set the one under test
        tier_view_known(
            member,
            version=LoyaltySettings.objects.get(organisation_id=member.organisation_id).tiers_version,
            held_tier_id=None,
            seen=seen,
        )
        with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
            tier_after_bill(actor=cashier, member=member, on=today, locked_version=locked_version)
            return earned_tier_code(member), upgrade_reads(ctx)

    lying = GrowthSeen(on=today, zone=cashier.store.time_zone, earned_id=None, version=version, growth=1_000_000)
    # a sighting whose version is not the locked one is ignored: her real growth (600.00) reaches nothing
    assert check(lying, locked_version=version + 1) == (None, 1)
    # another day's or another zone's window is ignored too
    assert check(GrowthSeen(**{**lying.__dict__, "on": shift_months(today, -1)}), locked_version=version)[1] == 1
    assert check(GrowthSeen(**{**lying.__dict__, "zone": "America/New_York"}), locked_version=version)[1] == 1
    # the same version: what it saw is taken as it is (10,000.00 here, so Gold), with no read
    assert check(lying, locked_version=version) == ("gold", 0)


def test_a_review_that_moves_her_earned_tier_bumps_her_growth_version(cashier, tiers, items, member, org, store1):
    cash_bill(cashier, member, items["care"], "3000.00", quantity=5)  # Silver
    assert earned_tier_code(member) == "silver"
    before = growth_version(member)
    today = sales_services.timezone.localdate(timezone=sales_services.ZoneInfo(store1.time_zone))
    after_anniversary = shift_months(today, 12) + timedelta(days=1)

    result = tier_review_due(actor=Actor.system(org), today=after_anniversary)  # her growth has left the window

    assert (result.reviewed, result.lowered) == (1, 1)
    assert earned_tier_code(member) == "regular"
    assert growth_version(member) == before + 1


def test_a_merge_bumps_the_survivors_growth_version_and_her_window_is_read_with_theirs(
    hq, cashier, tiers, items, member, make_member, store1
):
    twin = make_member(store1, phone="13900001234")
    cash_bill(cashier, member, items["care"], "600.00")
    cash_bill(cashier, twin, items["care"], "1800.00", quantity=3)
    before = growth_version(member)

    member_merge(actor=hq, survivor=member, merged=twin)

    assert growth_version(member) > before
    with CaptureQueriesContext(connection) as ctx:
        cash_bill(cashier, member, items["care"], "600.00")  # 600 + 1,800 (hers now) + 600 = 3,000.00
    # members were merged into her: the store read carries no growth, and the check reads it with theirs
    assert earned_tier_code(member) == "silver"
    assert upgrade_reads(ctx) == 1


def test_a_store_in_another_time_zone_is_read_right_from_its_second_checkout(cashier, tiers, items, member, store1):
    store1.time_zone = "Asia/Urumqi"
    store1.save(update_fields=["time_zone"])
    cashier.store.time_zone = "Asia/Urumqi"

    with CaptureQueriesContext(connection) as first:
        cash_bill(cashier, member, items["care"], "2400.00", quantity=4)
    with CaptureQueriesContext(connection) as second:
        cash_bill(cashier, member, items["care"], "600.00")

    # the first window was taken in the default zone, so the check read it again; the second in the store's own
    assert upgrade_reads(first) == 1
    assert upgrade_reads(second) == 0
    assert earned_tier_code(member) == "silver"


def test_touching_a_balance_changes_its_version_not_its_amount(cashier, items, member):
    cash_bill(cashier, member, items["care"], "600.00")
    account = member_growth_account(member)
    assert account is not None
    before = Balance.objects.get(account=account)

    with transaction.atomic():
        balances_touch([account.pk, account.pk])

    after = Balance.objects.get(account=account)
    assert (after.amount, after.version) == (before.amount, before.version + 1)
