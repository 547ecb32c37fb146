"""Serializers for packages (计次卡/套餐/时间卡). Money in and out as yuan strings; sessions are integers."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from meiye.api.fields import AmountField, MoneyField
from meiye.packages.models import RefundFormula, ValidFrom, ValidityUnit
from meiye.wallet.models import Tender


class PackageProductItemSerializer(serializers.Serializer):
    service_id = serializers.IntegerField()
    service_name = serializers.CharField(source="service.name", read_only=True)
    count = serializers.IntegerField(allow_null=True, min_value=1, help_text="Sessions; null: unlimited (time card).")
    validity_value = serializers.IntegerField(min_value=1)
    validity_unit = serializers.ChoiceField(choices=ValidityUnit.choices, default=ValidityUnit.MONTHS)
    valid_from = serializers.ChoiceField(choices=ValidFrom.choices, default=ValidFrom.PURCHASE)
    daily_limit = serializers.IntegerField(allow_null=True, min_value=1, required=False, default=None)
    min_days_between = serializers.IntegerField(min_value=0, required=False, default=0)


class PackageProductSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    item_id = serializers.IntegerField(read_only=True)
    code = serializers.CharField(source="item.code", read_only=True)
    name = serializers.CharField(source="item.name", read_only=True)
    price = MoneyField(source="item.price_fen")
    kind = serializers.CharField(read_only=True)
    refund_formula = serializers.CharField(read_only=True)
    cooling_off_days = serializers.IntegerField(read_only=True)
    transferable = serializers.BooleanField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    items = PackageProductItemSerializer(many=True, read_only=True, source="items.all")


class PackageProductRequestSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=40)
    name = serializers.CharField(max_length=80)
    price = AmountField(help_text='The package price in yuan, e.g. "1980.00".')
    kind = serializers.CharField(max_length=10, help_text="count (计次卡) | combo (套餐) | time (时间卡)")
    category_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    refund_formula = serializers.ChoiceField(choices=RefundFormula.choices, default=RefundFormula.UNIT_PRICE)
    cooling_off_days = serializers.IntegerField(min_value=0, max_value=365, default=7)
    transferable = serializers.BooleanField(default=False)
    is_active = serializers.BooleanField(default=True)
    items = PackageProductItemSerializer(many=True)


class MemberPackageItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    service_id = serializers.IntegerField()
    name = serializers.CharField()
    count = serializers.IntegerField(allow_null=True)
    used = serializers.IntegerField()
    remaining = serializers.IntegerField()
    expired_sessions = serializers.IntegerField()
    share = MoneyField(source="share_fen")
    unit_price = MoneyField(source="unit_price_fen")
    list_price = MoneyField(source="list_price_fen")
    valid_from = serializers.DateField()
    valid_until = serializers.DateField(allow_null=True)
    first_used_on = serializers.DateField(allow_null=True)
    daily_limit = serializers.IntegerField(allow_null=True)
    min_days_between = serializers.IntegerField()


class MemberPackageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    member_id = serializers.IntegerField()
    store_id = serializers.IntegerField()
    product_id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    price_paid = MoneyField(source="price_paid_fen")
    purchased_on = serializers.DateField()
    bill_id = serializers.IntegerField(allow_null=True)
    contract_id = serializers.IntegerField(allow_null=True)
    transferable = serializers.BooleanField()
    refunded = MoneyField(source="refunded_fen", allow_null=True)
    items = MemberPackageItemSerializer(many=True, source="items.all")


class PackageSessionUseRequestSerializer(serializers.Serializer):
    member_item_id = serializers.IntegerField()
    sessions = serializers.IntegerField(min_value=1, max_value=1000, default=1)
    performed_by_id = serializers.IntegerField(required=False, allow_null=True, default=None)


class PackageSessionUseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    member_item_id = serializers.IntegerField()
    quantity = serializers.IntegerField()
    returned = serializers.IntegerField()
    on = serializers.DateField()
    performed_by_id = serializers.IntegerField(allow_null=True)
    bill_id = serializers.IntegerField(allow_null=True)
    value = MoneyField(source="value_fen")
    remaining = serializers.IntegerField(source="member_item.remaining")


class PackageRefundLineSerializer(serializers.Serializer):
    item_id = serializers.IntegerField()
    name = serializers.CharField()
    count = serializers.IntegerField(allow_null=True)
    used = serializers.IntegerField()
    share = MoneyField(source="share_fen")
    value = MoneyField(source="value_fen")
    text_zh = serializers.CharField()
    text_en = serializers.CharField()


class PackageRefundPreviewSerializer(serializers.Serializer):
    amount = MoneyField(source="amount_fen")
    formula = serializers.ChoiceField(choices=["cooling_off", "unit_price", "list_price"])
    text_zh = serializers.CharField()
    text_en = serializers.CharField()
    lines = PackageRefundLineSerializer(many=True)


class PackageRefundRequestSerializer(serializers.Serializer):
    tender = serializers.ChoiceField(choices=Tender.choices)
    reason = serializers.CharField(max_length=200)


class PackageReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class PackageExtendRequestSerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=3650)
    reason = serializers.CharField(max_length=200)


class PackageTransferRequestSerializer(serializers.Serializer):
    to_member_id = serializers.IntegerField()
    reason = serializers.CharField(max_length=200)


def as_dict(serializer: Any) -> dict[str, Any]:
    data: dict[str, Any] = serializer.data
    return data
