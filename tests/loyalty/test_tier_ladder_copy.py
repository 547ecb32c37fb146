"""The tier ladder a checkout prices with comes from each process's copy, keyed by the organisation's tiers
version (read with the checkout's store row), and the tier she holds rides on that row: no ladder read per
checkout, and every change to the ladder is priced by the next checkout."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from meiye.core.money import Money
from meiye.loyalty.models import LoyaltySettings, Tier
from meiye.loyalty.tiers import tier_delete, tier_save
from meiye.org.services import api_token_create
from meiye.sales.services import LineInput, TenderInput, bill_checkout
from tests.loyalty.tiers_reference import grant, reference_tiers
from tests.reference import reference_categories, reference_items


@pytest.fixture
def hq(hq_admin, actor_for, store1):
    return actor_for(hq_admin, store1)


@pytest.fixture
def items(hq):
    return reference_items(hq, reference_categories(hq))


def _checkout(cashier, member, item, amount: str, key: str | None = None):
    return bill_checkout(
        actor=cashier,
        member=member,
        lines=[LineInput(item_id=item.pk)],
        tenders=[TenderInput(kind="cash", amount=Money.parse(amount))],
        idempotency_key=key or uuid.uuid4().hex,
    )


def _not_the_store_read(ctx: CaptureQueriesContext) -> list[str]:
    """The SQL of the queries but the checkout's store read, which carries the tiers version, her held and earned
    tiers, her growth and whether the organisation has tiers at all."""
    return [q["sql"] for q in ctx.captured_queries if not q["sql"].lstrip().startswith('SELECT "org_store"."id"')]


def _upgrade_checks(ctx: CaptureQueriesContext) -> list[str]:
    return [sql for sql in _not_the_store_read(ctx) if "earned_tier_id" in sql]


def _tier_reads(ctx: CaptureQueriesContext) -> list[str]:
    return [
        sql for sql in _not_the_store_read(ctx) if sql.lstrip().upper().startswith("SELECT") and "loyalty_tier" in sql
    ]


def _version(org) -> int | None:
    return LoyaltySettings.objects.filter(organisation=org).values_list("tiers_version", flat=True).first()


def test_every_change_to_the_ladder_sets_a_new_version(hq, org):
    assert _version(org) is None  # no tier was ever saved: the organisation has none

    tiers = reference_tiers(hq)
    first = _version(org)
    tier_save(actor=hq, code="gold", name_zh="金卡", threshold=Money.parse("10000"), discounts_bp={"service": 1_200})
    second = _version(org)
    tier_delete(actor=hq, tier=tiers["diamond"])
    third = _version(org)

    assert None not in (first, second, third)
    assert len({first, second, third}) == 3


def test_a_checkout_reads_the_ladder_once_per_version_and_prices_each_change(hq, cashier, member, items, org):
    tiers = reference_tiers(hq)
    grant(hq, member, tiers["gold"])
    care = items["care"]  # 基础护理, 600.00
    _checkout(cashier, member, care, "510.00")  # Gold: 15% off services

    # when: the next checkout, with the process's copy of this version
    with CaptureQueriesContext(connection) as ctx:
        bill = _checkout(cashier, member, care, "510.00")

    # then: her Gold price and tier with no read of the ladder; the upgrade check after the bill takes her earned
    # tier and growth from the store read (her growth balance's version unchanged when the bill locked it)
    assert bill.payable_total_fen == 51_000
    assert bill.member_snapshot["tier"] == "gold"
    assert _tier_reads(ctx) == []
    assert _upgrade_checks(ctx) == []

    # when: HQ changes Gold's discount to 20%
    tier_save(
        actor=hq,
        code="gold",
        name_zh="金卡",
        name_en="Gold",
        threshold=Money.parse("10000"),
        discounts_bp={"service": 2_000},
        points_multiplier_bp=12_000,
    )
    with CaptureQueriesContext(connection) as ctx:
        changed = _checkout(cashier, member, care, "480.00")

    # then: the very next checkout prices the change, copying the new ladder once
    assert changed.payable_total_fen == 48_000
    assert len(_tier_reads(ctx)) == 1
    with CaptureQueriesContext(connection) as ctx:
        again = _checkout(cashier, member, care, "480.00")
    assert again.payable_total_fen == 48_000
    assert _tier_reads(ctx) == []


def test_without_tiers_a_checkout_reads_no_tier_at_all(cashier, member, items):
    with CaptureQueriesContext(connection) as ctx:
        bill = _checkout(cashier, member, items["care"], "600.00")

    assert bill.member_snapshot["tier"] is None
    assert _tier_reads(ctx) == _upgrade_checks(ctx) == []


def test_the_last_tier_deleted_leaves_list_prices(hq, cashier, member, items, org):
    only = tier_save(actor=hq, code="all", name_zh="会员", threshold=Money.parse("0"), discounts_bp={"service": 500})
    assert _checkout(cashier, member, items["care"], "570.00").payable_total_fen == 57_000

    # a tier some member held cannot be deleted: a fresh one on a ladder of its own can
    other = tier_save(actor=hq, code="vip", name_zh="贵宾", threshold=Money.parse("100000"))
    tier_delete(actor=hq, tier=other)

    assert Tier.objects.filter(organisation=org).count() == 1
    assert _checkout(cashier, member, items["care"], "570.00").member_snapshot["tier"] == only.code


def test_the_api_checkout_takes_the_held_tier_from_its_store_read(
    hq, receptionist, store1, store2, make_member, member, items, client
):
    tiers = reference_tiers(hq)
    grant(hq, member, tiers["silver"])
    _token, secret = api_token_create(actor=hq, staff=receptionist, name="t")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}", "HTTP_X_STORE_ID": str(store1.pk)}

    def post(body: dict) -> tuple[int, dict]:
        response = client.post(
            "/api/v1/bills/checkout/",
            json.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
            **headers,
        )
        return response.status_code, response.json()

    body = {
        "member_id": member.pk,
        "lines": [{"item_id": items["care"].pk, "quantity": 1}],
        "tenders": [{"kind": "cash", "amount": "540.00"}],  # Silver: 10% off 600.00
    }
    post(body)  # the process copies the ladder
    with CaptureQueriesContext(connection) as ctx:
        status, answer = post(body)

    assert status == 201, answer
    assert answer["payable_total"] == "540.00"
    assert _tier_reads(ctx) == []
    assert _upgrade_checks(ctx) == []
    # a member id that is not an id is no hint, and the body's own validation answers
    status, answer = post({**body, "member_id": "x"})
    assert (status, answer["code"], answer["field"]) == (400, "input.invalid", "member_id")
    # a member of a store the cashier does not see: the hint reads her tier, and the checkout refuses her as before
    other = make_member(store2, phone="13900009999")
    grant(hq, other, tiers["diamond"])
    status, answer = post({**body, "member_id": other.pk})
    assert (status, answer["code"]) == (404, "member.not_found")
