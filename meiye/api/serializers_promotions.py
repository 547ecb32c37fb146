"""Coupons (优惠券) and promotions (促销) serializers. Amounts are strings in yuan ("50.00"); a percentage is
the share the customer PAYS in basis points (``pay_bp``: 8,800 = pays 88%).

Input serializers check types only; every rule (kind-specific amounts, dates, our own category, item and
store ids, per-member limits) is ``promotions.services``'.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from meiye.api.fields import AmountField, MoneyField, enum_field, parse_amount
from meiye.api.serializers_sales import StaffRefSerializer
from meiye.promotions.models import BASIS_POINTS, CouponKind, CouponStatus, PromotionKind, StackingPolicy
from meiye.promotions.services import CouponTemplateInput, PromotionInput

ITEM_KINDS = [("", "all"), ("service", "service"), ("product", "product")]
MAX_IDS = 500

# --- output ------------------------------------------------------------------------------------------------------


class CouponTemplateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = enum_field(CouponKind)
    amount_off = MoneyField(source="amount_off_fen", help_text="amount_off: taken off the eligible lines.")
    pay_bp = serializers.IntegerField(help_text="percent_off: the share paid in basis points (8800 = pays 88%).")
    free_item_id = serializers.IntegerField(allow_null=True, help_text="free_service: the service given free.")
    min_spend = MoneyField(source="min_spend_fen", help_text="The eligible lines must total at least this.")
    category_ids = serializers.ListField(child=serializers.IntegerField(), help_text="Empty: every category.")
    store_ids = serializers.ListField(child=serializers.IntegerField(), help_text="Empty: every store.")
    valid_from = serializers.DateField(allow_null=True)
    valid_until = serializers.DateField(allow_null=True)
    valid_days = serializers.IntegerField(allow_null=True, help_text="Valid N days from issue (instead of dates).")
    per_member_limit = serializers.IntegerField(help_text="Coupons of this template one member may hold; 0: any.")
    stackable = serializers.BooleanField(help_text="May share a bill with another coupon.")
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class PromotionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = enum_field(PromotionKind)
    threshold = MoneyField(source="threshold_fen", help_text="spend_save: the eligible lines reach this …")
    save = MoneyField(source="save_fen", help_text="spend_save: … and this much comes off.")  # type: ignore[assignment]  # a field, not Serializer.save
    repeat = serializers.BooleanField(help_text="spend_save: again for every full threshold.")
    pay_bp = serializers.IntegerField(help_text="percent_off: the share paid in basis points (8800 = pays 88%).")
    buy_quantity = serializers.IntegerField(help_text="buy_x_get_y: X.")
    free_quantity = serializers.IntegerField(help_text="buy_x_get_y: Y.")
    item_kind = serializers.CharField(help_text="service, product, or empty for both.")
    category_ids = serializers.ListField(child=serializers.IntegerField(), help_text="Empty: every category.")
    item_ids = serializers.ListField(child=serializers.IntegerField(), help_text="Empty: every item.")
    store_ids = serializers.ListField(child=serializers.IntegerField(), help_text="Empty: every store.")
    starts_on = serializers.DateField(allow_null=True)
    ends_on = serializers.DateField(allow_null=True)
    priority = serializers.IntegerField(help_text="Lower first when promotions stack.")
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class StackingSerializer(serializers.Serializer):
    stacking = enum_field(
        StackingPolicy,
        help_text="best_single: each line gets the better of the tier discount and one promotion (default); "
        "stack: the tier price, then every promotion in priority order. Coupons always come after.",
    )


class CouponTemplateRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = enum_field(CouponKind)


class CouponSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField(help_text="Printed on the coupon and read out at the till.")
    template = CouponTemplateRefSerializer()
    member_id = serializers.IntegerField()
    status = enum_field(CouponStatus)
    valid_from = serializers.DateField()
    valid_until = serializers.DateField()
    source = serializers.CharField(help_text="Why it was issued: manual, rule:…, campaign:…")  # type: ignore[assignment]  # a field, not Field.source
    issued_by = StaffRefSerializer(allow_null=True)
    issued_at = serializers.DateTimeField()
    used_bill_id = serializers.IntegerField(allow_null=True, help_text="The bill it was used on.")
    used_at = serializers.DateTimeField(allow_null=True)
    discount = MoneyField(source="discount_fen", help_text="What it took off the bill it was used on.")


# --- input --------------------------------------------------------------------------------------------------------


def _ids_field(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=MAX_IDS, help_text=help_text
    )


class _PartialMixin:
    """Every field optional and without a default: only the fields sent change (PATCH)."""

    fields: Any

    def make_partial(self) -> None:
        for field in self.fields.values():
            field.required = False
            field.default = serializers.empty


class CouponTemplateWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=60)
    kind = enum_field(CouponKind)
    amount_off = AmountField(required=False, allow_null=True, help_text='amount_off: in yuan, e.g. "50.00".')
    pay_bp = serializers.IntegerField(
        required=False, min_value=1, max_value=BASIS_POINTS, help_text="percent_off: share paid, 8800 = pays 88%."
    )
    free_item_id = serializers.IntegerField(required=False, allow_null=True, help_text="free_service: a service.")
    min_spend = AmountField(required=False, allow_null=True, help_text='In yuan, e.g. "300.00"; absent: none.')
    category_ids = _ids_field("Categories it applies to; empty or absent: all.")
    store_ids = _ids_field("Stores it may be used in; empty or absent: all.")
    valid_from = serializers.DateField(required=False, allow_null=True)
    valid_until = serializers.DateField(required=False, allow_null=True)
    valid_days = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=3650, help_text="Valid N days from issue."
    )
    per_member_limit = serializers.IntegerField(required=False, min_value=0, max_value=999)
    stackable = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)

    def to_input(self, base: CouponTemplateInput | None = None) -> CouponTemplateInput:
        """The service's input: ``base`` (the template as it is, for a PATCH) with the fields sent."""
        data = dict(self.validated_data)
        values: dict[str, Any] = dict(base.__dict__) if base is not None else {}
        for money in ("amount_off", "min_spend"):
            if money in data:
                raw = data.pop(money)
                values[f"{money}_fen"] = 0 if raw is None else parse_amount(raw, field=money).fen
        values.update(data)
        return CouponTemplateInput(**values)


class CouponTemplatePatchSerializer(_PartialMixin, CouponTemplateWriteSerializer):
    """Only the fields sent change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.make_partial()


class PromotionWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=60)
    kind = enum_field(PromotionKind)
    threshold = AmountField(required=False, allow_null=True, help_text='spend_save: in yuan, e.g. "1000.00".')
    save = AmountField(required=False, allow_null=True, help_text='spend_save: in yuan, e.g. "100.00".')  # type: ignore[assignment]  # a field, not Serializer.save
    repeat = serializers.BooleanField(required=False)
    pay_bp = serializers.IntegerField(
        required=False, min_value=1, max_value=BASIS_POINTS, help_text="percent_off: share paid, 8800 = pays 88%."
    )
    buy_quantity = serializers.IntegerField(required=False, min_value=0, max_value=999)
    free_quantity = serializers.IntegerField(required=False, min_value=0, max_value=999)
    item_kind = serializers.ChoiceField(
        choices=ITEM_KINDS, required=False, allow_blank=True, help_text="service, product, or empty for both."
    )
    category_ids = _ids_field("Categories it applies to; empty or absent: all.")
    item_ids = _ids_field("Items it applies to; empty or absent: all.")
    store_ids = _ids_field("Stores it runs in; empty or absent: all.")
    starts_on = serializers.DateField(required=False, allow_null=True)
    ends_on = serializers.DateField(required=False, allow_null=True)
    priority = serializers.IntegerField(required=False, min_value=0, max_value=32767)
    is_active = serializers.BooleanField(required=False)

    def to_input(self, base: PromotionInput | None = None) -> PromotionInput:
        data = dict(self.validated_data)
        values: dict[str, Any] = dict(base.__dict__) if base is not None else {}
        for money in ("threshold", "save"):
            if money in data:
                raw = data.pop(money)
                values[f"{money}_fen"] = 0 if raw is None else parse_amount(raw, field=money).fen
        values.update(data)
        return PromotionInput(**values)


class PromotionPatchSerializer(_PartialMixin, PromotionWriteSerializer):
    """Only the fields sent change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.make_partial()


class CouponIssueSerializer(serializers.Serializer):
    template_id = serializers.IntegerField(min_value=1, help_text="An active coupon template of the organisation.")


class CouponVoidSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, help_text="Why, kept in the audit log.")
