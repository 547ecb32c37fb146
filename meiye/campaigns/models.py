"""Segments (会员分群) and campaigns (营销活动).

A segment is a saved filter of the organisation's members (``criteria``, validated by
``segments.criteria_clean``). A campaign sends a segment a reward (points and/or a coupon) and a message at a
time, keeping a holdout group (对照组) that gets nothing, so its report can compare what both groups spent.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

BASIS_POINTS = 10_000
DEFAULT_REPORT_DAYS = 30


class Segment(models.Model):
    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("名称 Name"), max_length=60)
    criteria = models.JSONField(_("条件 Criteria"), default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="campaigns_segment_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("草稿 Draft")
    SCHEDULED = "scheduled", _("已排期 Scheduled")
    SENDING = "sending", _("发送中 Sending")
    SENT = "sent", _("已发送 Sent")


class Campaign(models.Model):
    """``holdout_bp``: the share of the audience kept out, in basis points (1,000 = 10%). ``sent_at``: when
    the audience was snapshot (the report window starts there); ``finished_at``: when every member was done.
    """

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("名称 Name"), max_length=60)
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="campaigns")
    points = models.PositiveIntegerField(_("赠送积分 Points"), default=0)
    coupon_template = models.ForeignKey(
        "promotions.CouponTemplate", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    subject_zh = models.CharField(_("标题 Subject (zh)"), max_length=60, blank=True)
    subject_en = models.CharField(_("英文标题 Subject (en)"), max_length=80, blank=True)
    message_zh = models.TextField(_("消息 Message (zh)"), blank=True)
    message_en = models.TextField(_("英文消息 Message (en)"), blank=True)
    send_at = models.DateTimeField(_("发送时间 Send at"), null=True, blank=True)
    holdout_bp = models.PositiveIntegerField(_("对照组比例（基点） Holdout (bp)"), default=0)
    report_days = models.PositiveSmallIntegerField(_("统计天数 Report window (days)"), default=DEFAULT_REPORT_DAYS)
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(holdout_bp__lte=BASIS_POINTS), name="campaigns_campaign_holdout_range"
            ),
            models.CheckConstraint(
                condition=models.Q(report_days__gte=1), name="campaigns_campaign_report_days_positive"
            ),
        ]
        indexes = [models.Index(fields=["status", "send_at"], name="campaigns_due_idx")]

    def __str__(self) -> str:
        return self.name


class CampaignMember(models.Model):
    """One member of a campaign's audience, snapshot when it was sent: a target or in the holdout.
    ``done_at`` is set once the target's reward and message are given (the holdout is done at once)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="members")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    holdout = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True)
    points_given = models.PositiveIntegerField(default=0)
    coupon_id = models.BigIntegerField(null=True, blank=True)
    messages_queued = models.PositiveSmallIntegerField(default=0)
    messages_skipped = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["campaign", "member"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "member"], name="campaigns_member_unique"),
        ]
        indexes = [models.Index(fields=["campaign", "done_at"], name="campaigns_member_done_idx")]

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} member {self.member_id}"
