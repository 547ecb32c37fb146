"""Prepaid contracts (预付式消费合同) and the prepaid liability report. Amounts are strings in yuan."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from meiye.api.fields import MoneyField
from meiye.api.serializers import StoreRefSerializer
from meiye.contracts.models import ContractKind, ContractStatus


class ContractSerializer(serializers.Serializer):
    """A contract as made at the sale; ``body`` is its frozen text in zh-hans and en."""

    id = serializers.IntegerField()
    number = serializers.CharField(help_text="合同编号, e.g. HT20261124000042.")
    # Plain strings (not enums): "kind" and "status" are enum names used by many components already.
    kind = serializers.CharField(help_text=f"One of: {', '.join(ContractKind.values)}.")
    status = serializers.CharField(help_text=f"One of: {', '.join(ContractStatus.values)}.")
    store = StoreRefSerializer(help_text="The selling store (the seller, 甲方).")
    member_id = serializers.IntegerField()
    member_no = serializers.CharField(source="member.member_no")
    reference_type = serializers.CharField(help_text='What was sold: "wallet.Recharge" or "packages.MemberPackage".')
    reference_id = serializers.CharField()
    price = MoneyField(source="price_fen")
    price_fen = serializers.IntegerField()
    body = serializers.SerializerMethodField(
        help_text='{"title", "items": [{"name", "quantity", "detail"}], "price", "validity", "refund_method", '
        '"liability", "terms", "seller", "buyer"}; texts are {"zh-hans": …, "en": …}; the buyer\'s phone is masked.'
    )
    created_at = serializers.DateTimeField()
    signed_at = serializers.DateTimeField(allow_null=True)
    signed_by_id = serializers.IntegerField(allow_null=True)
    signature_sha256 = serializers.CharField(help_text="SHA-256 of the signature PNG; empty until signed.")

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_body(self, contract: Any) -> dict[str, Any]:
        return dict(contract.body or {})


class ContractSignRequestSerializer(serializers.Serializer):
    signature_png = serializers.CharField(
        help_text="The member's signature: a PNG as base64, or as a data URL (data:image/png;base64,…); at most "
        "300 KB, 100×40 to 3000×1500 pixels, not blank.",
        trim_whitespace=True,
    )


class LiabilityRowSerializer(serializers.Serializer):
    store_id = serializers.IntegerField(allow_null=True, help_text="null: journals without a store (system jobs).")
    store_name = serializers.CharField()
    principal = MoneyField(source="principal_fen", help_text="储值本金")
    bonus = MoneyField(source="bonus_fen", help_text="赠送金")
    pending_bonus = MoneyField(source="pending_bonus_fen", help_text="待到账赠送金")
    stored_value = MoneyField(source="stored_value_fen")
    sessions = serializers.IntegerField(help_text="Sessions left on count cards and packages.")
    packages = MoneyField(source="package_fen", help_text="Value of the sessions left (ADR 0006) and of time cards.")
    gift_cards = MoneyField(source="gift_card_fen", help_text="Balances of gift cards sold by the store.")
    total = MoneyField(source="total_fen")
    total_fen = serializers.IntegerField()


class LiabilityReportSerializer(serializers.Serializer):
    date = serializers.DateField(source="on", help_text="Counted up to the end of this day in each store's zone.")
    rows = LiabilityRowSerializer(many=True)
    totals = LiabilityRowSerializer()
