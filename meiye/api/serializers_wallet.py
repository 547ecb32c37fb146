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
    pending = MoneyField(
        source="balance.pending", help_text="待到账赠送金: bonus promised by a recharge rule, not released yet."
    )
    pending_fen = serializers.IntegerField(source="balance.pending.fen")


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
    product = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Card product id (its cap and recharge rules apply); default: the organisation's default product.",
    )
    named = serializers.BooleanField(
        required=False, default=True, help_text="A named card (记名, the named cap) or anonymous (不记名)."
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
    product_id = serializers.IntegerField(source="recharge.product_id", allow_null=True)
    rule_id = serializers.IntegerField(source="recharge.rule_id", allow_null=True)
    named = serializers.BooleanField(source="recharge.named")
    pending_bonus = MoneyField(source="recharge.pending_bonus_fen", help_text="The rule's later monthly parts.")
    bonus_points = serializers.IntegerField(source="recharge.bonus_points")
    cooling_off_until = serializers.DateField(source="recharge.cooling_off_until", allow_null=True)
    contract_id = serializers.IntegerField(source="recharge.contract_id", allow_null=True)
    refunded_at = serializers.DateTimeField(source="recharge.refunded_at", allow_null=True)
    wallet = WalletSerializer(help_text="The member's stored value after this recharge.")


# --- card products, recharge rules, instalments, refunds -------------------------------------------------


class CardProductSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    named_cap = MoneyField(
        source="named_cap_fen", allow_null=True, help_text="Principal cap of a named card; null: none."
    )
    anonymous_cap = MoneyField(source="anonymous_cap_fen", allow_null=True, help_text="Cap of an anonymous card.")
    cooling_off_days = serializers.IntegerField()
    refund_method = serializers.CharField()
    terms = serializers.CharField()
    is_default = serializers.BooleanField()
    active = serializers.BooleanField()


class CardProductRequestSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32, help_text="Lowercase letters, digits, - or _; fixed once created.")
    name = serializers.CharField(max_length=60)
    named_cap = AmountField(required=False, allow_null=True, help_text='e.g. "5000.00"; null: no cap.')
    anonymous_cap = AmountField(required=False, allow_null=True, help_text='e.g. "1000.00"; null: no cap.')
    cooling_off_days = serializers.IntegerField(required=False, default=7, min_value=0, max_value=365)
    terms = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
    is_default = serializers.BooleanField(required=False, default=False)
    active = serializers.BooleanField(required=False, default=True)


class RechargeRuleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    product_id = serializers.IntegerField()
    name = serializers.CharField()
    threshold = MoneyField(source="threshold_fen", help_text="Applies to a recharge of at least this.")
    bonus = MoneyField(source="bonus_fen")
    instalments = serializers.IntegerField(help_text="1: all at once; N: N equal monthly parts.")
    bonus_points = serializers.IntegerField()
    coupon_template_id = serializers.IntegerField(allow_null=True)
    coupon_count = serializers.IntegerField()
    grant_tier_id = serializers.IntegerField(allow_null=True)
    grant_months = serializers.IntegerField()
    active = serializers.BooleanField()
    starts_on = serializers.DateField(allow_null=True)
    ends_on = serializers.DateField(allow_null=True)


class RechargeRuleRequestSerializer(serializers.Serializer):
    threshold = AmountField(help_text='Recharge at least, e.g. "3000.00".')
    bonus = AmountField(required=False, help_text='Bonus, e.g. "600.00". Default "0.00".')
    instalments = serializers.IntegerField(required=False, default=1, min_value=1, max_value=60)
    bonus_points = serializers.IntegerField(required=False, default=0, min_value=0, max_value=10_000_000)
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=60)
    coupon_template_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    coupon_count = serializers.IntegerField(required=False, default=0, min_value=0, max_value=20)
    grant_tier_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    grant_months = serializers.IntegerField(required=False, default=12, min_value=1, max_value=120)
    active = serializers.BooleanField(required=False, default=True)
    starts_on = serializers.DateField(required=False, allow_null=True, default=None)
    ends_on = serializers.DateField(required=False, allow_null=True, default=None)


class InstalmentPlanSerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="Part number (part 1 is paid with the recharge).")
    due_on = serializers.DateField()
    amount = MoneyField()


class RechargePreviewSerializer(serializers.Serializer):
    """Shaped from a ``BonusPlan`` plus its text."""

    rule_id = serializers.IntegerField(allow_null=True)
    now = MoneyField(help_text="Bonus credited with the recharge.")
    pending = MoneyField(help_text="Bonus released in later monthly parts.")
    total = MoneyField()
    points = serializers.IntegerField()
    later = InstalmentPlanSerializer(many=True)
    text_zh = serializers.CharField(help_text="e.g. 充3000送600：立即到账 100.00，另 500.00 分 5 个月到账，送 300 积分")
    text_en = serializers.CharField()


class InstalmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    recharge_id = serializers.IntegerField()
    seq = serializers.IntegerField()
    due_on = serializers.DateField()
    amount = MoneyField(source="amount_fen")
    status = serializers.CharField(help_text="pending, released or cancelled.")
    journal_id = serializers.IntegerField(allow_null=True)


class WalletRefundRequestSerializer(serializers.Serializer):
    tender = serializers.ChoiceField(choices=Tender.choices, help_text="How the money is paid back.")
    reason = serializers.CharField(max_length=200)


class WalletTransferRequestSerializer(serializers.Serializer):
    target_id = serializers.IntegerField(help_text="The member who receives the stored value.")
    reason = serializers.CharField(max_length=200)
    password = serializers.CharField(
        required=False, allow_blank=True, write_only=True, max_length=32, help_text="Her payment password, if set."
    )
    code = serializers.CharField(
        required=False, allow_blank=True, write_only=True, max_length=32, help_text="Or a code sent to her phone."
    )


class WalletClosureSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    member_id = serializers.IntegerField()
    store_id = serializers.IntegerField()
    principal = MoneyField(source="principal_fen", help_text="Principal paid back.")
    bonus_forfeited = MoneyField(source="bonus_forfeited_fen")
    pending_cancelled = MoneyField(source="pending_cancelled_fen")
    tender = serializers.CharField()
    reason = serializers.CharField()
    journal_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class WalletTransferSerializer(serializers.Serializer):
    journal_id = serializers.IntegerField(source="journal.pk")
    source = WalletSerializer()  # type: ignore[assignment]  # a field named like Field.source, as DRF allows
    target = WalletSerializer()


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
