"""Segments (会员分群) and campaigns (营销活动): HQ settings pages (``campaigns.manage``).

The segment form shows a live count: htmx posts the form to ``segment_count`` as the criteria change and
swaps in how many members they select now. Campaigns: list, create/edit (draft or scheduled), schedule,
send now (the same service as the job; re-sending changes nothing) and the report. ``urlpatterns`` here is
spliced into ``frontdesk.urls``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from meiye.campaigns.models import Campaign, CampaignStatus, Segment
from meiye.campaigns.segments import criteria_clean, segment_count
from meiye.campaigns.selectors import campaign_get, campaign_report, campaigns_list, segment_get, segments_list
from meiye.campaigns.services import (
    CampaignInput,
    campaign_input,
    campaign_save,
    campaign_schedule,
    campaign_send,
    campaign_unschedule,
    segment_save,
)
from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.frontdesk.forms_sales import MoneyField, add_sales_error
from meiye.frontdesk.views.common import get_actor, is_htmx, staff_view
from meiye.loyalty.selectors import tiers_list
from meiye.members.selectors import tags_list
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.org.selectors import stores_visible
from meiye.promotions.selectors import coupon_templates

_NUMBER = {"inputmode": "numeric", "autocomplete": "off"}
_DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
MONTHS = [("", "—"), *((str(m), str(m)) for m in range(1, 13))]

STATUS_BADGE = {
    CampaignStatus.DRAFT: "badge-inactive",
    CampaignStatus.SCHEDULED: "badge-yes",
    CampaignStatus.SENDING: "badge-yes",
    CampaignStatus.SENT: "badge-inactive",
}


def _days(label: Any) -> forms.IntegerField:
    return forms.IntegerField(
        label=label, required=False, min_value=1, max_value=3650, widget=forms.NumberInput(attrs=_NUMBER)
    )


# --- Segments ---------------------------------------------------------------------------------------------------


class SegmentForm(forms.Form):
    """A segment: its name and criteria (every one optional; all that are filled must hold)."""

    ALIASES = {
        "visits_min": "visits_count",
        "spend_min": "spend_min",
        "store_ids": "stores",
        "coupon_template_id": "coupon_template",
    }

    name = forms.CharField(label=gettext_lazy("名称"), max_length=60)
    tiers = forms.MultipleChoiceField(
        label=gettext_lazy("会员等级"), required=False, widget=forms.CheckboxSelectMultiple
    )
    birthday_month = forms.TypedChoiceField(
        label=gettext_lazy("生日月份"), required=False, choices=MONTHS, coerce=int, empty_value=None
    )
    dormant_days = _days(gettext_lazy("沉睡：N 天内无消费"))
    visited_within_days = _days(gettext_lazy("最近 N 天内到店过"))
    visited_before_days = _days(gettext_lazy("到店过，但最近 N 天未到店"))
    visits_days = _days(gettext_lazy("到店次数统计天数"))
    visits_count = forms.IntegerField(
        label=gettext_lazy("到店次数至少"),
        required=False,
        min_value=1,
        max_value=100_000,
        widget=forms.NumberInput(attrs=_NUMBER),
    )
    spend_days = _days(gettext_lazy("消费金额统计天数"))
    spend_min = MoneyField(label=gettext_lazy("消费金额至少（元，扣除退款）"), required=False)
    tags = forms.MultipleChoiceField(
        label=gettext_lazy("标签（任一）"), required=False, widget=forms.CheckboxSelectMultiple
    )
    stores = forms.MultipleChoiceField(
        label=gettext_lazy("归属门店（任一）"), required=False, widget=forms.CheckboxSelectMultiple
    )
    points_min = forms.IntegerField(
        label=gettext_lazy("积分至少"), required=False, widget=forms.NumberInput(attrs=_NUMBER)
    )
    points_max = forms.IntegerField(
        label=gettext_lazy("积分至多"), required=False, widget=forms.NumberInput(attrs=_NUMBER)
    )
    coupon_template = forms.TypedChoiceField(
        label=gettext_lazy("持有可用优惠券"), required=False, coerce=int, empty_value=None
    )

    def __init__(self, *args: Any, actor: Actor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tiers"].choices = [(t.code, t.name_zh) for t in tiers_list(actor.organisation)]  # type: ignore[attr-defined]
        self.fields["tags"].choices = [(t, t) for t in tags_list(actor)]  # type: ignore[attr-defined]
        self.fields["stores"].choices = [(str(s.pk), s.name) for s in stores_visible(actor).order_by("id")]  # type: ignore[attr-defined]
        self.fields["coupon_template"].choices = [  # type: ignore[attr-defined]
            ("", "—"),
            *((str(t.pk), t.name) for t in coupon_templates(actor)),
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("visits_days")) != bool(data.get("visits_count")):
            self.add_error("visits_count", _("到店次数需同时填写天数和次数。"))
        if bool(data.get("spend_days")) != (data.get("spend_min") is not None):
            self.add_error("spend_min", _("消费金额需同时填写天数和金额。"))
        return data

    def to_criteria(self) -> dict[str, Any]:
        d = self.cleaned_data
        criteria: dict[str, Any] = {
            "tiers": list(d.get("tiers") or []),
            "birthday_month": d.get("birthday_month"),
            "dormant_days": d.get("dormant_days"),
            "visited_within_days": d.get("visited_within_days"),
            "visited_before_days": d.get("visited_before_days"),
            "tags": list(d.get("tags") or []),
            "store_ids": [int(i) for i in d.get("stores") or []],
            "points_min": d.get("points_min"),
            "points_max": d.get("points_max"),
            "coupon_template_id": d.get("coupon_template"),
        }
        if d.get("visits_days") and d.get("visits_count"):
            criteria["visits_min"] = {"days": d["visits_days"], "count": d["visits_count"]}
        if d.get("spend_days") and d.get("spend_min") is not None:
            criteria["spend_min"] = {"days": d["spend_days"], "fen": d["spend_min"].fen}
        return {k: v for k, v in criteria.items() if v not in (None, [])}

    @staticmethod
    def initial_for(segment: Segment) -> dict[str, Any]:
        c = segment.criteria
        initial: dict[str, Any] = {
            "name": segment.name,
            "tiers": c.get("tiers", []),
            "birthday_month": c.get("birthday_month"),
            "dormant_days": c.get("dormant_days"),
            "visited_within_days": c.get("visited_within_days"),
            "visited_before_days": c.get("visited_before_days"),
            "tags": c.get("tags", []),
            "stores": [str(i) for i in c.get("store_ids", [])],
            "points_min": c.get("points_min"),
            "points_max": c.get("points_max"),
            "coupon_template": c.get("coupon_template_id"),
        }
        if "visits_min" in c:
            initial.update(visits_days=c["visits_min"]["days"], visits_count=c["visits_min"]["count"])
        if "spend_min" in c:
            initial.update(spend_days=c["spend_min"]["days"], spend_min=Money(c["spend_min"]["fen"]))
        return initial


def _page(request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    return render(request, template, {"tab": "campaigns", **context}, status=status)


@staff_view(Perm.CAMPAIGNS_MANAGE)
@require_GET
def segment_list(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    rows = [{"segment": s, "count": segment_count(actor=actor, criteria=s.criteria)} for s in segments_list(actor)]
    return _page(request, "frontdesk/campaigns/segments.html", {"rows": rows, "subtab": "segments"})


@staff_view(Perm.CAMPAIGNS_MANAGE)
@require_http_methods(["GET", "POST"])
def segment_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    actor = get_actor(request)
    existing = segment_get(actor, pk) if pk is not None else None
    initial = SegmentForm.initial_for(existing) if existing is not None else {}
    form = SegmentForm(request.POST or None, initial=initial, actor=actor)
    count = segment_count(actor=actor, criteria=existing.criteria) if existing is not None else None
    if request.method == "POST" and form.is_valid():
        try:
            saved = segment_save(
                actor=actor, name=form.cleaned_data["name"], criteria=form.to_criteria(), segment=existing
            )
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases=SegmentForm.ALIASES)
        else:
            messages.success(request, _("分群 %(name)s 已保存。") % {"name": saved.name})
            return redirect("frontdesk:segment_list")
    context = {"form": form, "existing": existing, "count": count, "subtab": "segments"}
    return _page(request, "frontdesk/campaigns/segment_form.html", context, status=400 if form.errors else 200)


@staff_view(Perm.CAMPAIGNS_MANAGE)
@require_POST
def segment_live_count(request: HttpRequest) -> HttpResponse:
    """htmx: how many members the criteria typed so far select (the name is not needed)."""
    actor = get_actor(request)
    data = request.POST.copy()
    data["name"] = data.get("name") or "-"
    form = SegmentForm(data, actor=actor)
    count: int | None = None
    error = ""
    if form.is_valid():
        try:
            count = segment_count(actor=actor, criteria=criteria_clean(actor=actor, criteria=form.to_criteria()))
        except ApplicationError as exc:
            error = exc.message
    else:
        error = _("条件不完整或格式不正确。")
    response = render(request, "frontdesk/campaigns/_count.html", {"count": count, "error": error})
    if not is_htmx(request):
        response["Cache-Control"] = "no-store"
    return response


# --- Campaigns --------------------------------------------------------------------------------------------------


class CampaignForm(forms.Form):
    ALIASES = {"segment_id": "segment", "coupon_template_id": "coupon_template", "holdout_bp": "holdout_percent"}

    name = forms.CharField(label=gettext_lazy("名称"), max_length=60)
    segment = forms.TypedChoiceField(label=gettext_lazy("分群"), coerce=int)
    points = forms.IntegerField(
        label=gettext_lazy("赠送积分"),
        required=False,
        min_value=0,
        max_value=1_000_000,
        widget=forms.NumberInput(attrs=_NUMBER),
    )
    coupon_template = forms.TypedChoiceField(
        label=gettext_lazy("赠送优惠券"), required=False, coerce=int, empty_value=None
    )
    subject_zh = forms.CharField(label=gettext_lazy("标题（中文）"), max_length=60, required=False)
    subject_en = forms.CharField(label=gettext_lazy("标题（英文）"), max_length=80, required=False)
    message_zh = forms.CharField(
        label=gettext_lazy("消息（中文）"), max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )
    message_en = forms.CharField(
        label=gettext_lazy("消息（英文）"), max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    send_at = forms.DateTimeField(label=gettext_lazy("发送时间"), required=False, widget=_DATETIME)
    holdout_percent = forms.IntegerField(
        label=gettext_lazy("对照组比例（%）"),
        required=False,
        min_value=0,
        max_value=99,
        initial=10,
        widget=forms.NumberInput(attrs=_NUMBER),
        help_text=gettext_lazy("对照组不发奖励和消息，用于对比效果"),
    )
    report_days = forms.IntegerField(
        label=gettext_lazy("效果统计天数"),
        min_value=1,
        max_value=365,
        initial=30,
        widget=forms.NumberInput(attrs=_NUMBER),
    )

    def __init__(self, *args: Any, actor: Actor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["segment"].choices = [("", "—"), *((str(s.pk), s.name) for s in segments_list(actor))]  # type: ignore[attr-defined]
        self.fields["coupon_template"].choices = [  # type: ignore[attr-defined]
            ("", "—"),
            *((str(t.pk), t.name) for t in coupon_templates(actor).filter(is_active=True)),
        ]

    @staticmethod
    def initial_for(data: CampaignInput) -> dict[str, Any]:
        send_at = timezone.localtime(data.send_at) if data.send_at else None
        return {
            **data.__dict__,
            "segment": data.segment_id,
            "coupon_template": data.coupon_template_id,
            "holdout_percent": data.holdout_bp // 100,
            "send_at": send_at,
        }

    def to_input(self) -> CampaignInput:
        d = self.cleaned_data
        send_at: datetime | None = d["send_at"]
        return CampaignInput(
            name=d["name"],
            segment_id=d["segment"],
            points=d["points"] or 0,
            coupon_template_id=d["coupon_template"],
            subject_zh=d["subject_zh"],
            subject_en=d["subject_en"],
            message_zh=d["message_zh"],
            message_en=d["message_en"],
            send_at=send_at,
            holdout_bp=(d["holdout_percent"] or 0) * 100,
            report_days=d["report_days"],
        )


@staff_view(Perm.CAMPAIGNS_MANAGE)
@require_GET
def campaign_list(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    rows = [{"campaign": c, "badge": STATUS_BADGE[CampaignStatus(c.status)]} for c in campaigns_list(actor)]
    return _page(request, "frontdesk/campaigns/campaigns.html", {"rows": rows, "subtab": "campaigns"})


@staff_view(Perm.CAMPAIGNS_MANAGE)
@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    actor = get_actor(request)
    existing = campaign_get(actor, pk) if pk is not None else None
    if existing is not None and existing.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        return redirect("frontdesk:campaign_report", pk=existing.pk)
    initial = CampaignForm.initial_for(campaign_input(existing)) if existing is not None else {}
    form = CampaignForm(request.POST or None, initial=initial, actor=actor)
    if request.method == "POST" and form.is_valid():
        try:
            saved = campaign_save(actor=actor, data=form.to_input(), campaign=existing)
            if request.POST.get("schedule") and saved.status == CampaignStatus.DRAFT:
                saved = campaign_schedule(actor=actor, campaign=saved)
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases=CampaignForm.ALIASES)
        else:
            messages.success(request, _("营销活动 %(name)s 已保存。") % {"name": saved.name})
            return redirect("frontdesk:campaign_list")
    context = {"form": form, "existing": existing, "subtab": "campaigns"}
    return _page(request, "frontdesk/campaigns/campaign_form.html", context, status=400 if form.errors else 200)


def _act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    actor = get_actor(request)
    campaign: Campaign = campaign_get(actor, pk)
    try:
        if action == "schedule":
            campaign_schedule(actor=actor, campaign=campaign)
            messages.success(request, _("已排期。"))
        elif action == "unschedule":
            campaign_unschedule(actor=actor, campaign=campaign)
            messages.success(request, _("已取消排期。"))
        else:
            result = campaign_send(actor=actor, campaign=campaign)
            messages.success(
                request,
                _("已发送：目标会员 %(targets)s 人，对照组 %(holdout)s 人。")
                % {"targets": result.targets, "holdout": result.holdout},
            )
            return redirect("frontdesk:campaign_report", pk=campaign.pk)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("frontdesk:campaign_list")


@staff_view(Perm.CAMPAIGNS_MANAGE)
@require_POST
def campaign_schedule_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, "schedule")


@staff_view(Perm.CAMPAIGNS_MANAGE)
@require_POST
def campaign_unschedule_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, "unschedule")


@staff_view(Perm.CAMPAIGNS_MANAGE)
@require_POST
def campaign_send_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, "send")


@staff_view(Perm.CAMPAIGNS_MANAGE)
@require_GET
def campaign_report_view(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    campaign = campaign_get(actor, pk)
    report = campaign_report(actor, campaign)
    context = {"campaign": campaign, "report": report, "subtab": "campaigns"}
    return _page(request, "frontdesk/campaigns/report.html", context)


urlpatterns = [
    path("settings/segments/", segment_list, name="segment_list"),
    path("settings/segments/new/", segment_edit, name="segment_create"),
    path("settings/segments/count/", segment_live_count, name="segment_count"),
    path("settings/segments/<int:pk>/", segment_edit, name="segment_edit"),
    path("settings/campaigns/", campaign_list, name="campaign_list"),
    path("settings/campaigns/new/", campaign_edit, name="campaign_create"),
    path("settings/campaigns/<int:pk>/", campaign_edit, name="campaign_edit"),
    path("settings/campaigns/<int:pk>/schedule/", campaign_schedule_view, name="campaign_schedule"),
    path("settings/campaigns/<int:pk>/unschedule/", campaign_unschedule_view, name="campaign_unschedule"),
    path("settings/campaigns/<int:pk>/send/", campaign_send_view, name="campaign_send"),
    path("settings/campaigns/<int:pk>/report/", campaign_report_view, name="campaign_report"),
]
