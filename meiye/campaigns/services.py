"""Writes of segments and campaigns; the send (``campaign_send``) and the due sends (``campaigns_send_due``).

Sending snapshots the segment's audience into ``CampaignMember`` rows, splits off the holdout
deterministically (``in_holdout``), then gives each target her reward and message in her own transaction:
points (``loyalty.points_earn``, source ``campaign:<id>``), a coupon (``promotions.coupon_issue``) and the
``campaign`` message (``notify.notify_event``; marketing consent and quiet hours are notify's business).
Every step has an idempotency key per campaign and member, and a member is marked done in the same
transaction, so a run that stopped half-way is simply run again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.campaigns.models import BASIS_POINTS, Campaign, CampaignMember, CampaignStatus, Segment
from meiye.campaigns.segments import criteria_clean, segment_members
from meiye.core.errors import ApplicationError, Conflict, ValidationFailed, not_found
from meiye.loyalty.services import points_earn
from meiye.members.models import Member, MemberStatus
from meiye.notify.events import CAMPAIGN
from meiye.notify.models import MessageStatus
from meiye.notify.services import notify_event
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.promotions.models import CouponTemplate
from meiye.promotions.services import coupon_issue

log = logging.getLogger(__name__)

MAX_POINTS = 1_000_000
MAX_REPORT_DAYS = 365


def _invalid(field: str, zh: str, en: str) -> ValidationFailed:
    return ValidationFailed("campaign.invalid", zh=zh, en=en, field=field)


def _require(actor: Actor) -> None:
    actor.require(Perm.CAMPAIGNS_MANAGE)


def _name(value: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > 60:
        raise _invalid("name", "名称须为 1 到 60 个字符。", "The name must be 1 to 60 characters.")
    return value


# --- Segments ---------------------------------------------------------------------------------------------------


def segment_save(*, actor: Actor, name: str, criteria: Any, segment: Segment | None = None) -> Segment:
    """Create (``segment`` None) or update a segment; the criteria are validated by ``criteria_clean``."""
    _require(actor)
    name = _name(name)
    cleaned = criteria_clean(actor=actor, criteria=criteria)
    if segment is not None and segment.organisation_id != actor.organisation.pk:
        raise not_found("segment.not_found", "分群", "Segment")
    clash = Segment.objects.filter(organisation=actor.organisation, name=name)
    if segment is not None:
        clash = clash.exclude(pk=segment.pk)
    if clash.exists():
        raise Conflict("segment.name_taken", zh=f"已有分群“{name}”。", en=f"A segment “{name}” exists.", field="name")
    with transaction.atomic():
        if segment is None:
            segment = Segment.objects.create(
                organisation=actor.organisation, name=name, criteria=cleaned, created_by=actor.staff
            )
            action = "campaigns.segment_create"
        else:
            segment = Segment.objects.select_for_update().get(pk=segment.pk)
            segment.name, segment.criteria = name, cleaned
            segment.save(update_fields=["name", "criteria", "updated_at"])
            action = "campaigns.segment_update"
        audit_record(actor=actor, action=action, obj=segment, detail={"name": name, "criteria": cleaned})
    return segment


def segment_delete(*, actor: Actor, segment: Segment) -> None:
    """Delete a segment no campaign uses."""
    _require(actor)
    if segment.organisation_id != actor.organisation.pk:
        raise not_found("segment.not_found", "分群", "Segment")
    if segment.campaigns.exists():
        raise Conflict("segment.in_use", zh="已有营销活动使用该分群。", en="A campaign uses this segment.")
    with transaction.atomic():
        audit_record(actor=actor, action="campaigns.segment_delete", obj=segment, detail={"name": segment.name})
        segment.delete()


# --- Campaigns --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignInput:
    name: str
    segment_id: int
    points: int = 0
    coupon_template_id: int | None = None
    subject_zh: str = ""
    subject_en: str = ""
    message_zh: str = ""
    message_en: str = ""
    send_at: datetime | None = None
    holdout_bp: int = 0
    report_days: int = 30


def campaign_input(campaign: Campaign) -> CampaignInput:
    return CampaignInput(
        name=campaign.name,
        segment_id=campaign.segment_id,
        points=campaign.points,
        coupon_template_id=campaign.coupon_template_id,
        subject_zh=campaign.subject_zh,
        subject_en=campaign.subject_en,
        message_zh=campaign.message_zh,
        message_en=campaign.message_en,
        send_at=campaign.send_at,
        holdout_bp=campaign.holdout_bp,
        report_days=campaign.report_days,
    )


def _whole(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(
            field, f"{field} 须为 {low} 到 {high} 的整数。", f"{field} must be a whole number {low} to {high}."
        )
    return value


def _check_input(actor: Actor, data: CampaignInput) -> dict[str, Any]:
    segment = Segment.objects.filter(organisation=actor.organisation, pk=data.segment_id).first()
    if segment is None:
        raise _invalid("segment", "请选择分群。", "Choose a segment.")
    template = None
    if data.coupon_template_id is not None:
        template = CouponTemplate.objects.filter(organisation=actor.organisation, pk=data.coupon_template_id).first()
        if template is None:
            raise _invalid("coupon_template", "优惠券模板不存在。", "No such coupon template.")
    points = _whole("points", data.points, 0, MAX_POINTS)
    message_zh, message_en = data.message_zh.strip(), data.message_en.strip()
    if not message_zh:
        raise _invalid("message_zh", "请填写中文消息。", "Write the message in Chinese.")
    if len(message_zh) > 500 or len(message_en) > 1000:
        raise _invalid("message_zh", "消息过长。", "The message is too long.")
    if len(data.subject_zh.strip()) > 60 or len(data.subject_en.strip()) > 80:
        raise _invalid("subject_zh", "标题过长。", "The subject is too long.")
    return {
        "name": _name(data.name),
        "segment": segment,
        "points": points,
        "coupon_template": template,
        "subject_zh": data.subject_zh.strip(),
        "subject_en": data.subject_en.strip(),
        "message_zh": message_zh,
        "message_en": message_en,
        "send_at": data.send_at,
        "holdout_bp": _whole("holdout_bp", data.holdout_bp, 0, BASIS_POINTS - 1),
        "report_days": _whole("report_days", data.report_days, 1, MAX_REPORT_DAYS),
    }


def campaign_save(*, actor: Actor, data: CampaignInput, campaign: Campaign | None = None) -> Campaign:
    """Create a draft or change a campaign not yet sent (a scheduled one stays scheduled)."""
    _require(actor)
    values = _check_input(actor, data)
    with transaction.atomic():
        if campaign is None:
            campaign = Campaign.objects.create(organisation=actor.organisation, created_by=actor.staff, **values)
            action = "campaigns.campaign_create"
        else:
            campaign = _lock(actor, campaign)
            if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
                raise _already_sent()
            for field, value in values.items():
                setattr(campaign, field, value)
            if campaign.status == CampaignStatus.SCHEDULED and campaign.send_at is None:
                campaign.status = CampaignStatus.DRAFT
            campaign.save()
            action = "campaigns.campaign_update"
        audit_record(actor=actor, action=action, obj=campaign, detail={"name": campaign.name})
    return campaign


def _lock(actor: Actor, campaign: Campaign) -> Campaign:
    locked = Campaign.objects.select_for_update().filter(organisation=actor.organisation, pk=campaign.pk).first()
    if locked is None:
        raise not_found("campaign.not_found", "营销活动", "Campaign")
    return locked


def _already_sent() -> Conflict:
    return Conflict(
        "campaign.already_sent", zh="营销活动已发送，不能再修改。", en="The campaign was sent; it cannot change."
    )


def campaign_schedule(*, actor: Actor, campaign: Campaign, send_at: datetime | None = None) -> Campaign:
    """Draft → scheduled, to be sent at ``send_at`` (default: the campaign's own) by the due-send job."""
    _require(actor)
    with transaction.atomic():
        campaign = _lock(actor, campaign)
        if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            raise _already_sent()
        when = send_at or campaign.send_at
        if when is None:
            raise _invalid("send_at", "请填写发送时间。", "Set the time to send.")
        campaign.send_at, campaign.status = when, CampaignStatus.SCHEDULED
        campaign.save(update_fields=["send_at", "status", "updated_at"])
        audit_record(
            actor=actor, action="campaigns.campaign_schedule", obj=campaign, detail={"send_at": when.isoformat()}
        )
    return campaign


def campaign_unschedule(*, actor: Actor, campaign: Campaign) -> Campaign:
    """Scheduled → draft."""
    _require(actor)
    with transaction.atomic():
        campaign = _lock(actor, campaign)
        if campaign.status != CampaignStatus.SCHEDULED:
            raise Conflict("campaign.not_scheduled", zh="营销活动未排期。", en="The campaign is not scheduled.")
        campaign.status = CampaignStatus.DRAFT
        campaign.save(update_fields=["status", "updated_at"])
        audit_record(actor=actor, action="campaigns.campaign_unschedule", obj=campaign)
    return campaign


# --- Sending ----------------------------------------------------------------------------------------------------


def in_holdout(campaign_id: int, member_id: int, holdout_bp: int) -> bool:
    """Whether a member falls in the holdout: SHA-256 of "<campaign>:<member>" read as a number, modulo
    10,000, below ``holdout_bp``. Deterministic, so a re-run (or a report) puts her in the same group."""
    if holdout_bp <= 0:
        return False
    digest = hashlib.sha256(f"{campaign_id}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BASIS_POINTS < holdout_bp


@dataclass(frozen=True)
class SendResult:
    campaign_id: int
    targets: int
    holdout: int
    rewarded_now: int  # members done by this run
    pending: int  # targets still to do (0 once the campaign is sent)


def campaign_snapshot(*, actor: Actor, campaign: Campaign, now: datetime) -> Campaign:
    """Draft/scheduled → sending: the audience at ``now`` becomes the campaign's members (targets and
    holdout); holdout members are done at once. A campaign already sending or sent is returned unchanged."""
    with transaction.atomic():
        campaign = _lock(actor, campaign)
        if campaign.status in (CampaignStatus.SENDING, CampaignStatus.SENT):
            return campaign
        segment = campaign.segment
        member_ids = list(segment_members(actor=actor, criteria=segment.criteria, now=now).values_list("pk", flat=True))
        rows = []
        for member_id in member_ids:
            holdout = in_holdout(campaign.pk, member_id, campaign.holdout_bp)
            rows.append(
                CampaignMember(
                    campaign=campaign, member_id=member_id, holdout=holdout, done_at=now if holdout else None
                )
            )
        CampaignMember.objects.bulk_create(rows, batch_size=1000)
        campaign.status, campaign.sent_at = CampaignStatus.SENDING, now
        campaign.save(update_fields=["status", "sent_at", "updated_at"])
        audit_record(
            actor=actor,
            action="campaigns.campaign_snapshot",
            obj=campaign,
            detail={"members": len(rows), "holdout": sum(1 for r in rows if r.holdout)},
        )
    return campaign


def campaign_pending(campaign: Campaign) -> list[int]:
    """Ids of the campaign's targets not yet done, in member order."""
    return list(
        CampaignMember.objects.filter(campaign=campaign, holdout=False, done_at__isnull=True)
        .order_by("member_id")
        .values_list("pk", flat=True)
    )


def campaign_send(
    *, actor: Actor, campaign: Campaign, now: datetime | None = None, progress: Callable[[int], None] | None = None
) -> SendResult:
    """Send a campaign now (idempotent and resumable): snapshot its audience if not done yet, give every
    target not yet done her reward and message, then mark it sent. A sent campaign changes nothing."""
    _require(actor)
    now = now or timezone.now()
    if campaign.organisation_id != actor.organisation.pk:
        raise not_found("campaign.not_found", "营销活动", "Campaign")
    campaign = campaign_snapshot(actor=actor, campaign=campaign, now=now)
    done = 0
    if campaign.status == CampaignStatus.SENDING:
        for row_id in campaign_pending(campaign):
            if _send_one(actor, campaign, row_id, now):
                done += 1
            if progress is not None:
                progress(1)
        with transaction.atomic():
            locked = _lock(actor, campaign)
            left = CampaignMember.objects.filter(campaign=locked, done_at__isnull=True).exists()
            if locked.status == CampaignStatus.SENDING and not left:
                locked.status, locked.finished_at = CampaignStatus.SENT, now
                locked.save(update_fields=["status", "finished_at", "updated_at"])
                audit_record(actor=actor, action="campaigns.campaign_sent", obj=locked, detail={"rewarded": done})
            campaign = locked
    counts = CampaignMember.objects.filter(campaign=campaign)
    return SendResult(
        campaign_id=campaign.pk,
        targets=counts.filter(holdout=False).count(),
        holdout=counts.filter(holdout=True).count(),
        rewarded_now=done,
        pending=counts.filter(done_at__isnull=True).count(),
    )


def _send_one(actor: Actor, campaign: Campaign, row_id: int, now: datetime) -> bool:
    """One target's points, coupon and message, and her row marked done, in one transaction. A member no
    longer active is marked done with nothing given; a refused coupon (limit reached, template stopped) is
    logged and the rest still given."""
    source = f"campaign:{campaign.pk}"
    with transaction.atomic():
        row = CampaignMember.objects.select_for_update().filter(pk=row_id, done_at__isnull=True).first()
        if row is None:
            return False
        member = Member.objects.select_related("home_store").get(pk=row.member_id)
        if member.status == MemberStatus.ACTIVE:
            key = f"campaign:{campaign.pk}:{member.pk}"
            if campaign.points:
                points_earn(
                    actor=actor,
                    member=member,
                    points=campaign.points,
                    source_code=source,
                    reference_type="campaign",
                    reference_id=str(campaign.pk),
                    idempotency_key=f"{key}:points",
                )
                row.points_given = campaign.points
            if campaign.coupon_template is not None:
                try:
                    with transaction.atomic():
                        coupon = coupon_issue(
                            actor=actor,
                            member=member,
                            template=campaign.coupon_template,
                            source=source,
                            idempotency_key=f"{key}:coupon",
                            on=timezone.localdate(now),
                        )
                    row.coupon_id = coupon.pk
                except ApplicationError as exc:
                    log.info("campaign %s: no coupon for member %s: %s", campaign.pk, member.pk, exc.code)
            messages = notify_event(
                actor=actor,
                member=member,
                event=CAMPAIGN,
                context={
                    "text": {"zh-hans": campaign.message_zh, "en": campaign.message_en or campaign.message_zh},
                    "subject": {"zh-hans": campaign.subject_zh, "en": campaign.subject_en or campaign.subject_zh},
                },
                idempotency_key=f"{key}:message",
                now=now,
            )
            row.messages_skipped = sum(1 for m in messages if m.status == MessageStatus.SKIPPED)
            row.messages_queued = len(messages) - row.messages_skipped
        row.done_at = now
        row.save(update_fields=["points_given", "coupon_id", "messages_queued", "messages_skipped", "done_at"])
    return True


def campaigns_due(*, organisation_id: int, now: datetime) -> list[Campaign]:
    """Scheduled campaigns whose time has come, and campaigns a stopped run left half-sent."""
    due = Q(status=CampaignStatus.SCHEDULED, send_at__lte=now) | Q(status=CampaignStatus.SENDING)
    return list(Campaign.objects.filter(due, organisation_id=organisation_id).order_by("pk"))


def campaigns_send_due(
    *, actor: Actor, now: datetime, progress: Callable[[int], None] | None = None
) -> list[SendResult]:
    """Send every due campaign of the actor's organisation (the job's service)."""
    return [
        campaign_send(actor=actor, campaign=c, now=now, progress=progress)
        for c in campaigns_due(organisation_id=actor.organisation.pk, now=now)
    ]
