"""Earning rules (积分规则) serializers: the organisation's rules, a member's check-in, the daily-limit flags.

Multipliers are basis points (20000 = ×2), money is fen, a coupon template is its id. Input serializers
check types only; every range is ``loyalty.rules.rules_settings_save``'s, refused naming the field.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from meiye.api.fields import MoneyField

RULE_FIELDS: dict[str, str] = {
    "birthday_multiplier_bp": "Birthday-month earning multiplier, basis points (20000 = ×2; 10000 = off).",
    "birthday_gift_points": "Points given on the birthday, once a year (0 = off).",
    "member_day": "Member day: the day of the month (1–28); null = none.",
    "member_day_multiplier_bp": "Member-day earning multiplier, basis points.",
    "checkin_points": "Points per daily check-in (0 = off).",
    "checkin_streak_days": "Streak length in days (2–365).",
    "checkin_streak_bonus": "Extra points on every streak-length-th consecutive day.",
    "dormant_days": "A member is dormant after this many days without a visit; null = no wake-up.",
    "dormant_points": "Wake-up points, once per dormant spell.",
    "dormant_coupon_template_id": "Wake-up coupon template; null = none.",
    "referral_referrer_points": "Points for the referrer on the referred member's first paid service.",
    "referral_referee_points": "Points for the referred member on her first paid service.",
    "referral_refund_window_days": "A full refund within this many days takes both referral rewards back.",
    "referral_spend_threshold_fen": "The referred member's total spend (fen) that gives the referrer a coupon.",
    "referral_coupon_template_id": "The referrer's coupon template; null = none.",
    "daily_earning_limit": "Points a member may earn in a day before she is flagged for review; null = no flag.",
}
NULLABLE = frozenset(
    {
        "member_day",
        "dormant_days",
        "dormant_coupon_template_id",
        "referral_spend_threshold_fen",
        "referral_coupon_template_id",
        "daily_earning_limit",
    }
)


class RulesSettingsSerializer(serializers.Serializer):
    """The rules as saved (a missing row reads as every rule off)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            name: serializers.IntegerField(allow_null=name in NULLABLE, required=False, help_text=help_text)
            for name, help_text in RULE_FIELDS.items()
        }


class RulesSettingsWriteSerializer(serializers.Serializer):
    """Only the fields sent change; the others keep their value."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            name: serializers.IntegerField(allow_null=True, required=False, help_text=help_text)
            for name, help_text in RULE_FIELDS.items()
        }

    def save_kwargs(self) -> dict[str, Any]:
        return dict(self.validated_data)


class CheckInSerializer(serializers.Serializer):
    member_id = serializers.IntegerField()
    on = serializers.DateField(help_text="The store-local day of the check-in.")
    streak_day = serializers.IntegerField(help_text="Consecutive days including this one.")
    points = serializers.IntegerField(help_text="Points given for the check-in.")
    bonus = serializers.IntegerField(help_text="Streak bonus given on this day (0 on the other days).")
    already_checked_in = serializers.BooleanField(help_text="True when she had already checked in that day.")


class EarningFlagSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    member_id = serializers.IntegerField()
    member_no = serializers.CharField(source="member.member_no")
    member_name = serializers.CharField(source="member.name")
    on = serializers.DateField()
    points = serializers.IntegerField(help_text="Points she earned that day (all sources).")
    limit = serializers.IntegerField(help_text="The daily limit in force when she was flagged.")
    created_at = serializers.DateTimeField()
    reviewed_at = serializers.DateTimeField(allow_null=True, help_text="When a manager reviewed it; null: not yet.")
    reviewed_by = serializers.SerializerMethodField(help_text="Who reviewed it; null: not yet.")
    review_note = serializers.CharField(help_text="What the reviewer found.")

    def get_reviewed_by(self, flag: Any) -> str | None:
        return str(flag.reviewed_by) if flag.reviewed_by_id is not None else None


class EarningFlagReviewSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=500, help_text="What you found (e.g. 团购核实无误). Required.")


# --- The offers preview of an open bill ---------------------------------------------------------------------------


class OfferDiscountSerializer(serializers.Serializer):
    step = serializers.CharField(help_text="tier_discount, promotion, coupon, offer_choice, manual_adjustment …")
    reason = serializers.CharField(help_text='Bilingual: "会员折扣 … Member discount …".')
    unit_price = MoneyField(source="unit_price_fen", allow_null=True)
    unit_price_fen = serializers.IntegerField(allow_null=True, help_text="The unit price after this step.")
    amount = MoneyField(source="amount_fen", allow_null=True)
    amount_fen = serializers.IntegerField(
        allow_null=True, help_text="What a promotion or coupon took off the line (null for a price step)."
    )


class OfferLineSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    list_price = MoneyField(source="list_price_fen")
    list_price_fen = serializers.IntegerField()
    unit_price = MoneyField(source="unit_price_fen")
    unit_price_fen = serializers.IntegerField()
    discount = MoneyField(source="discount_fen", help_text="The line's share of promotions and coupons.")
    discount_fen = serializers.IntegerField()
    line_total = MoneyField(source="line_total_fen")
    line_total_fen = serializers.IntegerField()
    discounts = OfferDiscountSerializer(many=True)


class CouponOptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    valid_until = serializers.DateField()
    applied = serializers.BooleanField(help_text="In coupon_ids.")
    applicable = serializers.BooleanField(help_text="The bill accepts it with the coupons applied.")
    refusal_code = serializers.CharField(allow_blank=True, help_text="Why not (coupon.min_spend …); empty if it is.")
    refusal = serializers.CharField(allow_blank=True, help_text="Why not, in the request's language.")


class OffersPreviewSerializer(serializers.Serializer):
    bill_id = serializers.IntegerField()
    coupon_ids = serializers.ListField(child=serializers.IntegerField())
    payable_before = MoneyField(source="payable_before_fen", help_text="List prices × quantities, before any offer.")
    payable_before_fen = serializers.IntegerField()
    discount = MoneyField(source="discount_fen")
    discount_fen = serializers.IntegerField()
    payable_after = MoneyField(
        source="payable_after_fen", help_text="What completing the bill now with these coupons charges."
    )
    payable_after_fen = serializers.IntegerField()
    lines = OfferLineSerializer(many=True)
    coupons = CouponOptionSerializer(many=True, help_text="The member's active coupons and whether each applies.")
