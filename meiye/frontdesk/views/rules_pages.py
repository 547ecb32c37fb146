"""Earning rules (积分规则) at the front desk: the rules on the settings pages (HQ, ``catalog.manage``), a
member's check-in (签到, the button on the member page, ``sales.checkout``), and the members flagged for
earning more than the daily limit (store managers, finance and HQ, ``money.adjust``; store-scoped; read only:
a flag has no "reviewed" state).

Multipliers are typed as "2" (×2, sent as 20,000 basis points), the referral spend threshold in 元. Every rule
is the service's (``loyalty.rules``); its refusal is shown beside the field it names and the form keeps what
was typed. ``urlpatterns`` here is spliced into ``frontdesk.urls``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from meiye.core.errors import ApplicationError
from meiye.core.money import Money
from meiye.frontdesk.forms_sales import MoneyField, add_sales_error
from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.frontdesk.views.tier_pages import MultiplierField
from meiye.loyalty.models import CheckIn, EarningFlag
from meiye.loyalty.rules import (
    BASIS_POINTS,
    RulesConfig,
    checkin_record,
    earning_flag_review,
    rules_config,
    rules_settings_save,
)
from meiye.loyalty.selectors import ExpirySettings, expiry_settings, local_today, points_lifetime_months
from meiye.loyalty.services import loyalty_expiry_settings_set
from meiye.members.selectors import member_get, members_visible
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.promotions.selectors import coupon_templates

FLAGS_PAGE = 200
_NUMBER = {"inputmode": "numeric", "autocomplete": "off", "class": "short"}


def _int(label: Any, *, required: bool = True, help_text: Any = "") -> forms.IntegerField:
    return forms.IntegerField(
        label=label, required=required, help_text=help_text, widget=forms.NumberInput(attrs=_NUMBER)
    )


class RulesForm(forms.Form):
    """The organisation's earning rules. Field names are the service's, less the unit suffixes."""

    # The service names these fields; the form shows them beside its own.
    ALIASES = {
        "birthday_multiplier_bp": "birthday_multiplier",
        "member_day_multiplier_bp": "member_day_multiplier",
        "dormant_coupon_template_id": "dormant_coupon_template",
        "referral_spend_threshold_fen": "referral_spend_threshold",
        "referral_coupon_template_id": "referral_coupon_template",
    }
    GROUPS: list[tuple[Any, list[str]]] = [
        (gettext_lazy("生日"), ["birthday_multiplier", "birthday_gift_points"]),
        (gettext_lazy("会员日"), ["member_day", "member_day_multiplier"]),
        (gettext_lazy("签到"), ["checkin_points", "checkin_streak_days", "checkin_streak_bonus"]),
        (gettext_lazy("沉睡唤醒"), ["dormant_days", "dormant_points", "dormant_coupon_template"]),
        (
            gettext_lazy("推荐"),
            [
                "referral_referrer_points",
                "referral_referee_points",
                "referral_refund_window_days",
                "referral_spend_threshold",
                "referral_coupon_template",
            ],
        ),
        (gettext_lazy("风控"), ["daily_earning_limit"]),
    ]

    birthday_multiplier = MultiplierField(
        label=gettext_lazy("生日月积分倍数"), help_text=gettext_lazy("如 2 表示生日当月消费积分 ×2；1 为不加倍")
    )
    birthday_gift_points = _int(gettext_lazy("生日礼积分"), help_text=gettext_lazy("生日当天赠送，每年一次；0 为不送"))
    member_day = _int(
        gettext_lazy("会员日（每月几号）"), required=False, help_text=gettext_lazy("1 到 28；留空为没有会员日")
    )
    member_day_multiplier = MultiplierField(label=gettext_lazy("会员日积分倍数"))
    checkin_points = _int(gettext_lazy("签到积分"), help_text=gettext_lazy("每天一次；0 为关闭签到"))
    checkin_streak_days = _int(gettext_lazy("连续签到天数"))
    checkin_streak_bonus = _int(gettext_lazy("连续签到奖励"), help_text=gettext_lazy("连续签到满上述天数时额外赠送"))
    dormant_days = _int(
        gettext_lazy("沉睡天数"), required=False, help_text=gettext_lazy("超过此天数未到店即唤醒；留空为关闭")
    )
    dormant_points = _int(gettext_lazy("唤醒积分"))
    dormant_coupon_template = forms.TypedChoiceField(
        label=gettext_lazy("唤醒优惠券"), required=False, coerce=int, empty_value=None
    )
    referral_referrer_points = _int(gettext_lazy("推荐人积分"))
    referral_referee_points = _int(gettext_lazy("被推荐人积分"))
    referral_refund_window_days = _int(
        gettext_lazy("推荐退款期（天）"), help_text=gettext_lazy("被推荐人在此期限内全额退款则收回推荐积分")
    )
    referral_spend_threshold = MoneyField(
        label=gettext_lazy("被推荐人累计消费门槛（元）"),
        required=False,
        help_text=gettext_lazy("达到后推荐人获得优惠券；留空为不送"),
    )
    referral_coupon_template = forms.TypedChoiceField(
        label=gettext_lazy("推荐奖励优惠券"), required=False, coerce=int, empty_value=None
    )
    daily_earning_limit = _int(
        gettext_lazy("每日积分复核上限"),
        required=False,
        help_text=gettext_lazy("会员一天获得的积分超过此数时标记待复核（不拒绝）；留空为不标记"),
    )

    def __init__(self, *args: Any, templates: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "—"), *templates]
        self.fields["dormant_coupon_template"].choices = choices  # type: ignore[attr-defined]
        self.fields["referral_coupon_template"].choices = choices  # type: ignore[attr-defined]

    def _multiplier(self, name: str) -> int:
        value: int = self.cleaned_data[name]
        if value < BASIS_POINTS:
            raise forms.ValidationError(_("倍数：需要 1 到 10 之间的数，1 为不加倍。"), code="min_value")
        return value

    def clean_birthday_multiplier(self) -> int:
        return self._multiplier("birthday_multiplier")

    def clean_member_day_multiplier(self) -> int:
        return self._multiplier("member_day_multiplier")

    def groups(self) -> list[tuple[Any, list[forms.BoundField]]]:
        return [(legend, [self[name] for name in names]) for legend, names in self.GROUPS]

    @staticmethod
    def initial_for(config: RulesConfig) -> dict[str, Any]:
        return {
            "birthday_multiplier": config.birthday_multiplier_bp,
            "birthday_gift_points": config.birthday_gift_points,
            "member_day": config.member_day,
            "member_day_multiplier": config.member_day_multiplier_bp,
            "checkin_points": config.checkin_points,
            "checkin_streak_days": config.checkin_streak_days,
            "checkin_streak_bonus": config.checkin_streak_bonus,
            "dormant_days": config.dormant_days,
            "dormant_points": config.dormant_points,
            "dormant_coupon_template": config.dormant_coupon_template_id,
            "referral_referrer_points": config.referral_referrer_points,
            "referral_referee_points": config.referral_referee_points,
            "referral_refund_window_days": config.referral_refund_window_days,
            "referral_spend_threshold": (
                Money(config.referral_spend_threshold_fen) if config.referral_spend_threshold_fen is not None else None
            ),
            "referral_coupon_template": config.referral_coupon_template_id,
            "daily_earning_limit": config.daily_earning_limit,
        }

    def save_kwargs(self) -> dict[str, Any]:
        """The ``rules_settings_save`` keyword arguments."""
        d = self.cleaned_data
        threshold: Money | None = d["referral_spend_threshold"]
        return {
            "birthday_multiplier_bp": d["birthday_multiplier"],
            "birthday_gift_points": d["birthday_gift_points"],
            "member_day": d["member_day"],
            "member_day_multiplier_bp": d["member_day_multiplier"],
            "checkin_points": d["checkin_points"],
            "checkin_streak_days": d["checkin_streak_days"],
            "checkin_streak_bonus": d["checkin_streak_bonus"],
            "dormant_days": d["dormant_days"],
            "dormant_points": d["dormant_points"],
            "dormant_coupon_template_id": d["dormant_coupon_template"],
            "referral_referrer_points": d["referral_referrer_points"],
            "referral_referee_points": d["referral_referee_points"],
            "referral_refund_window_days": d["referral_refund_window_days"],
            "referral_spend_threshold_fen": threshold.fen if threshold is not None else None,
            "referral_coupon_template_id": d["referral_coupon_template"],
            "daily_earning_limit": d["daily_earning_limit"],
        }


class ExpiryForm(forms.Form):
    """How long points last, the reminder before they expire, and an optional yearly clearing date (S-08)."""

    points_lifetime_months = _int(
        gettext_lazy("积分有效期（月）"), help_text=gettext_lazy("会员等级另有规定时以等级为准")
    )
    expiry_reminder_days = _int(gettext_lazy("到期提醒提前天数"), help_text=gettext_lazy("0 为不提醒"))
    clearing_month = _int(gettext_lazy("年度清零（月）"), required=False, help_text=gettext_lazy("留空为不清零"))
    clearing_day = _int(gettext_lazy("年度清零（日）"), required=False)

    @staticmethod
    def initial_for(organisation_id: int) -> dict[str, Any]:
        settings: ExpirySettings = expiry_settings(organisation_id)
        return {
            "points_lifetime_months": points_lifetime_months(organisation_id),
            "expiry_reminder_days": settings.reminder_days,
            "clearing_month": settings.clearing_month,
            "clearing_day": settings.clearing_day,
        }


def _templates(actor: Actor) -> list[tuple[int, str]]:
    return [(t.pk, t.name) for t in coupon_templates(actor).order_by("name", "pk")]


@staff_view(Perm.CATALOG_MANAGE)
@require_http_methods(["GET", "POST"])
def rules_settings(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    form = RulesForm(
        request.POST or None,
        initial=RulesForm.initial_for(rules_config(actor.organisation.pk)),
        templates=_templates(actor),
    )
    if request.method == "POST" and form.is_valid():
        try:
            rules_settings_save(actor=actor, **form.save_kwargs())
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases=RulesForm.ALIASES)
        else:
            messages.success(request, _("积分规则已保存。"))
            return redirect("frontdesk:rules_settings")
    expiry = ExpiryForm(initial=ExpiryForm.initial_for(actor.organisation.pk))
    status = 400 if form.errors else 200
    context = {"tab": "rules", "form": form, "expiry_form": expiry}
    return render(request, "frontdesk/rules/settings.html", context, status=status)


@staff_view(Perm.CATALOG_MANAGE)
@require_POST
def rules_expiry_settings(request: HttpRequest) -> HttpResponse:
    """The expiry part of the rules page, a form of its own (``loyalty_expiry_settings_set``)."""
    actor = get_actor(request)
    expiry = ExpiryForm(request.POST)
    if expiry.is_valid():
        try:
            loyalty_expiry_settings_set(actor=actor, **expiry.cleaned_data)
        except ApplicationError as exc:
            add_sales_error(expiry, exc)
        else:
            messages.success(request, _("积分有效期与到期提醒已保存。"))
            return redirect("frontdesk:rules_settings")
    form = RulesForm(initial=RulesForm.initial_for(rules_config(actor.organisation.pk)), templates=_templates(actor))
    context = {"tab": "rules", "form": form, "expiry_form": expiry}
    return render(request, "frontdesk/rules/settings.html", context, status=400)


# --- A member's check-in ------------------------------------------------------------------------------------------


@staff_view(Perm.CHECKOUT)
@require_POST
def member_checkin(request: HttpRequest, pk: int) -> HttpResponse:
    """Record today's check-in (store-local day) and say what it gave; a second one the same day gives nothing."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    on = local_today(actor.store)
    already = CheckIn.objects.filter(member=member, on=on).exists()
    try:
        checkin = checkin_record(actor=actor, member=member, on=on)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("frontdesk:member_detail", pk=member.pk)
    values = {"streak": checkin.streak_day, "points": checkin.points + checkin.bonus}
    if already:
        messages.info(request, _("今天已经签到过了（连续第 %(streak)d 天），不再赠送积分。") % values)
    elif checkin.bonus:
        values["bonus"] = checkin.bonus
        messages.success(
            request, _("签到成功：连续第 %(streak)d 天，获得 %(points)d 积分（含连续签到奖励 %(bonus)d）。") % values
        )
    else:
        messages.success(request, _("签到成功：连续第 %(streak)d 天，获得 %(points)d 积分。") % values)
    return redirect("frontdesk:member_detail", pk=member.pk)


# --- Earning review flags -----------------------------------------------------------------------------------------


@staff_view(Perm.MONEY_ADJUST)
@require_GET
def earning_flags(request: HttpRequest) -> HttpResponse:
    """Members who earned more points in a day than the daily limit (of the stores the actor may see)."""
    return _flags_page(request)


def _flags_page(
    request: HttpRequest, *, review_errors: dict[int, str] | None = None, status: int = 200
) -> HttpResponse:
    actor = get_actor(request)
    flags = list(
        EarningFlag.objects.filter(organisation=actor.organisation, member__in=members_visible(actor))
        .select_related("member", "member__home_store", "reviewed_by")
        .order_by("-on", "member_id")[:FLAGS_PAGE]
    )
    context = {
        "tab": "rules",
        "flags": flags,
        "limit": rules_config(actor.organisation.pk).daily_earning_limit,
        "review_errors": review_errors or {},
    }
    return render(request, "frontdesk/rules/flags.html", context, status=status)


@staff_view(Perm.MONEY_ADJUST)
@require_POST
def earning_flag_review_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark a flag as reviewed with a note; a refusal (no note, reviewed already) shows beside that flag's note."""
    try:
        earning_flag_review(actor=get_actor(request), flag_id=pk, note=request.POST.get("note", ""))
    except ApplicationError as exc:
        if exc.code.endswith("not_found"):
            raise
        return _flags_page(request, review_errors={pk: exc.message}, status=400)
    messages.success(request, _("已标记为已复核。"))
    return redirect("frontdesk:earning_flags")


urlpatterns = [
    path("settings/rules/", rules_settings, name="rules_settings"),
    path("settings/rules/expiry/", rules_expiry_settings, name="rules_expiry_settings"),
    path("settings/rules/flags/", earning_flags, name="earning_flags"),
    path("settings/rules/flags/<int:pk>/review/", earning_flag_review_view, name="earning_flag_review"),
    path("members/<int:pk>/checkin/", member_checkin, name="member_checkin"),
]
