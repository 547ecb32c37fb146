"""The bill rendered by hand (``BillSerializer.to_representation``) is byte for byte what DRF's generic rendering
of the declared fields gives: same keys in the same order, same value types, same formatting (money strings,
datetimes in the active time zone and format, tender labels in the active language), and no extra query."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import prefetch_related_objects
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from rest_framework import serializers
from rest_framework.test import APIClient
from rest_framework.utils.encoders import JSONEncoder

from meiye.api.fields import MoneyField
from meiye.api.serializers_sales import (
    BillLineSerializer,
    BillSerializer,
    BillSummarySerializer,
    RefundSerializer,
    TenderSerializer,
    _bill_line,
    _money,
    _tender,
    refund_representation,
)
from meiye.catalog.models import Category, Item
from meiye.catalog.services import item_save
from meiye.core.money import Money
from meiye.giftcards.services import gift_card_sell
from meiye.members.models import Member
from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.packages.models import MemberPackageItem
from meiye.packages.services import ProductItemInput, package_product_save
from meiye.promotions.services import CouponTemplateInput, coupon_issue, coupon_template_save
from meiye.sales.models import Bill, BillLine, Refund, RefundDestination, Tender
from meiye.sales.selectors import bill_get, bill_rows_in_memory
from meiye.sales.services import (
    LineInput,
    TenderInput,
    bill_add_line,
    bill_checkout,
    bill_open,
    bill_refund,
    bill_void,
)

# The prefetch of the bill views (meiye/api/views/sales.py ``_shaped``).
BILL_PREFETCH = (
    "lines__approved_by",
    "tenders",
    "refunds__lines",
    "refunds__tenders__tender",
    "refunds__created_by",
)


def _json(data: Any) -> str:
    return json.dumps(data, cls=JSONEncoder, ensure_ascii=False)


def _generic(serializer_class: type[serializers.Serializer], instance: Any) -> str:
    """What DRF's own ``Serializer.to_representation`` makes of the declared fields."""
    return _json(serializers.Serializer.to_representation(serializer_class(instance), instance))


def _fast(serializer_class: type[serializers.Serializer], instance: Any) -> str:
    return _json(serializer_class(instance).data)


def _read(actor: Actor, bill: Bill) -> Bill:
    """The bill read again as the bill views read it."""
    fresh = bill_get(actor, bill.pk)
    prefetch_related_objects([fresh], *BILL_PREFETCH)
    return fresh


def _assert_same(actor: Actor, name: str, bill: Bill) -> None:
    fresh = _read(actor, bill)
    fast = _fast(BillSerializer, fresh)
    assert fast == _generic(BillSerializer, fresh), name
    assert _fast(BillSummarySerializer, fresh) == _generic(BillSummarySerializer, fresh), name
    if bill_rows_in_memory(bill):  # as the service returned it (how the checkout renders it)
        assert _fast(BillSerializer, bill) == _generic(BillSerializer, bill), name


# --- the bills ------------------------------------------------------------------------------------------------


@pytest.fixture
def refunder(manager: Staff, store1: Store, actor_for: Callable[..., Actor]) -> Actor:
    return actor_for(manager, store1)


@pytest.fixture
def facial(hq_actor: Actor, ref_categories: dict[str, Category]) -> Item:
    return item_save(
        actor=hq_actor,
        code="facial-298",
        name="基础面部护理",
        category=ref_categories["basic_care"],
        price=Money.parse("298.00"),
        duration_minutes=60,
    )


@pytest.fixture
def bills(
    cashier_actor: Actor,
    hq_actor: Actor,
    refunder: Actor,
    shopper: Member,
    make_member: Callable[..., Member],
    store1: Store,
    manager: Staff,
    beautician: Staff,
    receptionist: Staff,
    api_manager_pin: str,
    care: Item,
    lifting: Item,
    serum: Item,
    facial: Item,
    top_up: Callable[..., Any],
    gift_points: Callable[[Member, int], Any],
) -> dict[str, Bill]:
    """A bill of every shape the checkout makes, each as its service returned it."""
    made: dict[str, Bill] = {}

    # a walk-in paying by card and with cash, handing over more than the cash part (change)
    made["walk_in_card_and_cash_with_change"] = bill_checkout(
        actor=cashier_actor,
        lines=[LineInput(item_id=care.pk), LineInput(item_id=serum.pk)],
        tenders=[
            TenderInput(kind="card", amount=Money.parse("500.00"), external_ref="POS-778812"),
            TenderInput(kind="cash", amount=Money.parse("350.00"), received=Money.parse("400.00")),
        ],
        idempotency_key="walk-in",
    )

    # a member paying with points, stored value (principal and bonus) and WeChat; beautician and seller named
    top_up(shopper, "1000.00", bonus="500.00")
    gift_points(shopper, 20_000)
    split = bill_checkout(
        actor=cashier_actor,
        member=shopper,
        lines=[
            LineInput(item_id=care.pk, performed_by_id=beautician.pk, sold_by_id=receptionist.pk),
            LineInput(item_id=serum.pk, quantity=3),
            LineInput(item_id=lifting.pk, performed_by_id=beautician.pk),
        ],
        tenders=[
            TenderInput(kind="points", points=10_000),
            TenderInput(kind="stored_value", amount=Money.parse("1250.00")),
            TenderInput(kind="wechat", amount=Money.parse("1000.00"), external_ref="wx-1"),
        ],
        idempotency_key="split",
    )
    made["member_points_stored_value_wechat"] = split

    # a manual price below the cashier's floor, approved by the manager
    made["manual_price_approved"] = bill_checkout(
        actor=cashier_actor,
        member=shopper,
        lines=[
            LineInput(
                item_id=care.pk,
                unit_price=Money.parse("500.00"),
                approver_id=manager.pk,
                approval_pin=api_manager_pin,
            )
        ],
        tenders=[TenderInput(kind="alipay", amount=Money.parse("500.00"), external_ref="ali-9")],
        idempotency_key="manual",
    )

    # a coupon priced on the whole bill: a promotion step with its discount on the line
    second = make_member(store1, name="王女士", phone="13800000002")
    template = coupon_template_save(
        actor=hq_actor,
        data=CouponTemplateInput(name="50元代金券", kind="amount_off", amount_off_fen=5_000, valid_days=30),
    )
    coupon = coupon_issue(
        actor=cashier_actor, member=second, template=template, source="manual", idempotency_key="coupon"
    )
    made["coupon"] = bill_checkout(
        actor=cashier_actor,
        member=second,
        lines=[LineInput(item_id=care.pk), LineInput(item_id=serum.pk)],
        tenders=[TenderInput(kind="cash", amount=Money.parse("800.00"))],
        idempotency_key="with-coupon",
        coupon_ids=[coupon.pk],
    )

    # refunds: one line in part, then the rest of the split bill
    serum_line = split.lines.get(item=serum)
    bill_refund(actor=refunder, bill=split, lines=[(serum_line.pk, 1)], reason="退一件", idempotency_key="r-part")
    bill_refund(actor=refunder, bill=split, reason="整单退", idempotency_key="r-rest")
    made["refunded_in_two_parts"] = split

    # a cash bill of a member refunded in full into stored value
    to_wallet = bill_checkout(
        actor=cashier_actor,
        member=second,
        lines=[LineInput(item_id=lifting.pk)],
        tenders=[TenderInput(kind="cash", amount=Money.parse("1000.00"), received=Money.parse("1000.00"))],
        idempotency_key="to-wallet",
    )
    bill_refund(
        actor=refunder,
        bill=to_wallet,
        destination=RefundDestination.STORED_VALUE,
        reason="转储值",
        idempotency_key="r-wallet",
    )
    made["refunded_to_stored_value"] = to_wallet

    # a gift card paying part of a bill
    (card,) = gift_card_sell(
        actor=cashier_actor,
        face=Money.parse("500.00"),
        price=Money.parse("450.00"),
        tender="cash",
        expires_on=timezone.localdate() + timedelta(days=365),
        idempotency_key="sell-gift",
    )
    made["gift_card"] = bill_checkout(
        actor=cashier_actor,
        member=second,
        lines=[LineInput(item_id=care.pk)],
        tenders=[
            TenderInput(kind="gift_card", amount=Money.parse("500.00"), gift_card_code=card.code),
            TenderInput(kind="wechat", amount=Money.parse("100.00")),
        ],
        idempotency_key="gift-pay",
    )

    # a package bought on a bill, then one session paying for a facial
    product = package_product_save(
        actor=hq_actor,
        code="facial-10",
        name="面部护理10次卡",
        price=Money.parse("1980.00"),
        kind="count",
        items=[ProductItemInput(service_id=facial.pk, count=10, validity_value=12)],
    )
    made["package_bought"] = bill_checkout(
        actor=cashier_actor,
        member=second,
        lines=[LineInput(item_id=product.item_id)],
        tenders=[TenderInput(kind="wechat", amount=Money.parse("1980.00"))],
        idempotency_key="buy-card",
    )
    package_item = MemberPackageItem.objects.get(member_package__member=second)
    made["package_session"] = bill_checkout(
        actor=cashier_actor,
        member=second,
        lines=[LineInput(item_id=facial.pk, performed_by_id=beautician.pk)],
        tenders=[TenderInput(kind="package", package_item_id=package_item.pk, sessions=1)],
        idempotency_key="use-1",
    )

    # an open bill and a voided one
    still_open = bill_open(actor=cashier_actor, member=shopper)
    bill_add_line(actor=cashier_actor, bill=still_open, item=serum, quantity=2)
    made["open"] = still_open
    voided = bill_open(actor=cashier_actor)
    bill_add_line(actor=cashier_actor, bill=voided, item=care)
    made["voided"] = bill_void(actor=cashier_actor, bill=voided, reason="顾客离开")
    return made


# --- the same output --------------------------------------------------------------------------------------------


def test_every_bill_renders_as_the_declared_fields_do(bills: dict[str, Bill], cashier_actor: Actor) -> None:
    # given: the bills of every shape; when / then: rendered by hand, each is what DRF makes of the fields
    for name, bill in bills.items():
        _assert_same(cashier_actor, name, bill)

    # and the bills really have the parts the comparison is about
    shaped = {name: BillSerializer(_read(cashier_actor, bill)).data for name, bill in bills.items()}
    assert [t["kind"] for t in shaped["member_points_stored_value_wechat"]["tenders"]] == [
        "points",
        "stored_value",
        "wechat",
    ]
    refunds = shaped["refunded_in_two_parts"]["refunds"]
    assert [(r["is_full"], len(r["lines"]), len(r["tenders"])) for r in refunds] == [(False, 1, 3), (False, 3, 3)]
    assert shaped["refunded_to_stored_value"]["refunds"][0]["tenders"][0]["destination"] == "stored_value"
    assert shaped["manual_price_approved"]["lines"][0]["approved_by"]["id"] is not None
    cash = shaped["walk_in_card_and_cash_with_change"]["tenders"][1]
    assert (cash["received"], cash["change"]) == ("400.00", "50.00")
    assert any(step["discount"] is not None for step in shaped["coupon"]["lines"][0]["price_steps"])
    assert shaped["gift_card"]["tenders"][0]["gift_card_id"] is not None
    assert shaped["package_session"]["tenders"][0]["sessions"] == 1
    assert (shaped["open"]["completed_at"], shaped["open"]["tenders"]) == (None, [])
    assert shaped["voided"]["voided_at"] is not None and shaped["voided"]["void_reason"] == "顾客离开"
    assert shaped["walk_in_card_and_cash_with_change"]["member"] is None


def test_the_checkout_renders_the_bill_it_just_completed_as_before(
    bills: dict[str, Bill], cashier_actor: Actor
) -> None:
    # given: a bill straight from the one-shot checkout, its rows in memory
    bill = bills["member_points_stored_value_wechat"]
    fresh = bill_checkout(
        actor=cashier_actor,
        member=bill.member,
        lines=[LineInput(item_id=line.item_id, quantity=line.quantity) for line in bill.lines.all()],
        tenders=[TenderInput(kind="wechat", amount=Money(bill.payable_total_fen))],
        idempotency_key="again",
    )
    assert bill_rows_in_memory(fresh)

    # then
    assert _fast(BillSerializer, fresh) == _generic(BillSerializer, fresh)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_labels_follow_the_active_language(bills: dict[str, Bill], cashier_actor: Actor, language: str) -> None:
    with translation.override(language):
        for name, bill in bills.items():
            _assert_same(cashier_actor, name, bill)
        bill = _read(cashier_actor, bills["member_points_stored_value_wechat"])
        labels = [tender["label"] for tender in BillSerializer(bill).data["tenders"]]
        assert labels == [tender.get_kind_display() for tender in bill.tenders.all()]


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Shanghai"])
def test_datetimes_follow_the_active_time_zone(bills: dict[str, Bill], cashier_actor: Actor, zone: str) -> None:
    with timezone.override(zone):
        for name, bill in bills.items():
            _assert_same(cashier_actor, name, bill)


def test_datetimes_follow_the_configured_format(bills: dict[str, Bill], cashier_actor: Actor, settings: Any) -> None:
    # given: another DATETIME_FORMAT (DRF reloads its settings when they change)
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DATETIME_FORMAT": "%Y-%m-%d %H:%M"}

    # then
    bill = _read(cashier_actor, bills["refunded_in_two_parts"])
    assert len(BillSerializer(bill).data["completed_at"]) == len("2025-01-01 10:00")
    for name, bill in bills.items():
        _assert_same(cashier_actor, name, bill)


def test_money_is_formatted_as_money_field_formats_it() -> None:
    field = MoneyField()
    for fen in [0, 1, 9, 10, 99, 100, 101, 12_345, 123_456_789, -1, -99, -100, -12_345, 10**15]:
        assert _money(fen) == field.to_representation(fen)
        assert _money(Money(fen)) == field.to_representation(Money(fen))
    assert _money(True) == field.to_representation(True)
    assert _money(None) is None


def test_unusual_rows_render_as_the_declared_fields_do(bills: dict[str, Bill], cashier_actor: Actor) -> None:
    # given: rows with nulls, a step without a discount and one with, earning steps with a null and int keys,
    # a tender kind outside the choices
    bill = _read(cashier_actor, bills["coupon"])
    line = BillLine(
        id=None,
        item_id=7,
        kind="unknown",
        name="x",
        quantity=2,
        list_price_fen=-5,
        unit_price_fen=0,
        discount_fen=101,
        line_total_fen=12,
        price_steps=[
            {"step": "list_price", "unit_price_fen": 100, "reason": "r"},
            {"step": "coupon", "unit_price_fen": 90, "discount_fen": 10, "reason": "c", "extra": 1},
            {"step": "promotion", "unit_price_fen": 90, "discount_fen": None, "reason": "p"},
        ],
        earning_category="retail",
        commission_category="",
        earning_fen=3,
        points_earned=0,
        earning_steps=[{"step": "base_rate", 1: "one", "none": None}, None, {}],
        refunded_quantity=0,
    )
    tender = Tender(id=3, kind="barter", amount_fen=100, received_fen=None, external_ref="")
    cash = Tender(id=4, kind="cash", amount_fen=100, received_fen=200, change_fen=100)

    # then: the same JSON, and the same Python values (an int key becomes a string in both)
    assert _json(_bill_line(line)) == _generic(BillLineSerializer, line)
    generic = serializers.Serializer.to_representation(BillLineSerializer(line), line)
    assert _bill_line(line) == generic
    assert list(_bill_line(line)["earning_steps"][0]) == ["step", "1", "none"]
    line.price_steps = None  # type: ignore[assignment]
    line.earning_steps = None  # type: ignore[assignment]
    assert _json(_bill_line(line)) == _generic(BillLineSerializer, line)
    for row in (tender, cash):
        assert _json(_tender(row)) == _generic(TenderSerializer, row)
    for name in ("refunded_in_two_parts", "refunded_to_stored_value"):
        for refund in _read(cashier_actor, bills[name]).refunds.all():
            assert _json(refund_representation(refund)) == _generic(RefundSerializer, refund)
    assert _fast(BillSerializer, bill) == _generic(BillSerializer, bill)


# --- no extra query ---------------------------------------------------------------------------------------------


def test_rendering_a_prefetched_bill_queries_no_more_than_the_generic_rendering(
    bills: dict[str, Bill], cashier_actor: Actor
) -> None:
    for name, bill in bills.items():
        # given: the bill read twice with the views' prefetch (related objects are cached once read)
        for_generic, for_fast = _read(cashier_actor, bill), _read(cashier_actor, bill)

        # when
        with CaptureQueriesContext(connection) as generic:
            serializers.Serializer.to_representation(BillSerializer(for_generic), for_generic)
        with CaptureQueriesContext(connection) as fast:
            BillSerializer(for_fast).data  # noqa: B018

        # then
        assert len(fast.captured_queries) == len(generic.captured_queries) == 0, name


def test_rendering_a_bill_without_prefetch_makes_the_same_queries(bills: dict[str, Bill], cashier_actor: Actor) -> None:
    # given: a bill read without prefetch (every related row is a query, the same for both renderings)
    bill = bills["refunded_in_two_parts"]

    # when
    with CaptureQueriesContext(connection) as generic:
        plain = Bill.objects.get(pk=bill.pk)
        serializers.Serializer.to_representation(BillSerializer(plain), plain)
    with CaptureQueriesContext(connection) as fast:
        plain = Bill.objects.get(pk=bill.pk)
        BillSerializer(plain).data  # noqa: B018

    # then
    assert [q["sql"] for q in fast.captured_queries] != []
    assert sorted(q["sql"] for q in fast.captured_queries) == sorted(q["sql"] for q in generic.captured_queries)


# --- through the API ----------------------------------------------------------------------------------------------


def test_the_bill_endpoints_answer_the_generic_rendering(
    bills: dict[str, Bill], cashier_actor: Actor, manager_api: APIClient
) -> None:
    for name, bill in bills.items():
        response = manager_api.get(f"/api/v1/bills/{bill.pk}/")
        assert response.status_code == 200, name
        assert response.json() == json.loads(_generic(BillSerializer, _read(cashier_actor, bill))), name

    listed = manager_api.get("/api/v1/bills/").json()["results"]
    assert len(listed) == len({bill.pk for bill in bills.values()})
    for row in listed:
        fresh = _read(cashier_actor, Bill.objects.get(pk=row["id"]))
        assert row == json.loads(_generic(BillSummarySerializer, fresh))


def test_a_refund_inside_the_bill_is_the_refund_endpoint_s_rendering(
    bills: dict[str, Bill], cashier_actor: Actor
) -> None:
    bill = _read(cashier_actor, bills["refunded_in_two_parts"])
    for refund in bill.refunds.all():
        alone = Refund.objects.get(pk=refund.pk)
        assert _json(refund_representation(refund)) == _fast(RefundSerializer, alone)
