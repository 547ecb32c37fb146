"""Stored value (储值) and points (积分) of a member. Amounts are strings in yuan; points are integers."""

from __future__ import annotations

from rest_framework import serializers

from meiye.api.fields import AmountField, MoneyField
from meiye.api.serializers import StoreRefSerializer
from meiye.wallet.models import Tender

# --- stored value -----------------------------------------------------------------------------------------


class WalletSerializer(serializers.Serializer):
    """Shaped from ``{"member_id": int, "balance": WalletBalance}``."""

    member_id = serializers.IntegerField()
    principal = MoneyField(source="balance.principal", help_text="本金: money the member paid in.")
    bonus = MoneyField(source="balance.bonus", help_text="赠送金: given by the store.")
    total = MoneyField(source="balance.total")
    principal_fen = serializers.IntegerField(source="balance.principal.fen")
    bonus_fen = serializers.IntegerField(source="balance.bonus.fen")
    total_fen = serializers.IntegerField(source="balance.total.fen")


class WalletHistoryLineSerializer(serializers.Serializer):
    """One journal's effect on the member's stored value (negative: taken out), with the balances after it."""

    journal_id = serializers.IntegerField()
    code = serializers.CharField(help_text="Why: wallet.recharge, sales.bill, sales.refund, wallet.merge …")
    reference_type = serializers.CharField()
    reference_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    principal = MoneyField()
    bonus = MoneyField()
    total = MoneyField()
    principal_after = MoneyField()
    bonus_after = MoneyField()


class RechargeRequestSerializer(serializers.Serializer):
    amount = AmountField(help_text='What the member pays, in yuan, e.g. "3000.00".')
    bonus = AmountField(required=False, help_text='The store\'s bonus (赠送金), e.g. "100.00". Default "0.00".')
    tender = serializers.ChoiceField(choices=Tender.choices, help_text="How she pays.")
    external_ref = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=64, help_text="WeChat/Alipay/card reference."
    )


class RechargeSerializer(serializers.Serializer):
    """Shaped from ``{"recharge": Recharge, "wallet": {"member_id", "balance"}}``."""

    id = serializers.IntegerField(source="recharge.pk")
    member_id = serializers.IntegerField(source="recharge.member_id")
    store = StoreRefSerializer(source="recharge.store")
    amount = MoneyField(source="recharge.amount_fen")
    bonus = MoneyField(source="recharge.bonus_fen")
    tender = serializers.ChoiceField(choices=Tender.choices, source="recharge.tender")
    external_ref = serializers.CharField(source="recharge.external_ref")
    journal_id = serializers.IntegerField(source="recharge.journal_id", allow_null=True)
    created_at = serializers.DateTimeField(source="recharge.created_at")
    wallet = WalletSerializer(help_text="The member's stored value after this recharge.")


# --- points --------------------------------------------------------------------------------------------------


class PointsSerializer(serializers.Serializer):
    member_id = serializers.IntegerField()
    points = serializers.IntegerField(help_text="积分; negative when she owes points taken back by a refund.")
    growth = MoneyField(help_text="成长值: money actually paid, net of refunds, in yuan.")
    growth_fen = serializers.IntegerField()


class PointsOffsetQuoteSerializer(serializers.Serializer):
    value = MoneyField(help_text="What the points may pay of the bill, in whole yuan (S-06).")
    points = serializers.IntegerField(help_text="The points that takes: tender exactly these.")
    points_balance = serializers.IntegerField()
    points_per_yuan = serializers.IntegerField(help_text="The member's tier's rate, else the store's.")
    cap = MoneyField(help_text="The store's cap on the payable (before rounding to whole yuan).")


class PointsLotSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    source_code = serializers.CharField(help_text="Why they were earned, e.g. sales.bill.")
    earned_on = serializers.DateField()
    expires_on = serializers.DateField(help_text="Usable up to and including this day.")
    amount = serializers.IntegerField(help_text="Points earned.")
    remaining = serializers.IntegerField(help_text="Points still spendable.")


class PointsAdjustRequestSerializer(serializers.Serializer):
    points = serializers.IntegerField(
        min_value=-(10**12) + 1,
        max_value=10**12 - 1,
        help_text="Positive adds points (a new lot, source `adjust`); negative deducts them (lots expiring first).",
    )
    reason = serializers.CharField(max_length=200, help_text="Why (required, audited), e.g. 补录漏积分.")


class PointsAdjustSerializer(serializers.Serializer):
    """Shaped from ``{"journal": Journal, "points": {...PointsSerializer}}``."""

    journal_id = serializers.IntegerField(source="journal.pk")
    code = serializers.CharField(source="journal.code", help_text="points.adjust")
    reason = serializers.CharField(source="journal.memo")
    points = PointsSerializer(help_text="The member's points after the adjustment.")


class PointsHistoryLineSerializer(serializers.Serializer):
    journal_id = serializers.IntegerField()
    code = serializers.CharField(help_text="Why: points.earn, sales.points_offset, points.expire, points.merge …")
    reference_type = serializers.CharField()
    reference_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    points = serializers.IntegerField(source="amount", help_text="Positive: earned or given back; negative: used.")
    balance_after = serializers.IntegerField()
