"""Segments (会员分群) and campaigns (营销活动) serializers.

Criteria are passed through as a JSON object; their rules are ``campaigns.segments.criteria_clean``'s
(see its module for the keys). Money in the report is in fen (``*_fen``), like the ledger.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from meiye.api.fields import enum_field
from meiye.campaigns.models import CampaignStatus
from meiye.campaigns.services import CampaignInput

CRITERIA_HELP = (
    "Keys (all optional, all must hold): tiers [codes], birthday_month 1-12, dormant_days N, "
    "visited_within_days N, visited_before_days N, visits_min {days, count}, spend_min {days, fen}, "
    "tags [names], store_ids [ids], points_min, points_max, coupon_template_id."
)


class SegmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    criteria = serializers.JSONField(help_text=CRITERIA_HELP)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SegmentWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=60)
    criteria = serializers.JSONField(default=dict, help_text=CRITERIA_HELP)


class SegmentPatchSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=60, required=False)
    criteria = serializers.JSONField(required=False, help_text=CRITERIA_HELP)


class CriteriaSerializer(serializers.Serializer):
    criteria = serializers.JSONField(default=dict, help_text=CRITERIA_HELP)


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Active members the criteria select now, in the stores you see.")


class CampaignSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    segment_id = serializers.IntegerField()
    points = serializers.IntegerField()
    coupon_template_id = serializers.IntegerField(allow_null=True)
    subject_zh = serializers.CharField()
    subject_en = serializers.CharField()
    message_zh = serializers.CharField()
    message_en = serializers.CharField()
    send_at = serializers.DateTimeField(allow_null=True)
    holdout_bp = serializers.IntegerField(help_text="Share kept out as the control group, basis points (1000 = 10%).")
    report_days = serializers.IntegerField(help_text="The report's window after sending, in days.")
    status = enum_field(CampaignStatus)
    sent_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class CampaignWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=60)
    segment_id = serializers.IntegerField()
    points = serializers.IntegerField(default=0)
    coupon_template_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    subject_zh = serializers.CharField(required=False, allow_blank=True, default="")
    subject_en = serializers.CharField(required=False, allow_blank=True, default="")
    message_zh = serializers.CharField()
    message_en = serializers.CharField(required=False, allow_blank=True, default="")
    send_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    holdout_bp = serializers.IntegerField(default=0)
    report_days = serializers.IntegerField(default=30)

    def to_input(self, base: CampaignInput | None = None) -> CampaignInput:
        values: dict[str, Any] = dict(base.__dict__) if base is not None else {}
        values.update(self.validated_data)
        return CampaignInput(**values)


class CampaignPatchSerializer(CampaignWriteSerializer):
    """Only the fields sent change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
            field.default = serializers.empty


class ScheduleSerializer(serializers.Serializer):
    send_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class SendResultSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    targets = serializers.IntegerField()
    holdout = serializers.IntegerField()
    rewarded_now = serializers.IntegerField()
    pending = serializers.IntegerField()


class CampaignReportSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    window_days = serializers.IntegerField()
    targets = serializers.IntegerField()
    holdout = serializers.IntegerField()
    done = serializers.IntegerField()
    messages_queued = serializers.IntegerField()
    messages_skipped = serializers.IntegerField()
    coupons_issued = serializers.IntegerField()
    coupons_redeemed = serializers.IntegerField()
    coupon_discount_fen = serializers.IntegerField()
    points_given = serializers.IntegerField()
    points_cost_fen = serializers.IntegerField(help_text="Points given at 100 points = 1 元.")
    cost_fen = serializers.IntegerField()
    target_revenue_fen = serializers.IntegerField()
    target_average_fen = serializers.IntegerField()
    holdout_revenue_fen = serializers.IntegerField()
    holdout_average_fen = serializers.IntegerField()
    uplift_fen = serializers.IntegerField()
    uplift_bp = serializers.IntegerField(allow_null=True)
    roi_fen = serializers.IntegerField(help_text="uplift_fen × targets − cost_fen.")
