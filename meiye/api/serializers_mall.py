"""The points mall (积分商城): items, redemptions, approval. Points are integers; cash parts are strings in yuan."""

from __future__ import annotations

from rest_framework import serializers

from meiye.api.fields import MoneyField, enum_field
from meiye.api.serializers import StoreRefSerializer
from meiye.mall.models import MallItemKind, RedemptionStatus
from meiye.wallet.models import Tender


class MallItemSerializer(serializers.Serializer):
    """Shaped from ``{"item": MallItem, "stock": int | None, "held": int}``."""

    id = serializers.IntegerField(source="item.pk")
    kind = enum_field(MallItemKind, source="item.kind")
    name = serializers.CharField(source="item.name")
    points_price = serializers.IntegerField(source="item.points_price", help_text="Points per unit.")
    cash = MoneyField(source="item.cash_fen", help_text="Cash per unit on top of the points (积分+现金), else 0.00.")
    cash_fen = serializers.IntegerField(source="item.cash_fen")
    catalog_item_id = serializers.IntegerField(source="item.catalog_item_id", allow_null=True)
    stock = serializers.IntegerField(allow_null=True, help_text="Units on the shelf; null: unlimited.")
    held = serializers.IntegerField(help_text="Units reserved for redemptions awaiting approval.")
    per_member_limit = serializers.IntegerField(source="item.per_member_limit", allow_null=True)
    store_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="Stores where it can be redeemed; empty: every store."
    )
    is_active = serializers.BooleanField(source="item.is_active")


class RedeemRequestSerializer(serializers.Serializer):
    member_id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    quantity = serializers.IntegerField(default=1, min_value=1, max_value=999)
    tender = serializers.ChoiceField(
        choices=Tender.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="How the cash part of a points + cash item is paid; leave out for points-only items.",
    )


class DecisionRequestSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class RejectRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, help_text="Why (required); shown in the history.")


class RedemptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    store = StoreRefSerializer()
    member_id = serializers.IntegerField()
    member_no = serializers.CharField(source="member.member_no")
    item_id = serializers.IntegerField()
    item_name = serializers.CharField(help_text="The item's name when it was redeemed.")
    quantity = serializers.IntegerField()
    points = serializers.IntegerField(help_text="Points spent (held while pending).")
    cash = MoneyField(source="cash_fen")
    cash_fen = serializers.IntegerField()
    tender = serializers.CharField(help_text="cash, card, wechat or alipay when there is a cash part, else empty.")
    status = enum_field(RedemptionStatus)
    requested_by_id = serializers.IntegerField(allow_null=True)
    decided_by_id = serializers.IntegerField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_note = serializers.CharField()
    points_journal_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class RedeemResultSerializer(serializers.Serializer):
    """Shaped from ``{"redemption": MallRedemption, "points_balance": int}``."""

    redemption = RedemptionSerializer()
    points_balance = serializers.IntegerField(help_text="The member's points after this redemption.")
