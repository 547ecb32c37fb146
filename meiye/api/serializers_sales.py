"""Bills (消费单), refunds, receipts and the daily close. Amounts are strings in yuan ("1234.50").

Input serializers check types only and turn the request into the services' inputs (``LineInput``,
``TenderInput``); every business rule — prices, approvals, tender sums, refund limits — is the service's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from django.core.exceptions import ObjectDoesNotExist
from django.utils.encoding import force_str
from django.utils.hashable import make_hashable
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from meiye.api.fields import AmountField, MoneyField, NamedEnumChoiceField, enum_field, parse_optional_amount
from meiye.api.serializers import StoreRefSerializer
from meiye.catalog.models import EarningCategory, ItemKind
from meiye.core.money import Money
from meiye.sales.models import (
    Bill,
    BillLine,
    BillStatus,
    Refund,
    RefundDestination,
    RefundLine,
    RefundTender,
    Tender,
    TenderKind,
)
from meiye.sales.services import LineInput, TenderInput

# --- references ------------------------------------------------------------------------------------------------


class StaffRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField(source="__str__")


class BillMemberSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    member_no = serializers.CharField()
    name = serializers.CharField()


# --- bill: output ------------------------------------------------------------------------------------------------


class PriceStepSerializer(serializers.Serializer):
    """One step of the line's pricing, in order: list price, store price, member price, promotions, manual."""

    step = serializers.CharField(
        help_text="list_price, store_price, member_price, manual_adjustment, offer_choice, promotion, coupon …"
    )
    unit_price = MoneyField(source="unit_price_fen", help_text="The unit price after this step.")
    unit_price_fen = serializers.IntegerField()
    discount = MoneyField(
        source="discount_fen",
        allow_null=True,
        help_text="promotion and coupon steps: what the offer took off the line (null for a price step).",
    )
    reason = serializers.CharField(help_text="Why, as printed on the receipt (Chinese and English).")


class BillLineSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ItemKind.choices)
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    list_price = MoneyField(source="list_price_fen", help_text="The store's list price of one unit.")
    unit_price = MoneyField(source="unit_price_fen", help_text="The final price of one unit.")
    discount = MoneyField(
        source="discount_fen", help_text="The line's share of promotions and coupons priced on the whole bill."
    )
    line_total = MoneyField(source="line_total_fen", help_text="unit_price × quantity − discount.")
    price_steps = PriceStepSerializer(many=True, help_text="How the price was reached, each step with its reason.")
    earning_category = serializers.ChoiceField(choices=EarningCategory.choices)
    commission_category = serializers.CharField()
    performed_by_id = serializers.IntegerField(allow_null=True)
    sold_by_id = serializers.IntegerField(allow_null=True)
    approved_by = StaffRefSerializer(allow_null=True, help_text="Who approved a manual price below the floor.")
    earning = MoneyField(source="earning_fen", help_text="Real money allocated to this line (earns points).")
    points_earned = serializers.IntegerField()
    earning_steps = serializers.ListField(child=serializers.DictField(), help_text="How the points were computed.")
    refunded_quantity = serializers.IntegerField()


class TenderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = enum_field(TenderKind)
    label = serializers.CharField(source="get_kind_display")  # type: ignore[assignment]  # a field, not Field.label
    amount = MoneyField(source="amount_fen", help_text="The part of the payable this tender covers.")
    received = MoneyField(source="received_fen", allow_null=True, help_text="Cash handed over.")
    change = MoneyField(source="change_fen")
    external_ref = serializers.CharField()
    principal = MoneyField(source="principal_fen", help_text="Stored value: taken from principal.")
    bonus = MoneyField(source="bonus_fen", help_text="Stored value: taken from bonus.")
    points_used = serializers.IntegerField()
    package_item_id = serializers.IntegerField(allow_null=True, help_text="Package: the member's package item.")
    sessions = serializers.IntegerField(help_text="Package: the sessions used.")
    gift_card_id = serializers.IntegerField(allow_null=True, help_text="Gift card: the card (its code is never shown).")


class RefundLineSerializer(serializers.Serializer):
    line_id = serializers.IntegerField()
    quantity = serializers.IntegerField()
    amount = MoneyField(source="amount_fen")
    earning = MoneyField(source="earning_fen")
    points_taken_back = serializers.IntegerField()


class RefundTenderSerializer(serializers.Serializer):
    tender_id = serializers.IntegerField()
    kind = serializers.CharField(source="tender.kind")
    amount = MoneyField(source="amount_fen")
    principal = MoneyField(source="principal_fen")
    bonus = MoneyField(source="bonus_fen")
    points = serializers.IntegerField(help_text="Offset points given back.")
    destination = serializers.ChoiceField(choices=RefundDestination.choices)


class RefundSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    bill_id = serializers.IntegerField()
    bill_number = serializers.CharField(source="bill.number")
    destination = serializers.ChoiceField(choices=RefundDestination.choices)
    reason = serializers.CharField()
    is_full = serializers.BooleanField(help_text="The whole bill in one refund.")
    amount = MoneyField(source="amount_fen")
    earning = MoneyField(source="earning_fen", help_text="Growth value taken back.")
    points_restored = serializers.IntegerField(help_text="Offset points given back.")
    points_taken_back = serializers.IntegerField(help_text="Earned points taken back.")
    created_by = StaffRefSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    lines = RefundLineSerializer(many=True, source="lines.all")
    tenders = RefundTenderSerializer(many=True, source="tenders.all")


class BillSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField(help_text="Store code and sequence, e.g. S1-000001.")
    status = enum_field(BillStatus)
    store_id = serializers.IntegerField()
    member = BillMemberSerializer(allow_null=True, help_text="Null for a walk-in customer.")
    created_by = StaffRefSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    list_total = MoneyField(source="list_total_fen")
    discount_total = MoneyField(source="discount_total_fen")
    payable_total = MoneyField(source="payable_total_fen")
    payable_total_fen = serializers.IntegerField()
    points_earned = serializers.IntegerField()

    def to_representation(self, instance: Bill) -> dict[str, Any]:
        # Built by hand, as the declared fields (the schema) would render it: see bill_summary_representation.
        return bill_summary_representation(instance)


class BillSerializer(BillSummarySerializer):
    """A bill with its lines (and their price steps), tenders and refunds."""

    store = StoreRefSerializer()
    voided_at = serializers.DateTimeField(allow_null=True)
    void_reason = serializers.CharField()
    earning_total = MoneyField(source="earning_total_fen", help_text="Money that earned points and growth.")
    lines = BillLineSerializer(many=True, source="lines.all")
    tenders = TenderSerializer(many=True, source="tenders.all")
    refunds = RefundSerializer(many=True, source="refunds.all")

    def to_representation(self, instance: Bill) -> dict[str, Any]:
        # Built by hand, as the declared fields (the schema) would render it: see bill_representation.
        return bill_representation(instance)


# --- bill: output, built by hand ------------------------------------------------------------------------------
#
# The checkout answers with the whole bill, and DRF's generic rendering of it (a deep copy of every declared
# field, nested list serializers, ``get_attribute`` per field) cost a tenth of the request. These functions
# build the same dict directly: the same keys in the same order, each value formatted as its declared field
# formats it (``None`` stays null for every field, as ``Serializer.to_representation`` does), and the related
# rows read through the same accessors (``bill.lines.all()`` …) so the queries are the same. The declared
# fields above stay: the schema is built from them, and tests/api/test_bill_representation.py checks that
# these functions give byte for byte what the generic rendering of those fields gives.

_DATETIME = serializers.DateTimeField()  # the active time zone and DATETIME_FORMAT, read at each call
_BOOLEAN = serializers.BooleanField()
_BILL_STATUS = enum_field(BillStatus)
_ITEM_KIND = serializers.ChoiceField(choices=ItemKind.choices)
_EARNING_CATEGORY = serializers.ChoiceField(choices=EarningCategory.choices)
_TENDER_KIND = enum_field(TenderKind)
_REFUND_DESTINATION = serializers.ChoiceField(choices=RefundDestination.choices)


def _int(value: Any) -> int | None:
    """``IntegerField``."""
    return None if value is None else int(value)


def _str(value: Any) -> str | None:
    """``CharField``."""
    return None if value is None else str(value)


def _money(value: Money | int | None) -> str | None:
    """``MoneyField``: ``Money(int(value)).as_decimal_string()`` without building the ``Money``."""
    if value is None:
        return None
    fen = value.fen if isinstance(value, Money) else int(value)
    yuan, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{yuan}.{cents:02d}"


def _datetime(value: Any) -> str | None:
    """``DateTimeField``."""
    return None if value is None else _DATETIME.to_representation(value)


def _choice(field: serializers.ChoiceField, value: Any) -> Any:
    """``ChoiceField`` (and ``enum_field``)."""
    return None if value is None else field.to_representation(value)


@functools.cache
def _tender_kind_labels() -> dict[Any, Any]:
    """The (lazy) labels of ``Tender.kind`` by value, as ``Model._get_FIELD_display`` builds them."""
    return dict(make_hashable(Tender._meta.get_field("kind").flatchoices))


def _kind_display(tender: Tender) -> Any:
    """``tender.get_kind_display()`` in the active language, without rebuilding (and translating, to hash
    them) all the labels on every call as Django's ``_get_FIELD_display`` does."""
    value = tender.kind
    return force_str(_tender_kind_labels().get(make_hashable(value), value), strings_only=True)


def _related(instance: Any, name: str) -> Any:
    """A related object as DRF's ``get_attribute`` reads it: a missing row is ``None``."""
    try:
        return getattr(instance, name)
    except ObjectDoesNotExist:
        return None


def _staff_ref(staff: Any) -> dict[str, Any] | None:
    """``StaffRefSerializer`` (``allow_null``)."""
    if staff is None:
        return None
    return {"id": _int(staff.id), "display_name": _str(staff.__str__())}


def _price_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """``PriceStepSerializer`` over one step (a dict of ``BillLine.price_steps``)."""
    return {
        "step": _str(step["step"]),
        "unit_price": _money(step["unit_price_fen"]),
        "unit_price_fen": _int(step["unit_price_fen"]),
        "discount": _money(step.get("discount_fen")),  # absent from price steps: null (allow_null)
        "reason": _str(step["reason"]),
    }


def _bill_line(line: BillLine) -> dict[str, Any]:
    """``BillLineSerializer``."""
    steps = line.price_steps
    earning_steps = line.earning_steps
    return {
        "id": _int(line.id),
        "item_id": _int(line.item_id),
        "kind": _choice(_ITEM_KIND, line.kind),
        "name": _str(line.name),
        "quantity": _int(line.quantity),
        "list_price": _money(line.list_price_fen),
        "unit_price": _money(line.unit_price_fen),
        "discount": _money(line.discount_fen),
        "line_total": _money(line.line_total_fen),
        "price_steps": None if steps is None else [_price_step(step) for step in steps],
        "earning_category": _choice(_EARNING_CATEGORY, line.earning_category),
        "commission_category": _str(line.commission_category),
        "performed_by_id": _int(line.performed_by_id),
        "sold_by_id": _int(line.sold_by_id),
        "approved_by": _staff_ref(_related(line, "approved_by")),
        "earning": _money(line.earning_fen),
        "points_earned": _int(line.points_earned),
        # ListField(child=DictField()): each step a new dict with string keys, a null step stays null
        "earning_steps": None
        if earning_steps is None
        else [None if step is None else {str(key): value for key, value in step.items()} for step in earning_steps],
        "refunded_quantity": _int(line.refunded_quantity),
    }


def _tender(tender: Tender) -> dict[str, Any]:
    """``TenderSerializer``."""
    return {
        "id": _int(tender.id),
        "kind": _choice(_TENDER_KIND, tender.kind),
        "label": _str(_kind_display(tender)),
        "amount": _money(tender.amount_fen),
        "received": _money(tender.received_fen),
        "change": _money(tender.change_fen),
        "external_ref": _str(tender.external_ref),
        "principal": _money(tender.principal_fen),
        "bonus": _money(tender.bonus_fen),
        "points_used": _int(tender.points_used),
        "package_item_id": _int(tender.package_item_id),
        "sessions": _int(tender.sessions),
        "gift_card_id": _int(tender.gift_card_id),
    }


def _refund_line(line: RefundLine) -> dict[str, Any]:
    """``RefundLineSerializer``."""
    return {
        "line_id": _int(line.line_id),
        "quantity": _int(line.quantity),
        "amount": _money(line.amount_fen),
        "earning": _money(line.earning_fen),
        "points_taken_back": _int(line.points_taken_back),
    }


def _refund_tender(part: RefundTender) -> dict[str, Any]:
    """``RefundTenderSerializer``."""
    tender = _related(part, "tender")
    return {
        "tender_id": _int(part.tender_id),
        "kind": None if tender is None else _str(tender.kind),
        "amount": _money(part.amount_fen),
        "principal": _money(part.principal_fen),
        "bonus": _money(part.bonus_fen),
        "points": _int(part.points),
        "destination": _choice(_REFUND_DESTINATION, part.destination),
    }


def refund_representation(refund: Refund) -> dict[str, Any]:
    """What ``RefundSerializer``'s declared fields render for ``refund`` (inside a bill)."""
    bill = _related(refund, "bill")
    return {
        "id": _int(refund.id),
        "bill_id": _int(refund.bill_id),
        "bill_number": None if bill is None else _str(bill.number),
        "destination": _choice(_REFUND_DESTINATION, refund.destination),
        "reason": _str(refund.reason),
        "is_full": None if refund.is_full is None else _BOOLEAN.to_representation(refund.is_full),
        "amount": _money(refund.amount_fen),
        "earning": _money(refund.earning_fen),
        "points_restored": _int(refund.points_restored),
        "points_taken_back": _int(refund.points_taken_back),
        "created_by": _staff_ref(_related(refund, "created_by")),
        "created_at": _datetime(refund.created_at),
        "lines": [_refund_line(line) for line in refund.lines.all()],
        "tenders": [_refund_tender(part) for part in refund.tenders.all()],
    }


def bill_summary_representation(bill: Bill) -> dict[str, Any]:
    """What ``BillSummarySerializer``'s declared fields render for ``bill``."""
    member = _related(bill, "member")
    return {
        "id": _int(bill.id),
        "number": _str(bill.number),
        "status": _choice(_BILL_STATUS, bill.status),
        "store_id": _int(bill.store_id),
        "member": None
        if member is None
        else {"id": _int(member.id), "member_no": _str(member.member_no), "name": _str(member.name)},
        "created_by": _staff_ref(_related(bill, "created_by")),
        "created_at": _datetime(bill.created_at),
        "completed_at": _datetime(bill.completed_at),
        "list_total": _money(bill.list_total_fen),
        "discount_total": _money(bill.discount_total_fen),
        "payable_total": _money(bill.payable_total_fen),
        "payable_total_fen": _int(bill.payable_total_fen),
        "points_earned": _int(bill.points_earned),
    }


def bill_representation(bill: Bill) -> dict[str, Any]:
    """What ``BillSerializer``'s declared fields render for ``bill``, with its lines, tenders and refunds."""
    data = bill_summary_representation(bill)
    store = _related(bill, "store")
    data["store"] = (
        None if store is None else {"id": _int(store.id), "code": _str(store.code), "name": _str(store.name)}
    )
    data["voided_at"] = _datetime(bill.voided_at)
    data["void_reason"] = _str(bill.void_reason)
    data["earning_total"] = _money(bill.earning_total_fen)
    data["lines"] = [_bill_line(line) for line in bill.lines.all()]
    data["tenders"] = [_tender(tender) for tender in bill.tenders.all()]
    data["refunds"] = [refund_representation(refund) for refund in bill.refunds.all()]
    return data


# --- bill: input -------------------------------------------------------------------------------------------------


class TenderInputSerializer(serializers.Serializer):
    kind = enum_field(TenderKind)
    amount = AmountField(required=False, allow_null=True, help_text="Money tenders: the amount. Points: optional.")
    points = serializers.IntegerField(
        required=False, allow_null=True, help_text="Points offset only: how many points (100 points = 1.00)."
    )
    external_ref = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Card slip / WeChat / Alipay reference."
    )
    received = AmountField(required=False, allow_null=True, help_text="Cash only: the cash handed over.")
    payment_password = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        max_length=32,
        help_text="Stored value (S-17): the member's 6-digit payment password. Never stored or logged, and not part "
        "of the idempotency fingerprint.",
    )
    payment_code = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        max_length=32,
        help_text="Stored value: a one-time code sent to the member's phone, instead of the password.",
    )
    card_number = serializers.CharField(
        required=False, allow_blank=True, max_length=40, help_text="Stored value: the card presented, if any."
    )
    package_item_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="Package: the member's package item whose sessions pay."
    )
    sessions = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Package: how many sessions; they cover that many units of the item's service on the bill.",
    )
    gift_card_code = serializers.CharField(
        required=False, allow_blank=True, write_only=True, max_length=40, help_text="Gift card: the card's code."
    )


class LineInputSerializer(serializers.Serializer):
    item_id = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(required=False, default=1)
    performed_by_id = serializers.IntegerField(required=False, allow_null=True, help_text="The beautician.")
    sold_by_id = serializers.IntegerField(required=False, allow_null=True, help_text="The consultant who sold it.")
    unit_price = AmountField(
        required=False,
        allow_null=True,
        help_text="A manual unit price (S-20): alone down to 95% of the member price, below that with approval.",
    )
    approver_id = serializers.IntegerField(required=False, allow_null=True, help_text="The approving manager.")
    approval_pin = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="The approver's PIN. Never stored, and not part of the idempotency fingerprint.",
    )


def _tenders(raw: list[Mapping[str, Any]]) -> list[TenderInput]:
    return [
        TenderInput(
            kind=tender["kind"],
            amount=parse_optional_amount(tender, "amount", field=f"tenders[{index}].amount"),
            points=tender.get("points"),
            external_ref=tender.get("external_ref", ""),
            received=parse_optional_amount(tender, "received", field=f"tenders[{index}].received"),
            payment_password=tender.get("payment_password", ""),
            payment_code=tender.get("payment_code", ""),
            card_number=tender.get("card_number", ""),
            package_item_id=tender.get("package_item_id"),
            sessions=tender.get("sessions"),
            gift_card_code=tender.get("gift_card_code", ""),
        )
        for index, tender in enumerate(raw)
    ]


def line_input(line: Mapping[str, Any], *, where: str, approval_pin: str = "") -> LineInput:
    return LineInput(
        item_id=line["item_id"],
        quantity=line.get("quantity", 1),
        performed_by_id=line.get("performed_by_id"),
        sold_by_id=line.get("sold_by_id"),
        unit_price=parse_optional_amount(line, "unit_price", field=f"{where}unit_price"),
        approver_id=line.get("approver_id"),
        approval_pin=approval_pin or line.get("approval_pin", ""),
    )


class BillOpenSerializer(serializers.Serializer):
    member_id = serializers.IntegerField(required=False, allow_null=True, help_text="Null or absent: walk-in.")


class AddLineSerializer(LineInputSerializer):
    """One item added to an open bill."""


class LineUpdateSerializer(serializers.Serializer):
    """A change to a line of an open bill. A field left out keeps its value; ``null`` takes the performer,
    the seller or the manual price off."""

    quantity = serializers.IntegerField(required=False)
    performed_by_id = serializers.IntegerField(required=False, allow_null=True, help_text="The beautician.")
    sold_by_id = serializers.IntegerField(required=False, allow_null=True, help_text="The consultant who sold it.")
    unit_price = AmountField(
        required=False,
        allow_null=True,
        help_text="A manual unit price (S-20); null: back to the pipeline's price. A price already approved "
        "stays approved unless it is set lower.",
    )
    approver_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="The approving manager, for a price below the floor."
    )
    approval_pin = serializers.CharField(
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="The approver's PIN. Never stored, and not part of the idempotency fingerprint.",
    )


def _coupon_ids_field() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=20,
        help_text="The member's active coupons to use on this bill, applied in this order after the promotions "
        "(S-05). The tenders must add up to the payable after them.",
    )


class CheckoutSerializer(serializers.Serializer):
    """Payment of an open bill: the tenders must add up to its payable amount (after promotions and coupons)."""

    tenders = TenderInputSerializer(many=True)
    coupon_ids = _coupon_ids_field()

    def to_tenders(self) -> list[TenderInput]:
        return _tenders(self.validated_data["tenders"])


class OneShotCheckoutSerializer(serializers.Serializer):
    """Open, price and pay a bill in one call."""

    member_id = serializers.IntegerField(required=False, allow_null=True, help_text="Null or absent: walk-in.")
    lines = LineInputSerializer(many=True)
    tenders = TenderInputSerializer(many=True)
    coupon_ids = _coupon_ids_field()

    def to_lines(self, approval_pins: Mapping[int, str]) -> list[LineInput]:
        return _lines(self.validated_data["lines"], approval_pins)

    def to_tenders(self) -> list[TenderInput]:
        return _tenders(self.validated_data["tenders"])


def _lines(raw: list[Mapping[str, Any]], approval_pins: Mapping[int, str]) -> list[LineInput]:
    return [
        line_input(line, where=f"lines[{index}].", approval_pin=approval_pins.get(index, ""))
        for index, line in enumerate(raw)
    ]


# --- one-shot checkout: the fast path of its validation ----------------------------------------------------------
#
# DRF deep-copies every declared field of ``OneShotCheckoutSerializer`` and of each nested line and tender
# serializer on every request: a tenth of the checkout's time. ``fast_one_shot_checkout`` gives the same
# ``validated_data`` for a body that is plainly valid — JSON objects and lists, ints that are ints (not bools,
# not strings, within a BIGINT), strings that are strings with nothing for DRF to strip or refuse, amounts as
# strings or ints (``AmountField`` passes them on as they are; ``money_from_api`` judges them later on both
# paths) — and declines (``None``) everything else, which then goes through the serializer exactly as before,
# so every 400 stays byte for byte the same. The rules are read from the serializers' declared fields (not
# copied by hand), so a field added or changed there is followed, or, if it is of a kind not known here, turns
# the fast path off (``_ONE_SHOT_RULE`` is ``None``) rather than letting it drift from DRF.
# tests/api/test_checkout_fast_input.py checks both paths against each other with hypothesis.

_DECLINE: Any = object()  # a rule's answer for a value the fast path leaves to DRF
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # ints beyond a BIGINT are left to DRF (it takes up to 4,300 digits)
_SURROGATE = re.compile("[\ud800-\udfff]")  # refused by CharField (ProhibitSurrogateCharactersValidator)

Rule = Callable[[Any], Any]  # the value DRF's field validates ``value`` to, or ``_DECLINE``


def _int_rule(field: serializers.IntegerField) -> Rule | None:
    """``IntegerField``: an int (not a bool) within its bounds; ``None`` where it allows null."""
    low, high, allow_null = field.min_value, field.max_value, field.allow_null
    if not all(bound is None or type(bound) is int for bound in (low, high)):
        return None
    if len(field.validators) != (low is not None) + (high is not None):
        return None  # validators of its own: not known here
    low = _INT_MIN if low is None else max(low, _INT_MIN)
    high = _INT_MAX if high is None else min(high, _INT_MAX)

    def rule(value: Any) -> Any:
        if type(value) is int and low <= value <= high:
            return value
        return None if value is None and allow_null else _DECLINE

    return rule


def _char_rule(field: serializers.CharField) -> Rule | None:
    """``CharField``: a str with no whitespace to trim, no NUL, no lone surrogate, within ``max_length``;
    ``""`` only where it allows blank."""
    max_length, allow_blank, allow_null = field.max_length, field.allow_blank, field.allow_null
    trim = field.trim_whitespace
    if field.min_length is not None or len(field.validators) != 2 + (max_length is not None):
        return None  # beside max_length, only the NUL and surrogate validators every CharField has

    def rule(value: Any) -> Any:
        if type(value) is str:
            if (
                (value or allow_blank)
                and (max_length is None or len(value) <= max_length)
                and (not trim or value == value.strip())
                and "\x00" not in value
                and (value.isascii() or not _SURROGATE.search(value))
            ):
                return value
            return _DECLINE
        return None if value is None and allow_null else _DECLINE

    return rule


def _amount_rule(field: AmountField) -> Rule | None:
    """``AmountField``: the raw value, kept as it is; here only a str or an int (not a bool)."""
    allow_null = field.allow_null
    if field.validators:
        return None

    def rule(value: Any) -> Any:
        if type(value) is str or type(value) is int:
            return value
        return None if value is None and allow_null else _DECLINE

    return rule


def _choice_rule(field: serializers.ChoiceField) -> Rule | None:
    """``ChoiceField`` (``enum_field``): a str that is one of the choices, as DRF maps it."""
    choices, allow_null = field.choice_strings_to_values, field.allow_null
    if field.validators:
        return None

    def rule(value: Any) -> Any:
        if type(value) is str and value in choices:
            return choices[value]
        return None if value is None and allow_null else _DECLINE

    return rule


def _list_rule(field: serializers.ListField) -> Rule | None:
    """``ListField``: a list within its length bounds of items its child accepts."""
    child = _field_rule(field.child) if field.child is not None else None
    min_length, max_length = field.min_length or 0, field.max_length
    if child is None or len(field.validators) != (field.min_length is not None) + (max_length is not None):
        return None
    if not field.allow_empty:
        min_length = max(min_length, 1)
    allow_null = field.allow_null

    def rule(value: Any) -> Any:
        if type(value) is list and min_length <= len(value) and (max_length is None or len(value) <= max_length):
            items = [child(item) for item in value]
            return _DECLINE if _DECLINE in items else items
        return None if value is None and allow_null else _DECLINE

    return rule


def _many_rule(field: serializers.ListSerializer) -> Rule | None:
    """``Serializer(many=True)``: a non-empty list of objects its child accepts. An empty list (valid for DRF,
    then the service's to judge) is left to the serializer: no bill worth a fast path has one."""
    child = _serializer_rule(field.child) if isinstance(field.child, serializers.BaseSerializer) else None
    bounded = getattr(field, "min_length", None) is not None or getattr(field, "max_length", None) is not None
    if child is None or bounded or field.validators:
        return None
    allow_null = field.allow_null

    def rule(value: Any) -> Any:
        if type(value) is list and value:
            items = [child(item) for item in value]
            return _DECLINE if _DECLINE in items else items
        return None if value is None and allow_null else _DECLINE

    return rule


def _serializer_rule(serializer: serializers.BaseSerializer) -> Rule | None:
    """A plain ``Serializer``: a dict, each declared field validated by its rule, absent fields left out or
    given their default as DRF does, unknown keys ignored (as DRF ignores them)."""
    if not isinstance(serializer, serializers.Serializer):
        return None
    kind = type(serializer)
    if (
        serializer.validators
        or kind.validate is not serializers.Serializer.validate
        or kind.to_internal_value is not serializers.Serializer.to_internal_value
        or kind.run_validation is not serializers.Serializer.run_validation
    ):
        return None  # validation of its own: not known here
    fields: list[tuple[str, Rule, bool, Any]] = []
    for name, field in serializer._declared_fields.items():
        rule = _field_rule(field)
        default = field.default
        if (
            rule is None
            or field.read_only
            or field.source not in (None, name)
            or hasattr(kind, f"validate_{name}")
            or getattr(default, "requires_context", False)
        ):
            return None
        fields.append((name, rule, field.required, default))
    allow_null = serializer.allow_null

    def object_rule(value: Any) -> Any:
        if type(value) is not dict:
            return None if value is None and allow_null else _DECLINE
        validated: dict[str, Any] = {}
        for name, rule, required, default in fields:
            if name in value:
                item = rule(value[name])
                if item is _DECLINE:
                    return _DECLINE
                validated[name] = item
            elif required:
                return _DECLINE
            elif default is not empty:
                validated[name] = default() if callable(default) else default
        return validated

    return object_rule


def _field_rule(field: serializers.Field) -> Rule | None:
    """The rule of a declared field, or ``None`` for a kind of field the fast path does not know."""
    kind = type(field)
    if kind is serializers.IntegerField:
        return _int_rule(cast(serializers.IntegerField, field))
    if kind is serializers.CharField:
        return _char_rule(cast(serializers.CharField, field))
    if kind is AmountField:
        return _amount_rule(cast(AmountField, field))
    if kind in (serializers.ChoiceField, NamedEnumChoiceField):
        return _choice_rule(cast(serializers.ChoiceField, field))
    if kind is serializers.ListField:
        return _list_rule(cast(serializers.ListField, field))
    if kind is serializers.ListSerializer:
        return _many_rule(cast(serializers.ListSerializer, field))
    return _serializer_rule(field) if isinstance(field, serializers.BaseSerializer) else None


_ONE_SHOT_RULE = _serializer_rule(OneShotCheckoutSerializer())


@dataclass(frozen=True)
class OneShotCheckoutData:
    """A validated one-shot checkout request, used as ``OneShotCheckoutSerializer`` after ``is_valid``."""

    validated_data: dict[str, Any]

    def to_lines(self, approval_pins: Mapping[int, str]) -> list[LineInput]:
        return _lines(self.validated_data["lines"], approval_pins)

    def to_tenders(self) -> list[TenderInput]:
        return _tenders(self.validated_data["tenders"])


def fast_one_shot_checkout(data: Any) -> OneShotCheckoutData | None:
    """``OneShotCheckoutSerializer(data=data).validated_data`` for a plainly valid body, else ``None``."""
    if _ONE_SHOT_RULE is None:
        return None
    validated = _ONE_SHOT_RULE(data)
    return None if validated is _DECLINE or validated is None else OneShotCheckoutData(validated)


def one_shot_checkout_input(data: Any) -> OneShotCheckoutData:
    """The validated one-shot checkout request: the fast path, else the serializer (400 as always)."""
    fast = fast_one_shot_checkout(data)
    if fast is not None:
        return fast
    form = OneShotCheckoutSerializer(data=data)
    form.is_valid(raise_exception=True)
    return OneShotCheckoutData(form.validated_data)


class VoidSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class RefundLineInputSerializer(serializers.Serializer):
    line_id = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(help_text="How many units of the line to refund.")


class RefundRequestSerializer(serializers.Serializer):
    lines = RefundLineInputSerializer(
        many=True, required=False, allow_null=True, help_text="Absent or null: refund everything not yet refunded."
    )
    destination = serializers.ChoiceField(
        choices=RefundDestination.choices,
        default=RefundDestination.ORIGINAL,
        help_text="original: back to the tenders; stored_value: cash/card/WeChat/Alipay into the member's principal.",
    )
    reason = serializers.CharField(max_length=200)

    def to_lines(self) -> list[tuple[int, int]] | None:
        lines = self.validated_data.get("lines")
        if lines is None:
            return None
        return [(line["line_id"], line["quantity"]) for line in lines]


# --- receipt ------------------------------------------------------------------------------------------------------


class ReceiptDiscountSerializer(serializers.Serializer):
    step = serializers.CharField()
    reason = serializers.CharField()
    unit_price = MoneyField()
    amount = MoneyField(allow_null=True, help_text="promotion and coupon steps: what the offer took off the line.")


class ReceiptLineSerializer(serializers.Serializer):
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    list_price = MoneyField()
    unit_price = MoneyField()
    discount = MoneyField(help_text="The line's share of promotions and coupons.")
    line_total = MoneyField()
    discounts = ReceiptDiscountSerializer(many=True, help_text="Every price step after the list price, with reason.")
    performed_by = serializers.CharField()
    approved_by = serializers.CharField()
    points_earned = serializers.IntegerField()
    refunded_quantity = serializers.IntegerField()


class ReceiptTenderSerializer(serializers.Serializer):
    kind = enum_field(TenderKind)
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    amount = MoneyField()
    received = MoneyField(allow_null=True)
    change = MoneyField()
    external_ref = serializers.CharField()
    principal = MoneyField()
    bonus = MoneyField()
    points_used = serializers.IntegerField()


class ReceiptSerializer(serializers.Serializer):
    """What the printed receipt (小票) shows."""

    bill_id = serializers.IntegerField()
    number = serializers.CharField()
    status = enum_field(BillStatus)
    store_name = serializers.CharField()
    cashier = serializers.CharField()
    completed_at = serializers.DateTimeField(allow_null=True)
    member_no = serializers.CharField()
    member_name = serializers.CharField()
    tier_name = serializers.CharField()
    lines = ReceiptLineSerializer(many=True)
    tenders = ReceiptTenderSerializer(many=True)
    list_total = MoneyField()
    discount_total = MoneyField()
    payable_total = MoneyField()
    points_earned = serializers.IntegerField()
    refunded_total = MoneyField()
    wallet_principal_after = MoneyField(allow_null=True, help_text="The member's principal right after this bill.")
    wallet_bonus_after = MoneyField(allow_null=True)
    points_after = serializers.IntegerField(allow_null=True)


# --- daily close ---------------------------------------------------------------------------------------------------


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string", "pattern": r"^-?\d+(\.\d{1,2})?$"},
        "example": {"cash": "120.00", "wechat": "540.00"},
    }
)
class MoneyByKeyField(serializers.DictField):
    """``{"wechat": "540.00", …}`` from ``{"wechat": Money}``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=MoneyField(), **kwargs)


class DailyCloseSerializer(serializers.Serializer):
    """A store's day (store-local) for the close of the till (日结)."""

    store_id = serializers.IntegerField()
    day = serializers.DateField()
    bills_completed = serializers.IntegerField()
    sales_total = MoneyField(help_text="Payable of the bills completed that day.")
    discount_total = MoneyField()
    by_tender = MoneyByKeyField(help_text="How the day's bills were paid, by tender kind.")
    by_category = MoneyByKeyField(help_text="Line totals by earning category.")
    refunds_count = serializers.IntegerField()
    refunds_total = MoneyField()
    refunds_by_tender = MoneyByKeyField(help_text="Refunds by the original tender each part belonged to.")
    refunds_to_stored_value = MoneyField(help_text="External money refunded into members' principal instead.")
    refunds_by_category = MoneyByKeyField()
    points_offset_used = serializers.IntegerField()
    points_earned = serializers.IntegerField()
    takings_by_tender = MoneyByKeyField(
        help_text="From the ledger: money in per tender account that day (bills, refunds and recharges)."
    )
    cash_in = MoneyField()
    cash_refunded = MoneyField()
    cash_expected = MoneyField(help_text="The cash the drawer should hold from the day: in minus out.")
