"""Reads of segments and campaigns, and the campaign report.

Report assumptions (written down because they decide the numbers):

- Revenue of a group = the payable total of the completed bills of its members completed in the window
  [sent_at, sent_at + report_days days), minus everything refunded on those bills. Integer fen.
- Per-member average = revenue // members (floor division, fen); 0 for an empty group.
- Uplift = target average − holdout average (fen per member); ``uplift_bp`` = that over the holdout
  average in basis points (floor), None when the holdout average is 0.
- Cost of rewards = the discounts the campaign's coupons took off the bills they were used on (used
  coupons only) + the points given valued at the offset rate 100 points = 1 元
  (``sales.DEFAULT_POINTS_PER_YUAN_OFFSET``; points given × 100 // rate, in fen, floor). Tiers and stores
  may set their own offset rates; the report uses the organisation default for a single figure.
- ROI (fen) = uplift × targets − cost of rewards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q, QuerySet, Sum

from meiye.campaigns.models import Campaign, CampaignMember, Segment
from meiye.core.errors import not_found
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.promotions.models import Coupon, CouponStatus
from meiye.sales.models import DEFAULT_POINTS_PER_YUAN_OFFSET, Bill, BillStatus, Refund

FEN_PER_YUAN = 100


def segments_list(actor: Actor) -> QuerySet[Segment]:
    actor.require(Perm.CAMPAIGNS_MANAGE)
    return Segment.objects.filter(organisation=actor.organisation).order_by("name", "pk")


def segment_get(actor: Actor, pk: int | str) -> Segment:
    try:
        return segments_list(actor).get(pk=int(pk))
    except (Segment.DoesNotExist, ValueError, TypeError):
        raise not_found("segment.not_found", "分群", "Segment") from None


def campaigns_list(actor: Actor) -> QuerySet[Campaign]:
    actor.require(Perm.CAMPAIGNS_MANAGE)
    return Campaign.objects.filter(organisation=actor.organisation).select_related("segment", "coupon_template")


def campaign_get(actor: Actor, pk: int | str) -> Campaign:
    try:
        return campaigns_list(actor).get(pk=int(pk))
    except (Campaign.DoesNotExist, ValueError, TypeError):
        raise not_found("campaign.not_found", "营销活动", "Campaign") from None


@dataclass(frozen=True)
class GroupRevenue:
    members: int
    revenue_fen: int

    @property
    def average_fen(self) -> int:
        return self.revenue_fen // self.members if self.members else 0


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: int
    window_days: int
    targets: int
    holdout: int
    done: int
    messages_queued: int
    messages_skipped: int
    coupons_issued: int
    coupons_redeemed: int
    coupon_discount_fen: int
    points_given: int
    points_cost_fen: int
    target: GroupRevenue
    control: GroupRevenue

    @property
    def cost_fen(self) -> int:
        return self.coupon_discount_fen + self.points_cost_fen

    @property
    def uplift_fen(self) -> int:
        return self.target.average_fen - self.control.average_fen

    @property
    def uplift_bp(self) -> int | None:
        if self.control.average_fen <= 0:
            return None
        return self.uplift_fen * 10_000 // self.control.average_fen

    @property
    def roi_fen(self) -> int:
        return self.uplift_fen * self.targets - self.cost_fen

    def as_dict(self) -> dict[str, object]:
        return {
            "campaign_id": self.campaign_id,
            "window_days": self.window_days,
            "targets": self.targets,
            "holdout": self.holdout,
            "done": self.done,
            "messages_queued": self.messages_queued,
            "messages_skipped": self.messages_skipped,
            "coupons_issued": self.coupons_issued,
            "coupons_redeemed": self.coupons_redeemed,
            "coupon_discount_fen": self.coupon_discount_fen,
            "points_given": self.points_given,
            "points_cost_fen": self.points_cost_fen,
            "cost_fen": self.cost_fen,
            "target_revenue_fen": self.target.revenue_fen,
            "target_average_fen": self.target.average_fen,
            "holdout_revenue_fen": self.control.revenue_fen,
            "holdout_average_fen": self.control.average_fen,
            "uplift_fen": self.uplift_fen,
            "uplift_bp": self.uplift_bp,
            "roi_fen": self.roi_fen,
        }


def _group_revenue(campaign: Campaign, *, holdout: bool) -> GroupRevenue:
    members = CampaignMember.objects.filter(campaign=campaign, holdout=holdout)
    count = members.count()
    if campaign.sent_at is None or not count:
        return GroupRevenue(members=count, revenue_fen=0)
    end = campaign.sent_at + timedelta(days=campaign.report_days)
    bills = Bill.objects.filter(
        organisation_id=campaign.organisation_id,
        status=BillStatus.COMPLETED,
        completed_at__gte=campaign.sent_at,
        completed_at__lt=end,
        member_id__in=members.values("member_id"),
    )
    paid = bills.aggregate(total=Sum("payable_total_fen"))["total"] or 0
    refunded = Refund.objects.filter(bill__in=bills).aggregate(total=Sum("amount_fen"))["total"] or 0
    return GroupRevenue(members=count, revenue_fen=paid - refunded)


def campaign_report(actor: Actor, campaign: Campaign) -> CampaignReport:
    """Reach, redemptions, revenue of targets and holdout in the window, uplift and ROI (see the module)."""
    actor.require(Perm.CAMPAIGNS_MANAGE)
    if campaign.organisation_id != actor.organisation.pk:
        raise not_found("campaign.not_found", "营销活动", "Campaign")
    targets = CampaignMember.objects.filter(campaign=campaign, holdout=False)
    reach = targets.aggregate(
        n=Count("pk"),
        done=Count("pk", filter=Q(done_at__isnull=False)),
        queued=Sum("messages_queued"),
        skipped=Sum("messages_skipped"),
        points=Sum("points_given"),
    )
    coupons = Coupon.objects.filter(organisation_id=campaign.organisation_id, source=f"campaign:{campaign.pk}")
    used = coupons.filter(status=CouponStatus.USED).aggregate(n=Count("pk"), off=Sum("discount_fen"))
    points = reach["points"] or 0
    return CampaignReport(
        campaign_id=campaign.pk,
        window_days=campaign.report_days,
        targets=reach["n"],
        holdout=CampaignMember.objects.filter(campaign=campaign, holdout=True).count(),
        done=reach["done"],
        messages_queued=reach["queued"] or 0,
        messages_skipped=reach["skipped"] or 0,
        coupons_issued=coupons.count(),
        coupons_redeemed=used["n"],
        coupon_discount_fen=used["off"] or 0,
        points_given=points,
        points_cost_fen=points * FEN_PER_YUAN // DEFAULT_POINTS_PER_YUAN_OFFSET,
        target=_group_revenue(campaign, holdout=False),
        control=_group_revenue(campaign, holdout=True),
    )
