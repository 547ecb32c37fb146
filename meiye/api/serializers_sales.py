"""Bills (消费单), refunds, receipts and the daily close. Amounts are strings in yuan ("1234.50").

Input serializers check types only and turn the request into the services' inputs (``LineInput``,
``TenderInput``); every business rule — prices, approvals, tender sums, refund limits — is the service's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from meiye.api.fields import AmountField, MoneyField, enum_field, parse_optional_amount
from meiye.api.serializers import StoreRefSerializer
from meiye.catalog.models import EarningCategory, ItemKind
from meiye.sales.models import BillStatus, RefundDestination, TenderKind
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


class BillSerializer(BillSummarySerializer):
    """A bill with its lines (and their price steps), tenders and refunds."""

    store = StoreRefSerializer()
    voided_at = serializers.DateTimeField(allow_null=True)
    void_reason = serializers.CharField()
    earning_total = MoneyField(source="earning_total_fen", help_text="Money that earned points and growth.")
    lines = BillLineSerializer(many=True, source="lines.all")
    tenders = TenderSerializer(many=True, source="tenders.all")
    refunds = RefundSerializer(many=True, source="refunds.all")


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
        return [
            line_input(line, where=f"lines[{index}].", approval_pin=approval_pins.get(index, ""))
            for index, line in enumerate(self.validated_data["lines"])
        ]

    def to_tenders(self) -> list[TenderInput]:
        return _tenders(self.validated_data["tenders"])


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
