"""Member tiers (会员等级) serializers. Amounts are strings in yuan ("3000.00") with their ``*_fen`` twins; a
discount is basis points OFF (``{"service": 1000}`` is services 10% off); the points multiplier is basis
points (12000 = ×1.2).

Input serializers check types only; every rule (the code's shape, the ladder starting at 0 with strictly
increasing thresholds, the ranges, the discount keys, the grant's date and reason) is ``loyalty.tiers``'.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from meiye.api.fields import AmountField, MoneyField, enum_field, parse_amount
from meiye.api.serializers_sales import StaffRefSerializer
from meiye.core.money import Money
from meiye.loyalty.models import Tier, TierChangeCause
from meiye.loyalty.tiers import BASIS_POINTS

# --- output ------------------------------------------------------------------------------------------------------


class TierSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()
    threshold = MoneyField(source="threshold_fen", help_text="Growth value (12 months, in yuan) that reaches it.")
    threshold_fen = serializers.IntegerField()
    discounts_bp = serializers.DictField(
        child=serializers.IntegerField(),
        help_text='Basis points off by item kind ("service", "product") or earning category ("basic_care" …, '
        'wins over the kind): {"service": 1000} is services 10% off.',
    )
    points_multiplier_bp = serializers.IntegerField(help_text="Earning multiplier in basis points: 12000 = ×1.2.")
    points_per_yuan_offset = serializers.IntegerField(
        allow_null=True, help_text="Points per 1 元 of points offset; null: the store's own setting."
    )
    points_lifetime_months = serializers.IntegerField(
        allow_null=True, help_text="How long points earned on this tier last; null: the organisation's setting."
    )
    perks_zh = serializers.CharField()
    perks_en = serializers.CharField()
    updated_at = serializers.DateTimeField()


class TierRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()


class MemberTierSerializer(serializers.Serializer):
    """Where a member stands. Shaped from ``{"member_id", "progress": TierProgress, "state": MemberTier|None}``;
    ``tier`` is null when the organisation has no tiers."""

    member_id = serializers.IntegerField()
    tier = TierRefSerializer(source="progress.tier", allow_null=True, help_text="The tier she has (pricing uses it).")
    since = serializers.DateField(source="progress.since", allow_null=True, help_text="The day she got it.")
    earned_tier = TierRefSerializer(
        source="state.earned_tier", allow_null=True, help_text="The tier her growth earned (null: the lowest)."
    )
    earned_since = serializers.DateField(source="state.earned_since", allow_null=True)
    granted_tier = TierRefSerializer(
        source="progress.floor_tier",
        allow_null=True,
        help_text="A tier granted by hand: a floor until `granted_until`.",
    )
    granted_until = serializers.DateField(source="progress.floor_until", allow_null=True)
    review_on = serializers.DateField(
        source="progress.review_on", allow_null=True, help_text="The next yearly review or the day after a grant ends."
    )
    growth = MoneyField(source="progress.growth_fen", help_text="成长值: paid in the last 12 months, net of refunds.")
    growth_fen = serializers.IntegerField(source="progress.growth_fen")
    next_tier = TierRefSerializer(source="progress.next_tier", allow_null=True, help_text="Null at the top.")
    remaining = MoneyField(source="progress.remaining_fen", help_text="Growth still needed for the next tier.")
    remaining_fen = serializers.IntegerField(source="progress.remaining_fen")
    message_zh = serializers.CharField(source="progress.message_zh", help_text='e.g. "距离金卡还差 ¥1,234".')
    message_en = serializers.CharField(source="progress.message_en", help_text='e.g. "¥1,234 to Gold".')


class TierChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    on = serializers.DateField(help_text="The store-local business day of the change.")
    from_tier = TierRefSerializer(allow_null=True)
    to_tier = TierRefSerializer()
    cause = enum_field(TierChangeCause)
    note = serializers.CharField(help_text="The reason given for a grant by hand.")
    growth = MoneyField(source="growth_fen", allow_null=True, help_text="12-month growth value at the time.")
    growth_fen = serializers.IntegerField(allow_null=True)
    staff = StaffRefSerializer(allow_null=True, help_text="Who; null: a job.")
    created_at = serializers.DateTimeField()


# --- input -------------------------------------------------------------------------------------------------------


class _TierFieldsSerializer(serializers.Serializer):
    name_zh = serializers.CharField(allow_blank=True, help_text="1 to 20 characters.")
    name_en = serializers.CharField(required=False, allow_blank=True, default="", help_text="At most 30 characters.")
    threshold = AmountField(help_text='Growth value that reaches the tier, in yuan, e.g. "3000.00"; the lowest is "0".')
    discounts_bp = serializers.DictField(
        child=serializers.IntegerField(),
        required=False,
        default=dict,
        help_text='Basis points off (0–10000) by item kind or earning category, e.g. {"service": 1000}.',
    )
    points_multiplier_bp = serializers.IntegerField(
        required=False, default=BASIS_POINTS, help_text="1–100000; 12000 = ×1.2. Default 10000."
    )
    points_per_yuan_offset = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="1–10000, or null for the store's own setting."
    )
    points_lifetime_months = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="1–120, or null for the organisation's setting."
    )
    perks_zh = serializers.CharField(required=False, allow_blank=True, default="", help_text="At most 1000.")
    perks_en = serializers.CharField(required=False, allow_blank=True, default="", help_text="At most 1000.")

    def save_kwargs(self, current: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``tier_save`` keyword arguments (not the actor): ``current`` with what was sent over it."""
        data = {**(current or {}), **self.validated_data}
        if "threshold" in self.validated_data:
            data["threshold"] = parse_amount(self.validated_data["threshold"], field="threshold")
        return data


class TierWriteSerializer(_TierFieldsSerializer):
    """Create or replace a tier by ``code`` (the code is the key)."""

    code = serializers.CharField(help_text="1 to 32 lowercase letters, digits, - and _, e.g. silver.")


class TierPatchSerializer(_TierFieldsSerializer):
    """Only the fields sent change; the code cannot change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
            field.default = serializers.empty


def tier_current(tier: Tier) -> dict[str, Any]:
    """A tier's values in the shape of ``tier_save``'s keyword arguments (for a partial update)."""
    return {
        "name_zh": tier.name_zh,
        "name_en": tier.name_en,
        "threshold": Money(tier.threshold_fen),
        "discounts_bp": dict(tier.discounts_bp or {}),
        "points_multiplier_bp": tier.points_multiplier_bp,
        "points_per_yuan_offset": tier.points_per_yuan_offset,
        "points_lifetime_months": tier.points_lifetime_months,
        "perks_zh": tier.perks_zh,
        "perks_en": tier.perks_en,
    }


class TierGrantSerializer(serializers.Serializer):
    tier_id = serializers.IntegerField(help_text="A tier of the organisation.")
    until = serializers.DateField(help_text="The floor lasts up to and including this day (not before today).")
    reason = serializers.CharField(allow_blank=True, help_text="Why (1 to 200 characters); audited.")
