"""Member tiers (会员等级) at the front desk: the ladder on the settings pages (HQ, ``catalog.manage``: list,
create, edit, delete), and a member's tier (the card on the member page, her tier page with the history and
the grant by hand, ``money.adjust``).

Thresholds are typed in 元 (``MoneyField``); discounts as a percentage OFF per item kind or earning category
("10" is 10% off, sent as 1,000 basis points; empty: no discount of its own); the points multiplier as
"1.2" (12,000 basis points). Every rule is the service's (``loyalty.tiers``); its refusal is shown beside
the field it names and the form keeps what was typed. ``urlpatterns`` here is spliced into ``frontdesk.urls``.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from meiye.catalog.models import EarningCategory, ItemKind
from meiye.core.errors import ApplicationError, not_found
from meiye.core.money import Money
from meiye.frontdesk.forms_sales import MoneyField, add_sales_error
from meiye.frontdesk.labels import bilingual
from meiye.frontdesk.templatetags.tier_tags import tier_name
from meiye.frontdesk.views.common import get_actor, is_htmx, staff_view
from meiye.loyalty.models import Tier
from meiye.loyalty.selectors import local_today, tier_history, tier_progress, tiers_list
from meiye.loyalty.tiers import BASIS_POINTS, tier_delete, tier_grant, tier_save
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_get
from meiye.org.context import Actor
from meiye.org.roles import Perm

PANEL_HISTORY = 3
PAGE_HISTORY = 100
DISCOUNT_PREFIX = "discount_"
# The keys a tier discount may name, in the order the form shows them: item kinds, then earning categories.
DISCOUNT_KEYS: list[tuple[str, Any]] = [*ItemKind.choices, *EarningCategory.choices]

_NUMBER = {"inputmode": "numeric", "autocomplete": "off"}
_DECIMAL = {"inputmode": "decimal", "autocomplete": "off"}
_DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


# --- Fields -------------------------------------------------------------------------------------------------------


def _decimal_text(value: int, scale: int) -> str:
    """``value / scale`` written for people: 1000/100 -> "10", 1050/100 -> "10.5", 12000/10000 -> "1.2"."""
    whole, rest = divmod(value, scale)
    if rest == 0:
        return str(whole)
    digits = len(str(scale)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


class PercentOffField(forms.DecimalField):
    """A discount typed as the percentage OFF ("10" is 10% off, "12.5"), cleaned into integer basis points
    (1,000). Empty: None. An initial value is given in basis points and shown as a percentage."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs={**_DECIMAL, "placeholder": "—", "class": "short"}))
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "error_messages",
            {
                "invalid": gettext_lazy("折扣：请输入 0 到 100 之间的百分比，最多两位小数，如 10 或 12.5。"),
                "min_value": gettext_lazy("折扣：请输入 0 到 100 之间的百分比，最多两位小数，如 10 或 12.5。"),
                "max_value": gettext_lazy("折扣：请输入 0 到 100 之间的百分比，最多两位小数，如 10 或 12.5。"),
                "max_decimal_places": gettext_lazy("折扣：请输入 0 到 100 之间的百分比，最多两位小数，如 10 或 12.5。"),
                "max_digits": gettext_lazy("折扣：请输入 0 到 100 之间的百分比，最多两位小数，如 10 或 12.5。"),
                "max_whole_digits": gettext_lazy("折扣：请输入 0 到 100 之间的百分比，最多两位小数，如 10 或 12.5。"),
            },
        )
        super().__init__(max_digits=5, decimal_places=2, min_value=Decimal(0), max_value=Decimal(100), **kwargs)

    def clean(self, value: Any) -> int | None:
        percent = super().clean(value)
        return None if percent is None else int(percent * 100)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return _decimal_text(value, 100)
        return value


class MultiplierField(forms.DecimalField):
    """The points multiplier typed as "1.2" (up to four decimals), cleaned into basis points (12,000)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs={**_DECIMAL, "placeholder": "1.0"}))
        message = gettext_lazy("积分倍数：请输入 0.0001 到 10 之间的数，最多四位小数，如 1.2。")
        kwargs.setdefault(
            "error_messages",
            {
                key: message
                for key in ("invalid", "min_value", "max_value", "max_decimal_places", "max_digits", "max_whole_digits")
            },
        )
        super().__init__(max_digits=6, decimal_places=4, min_value=Decimal("0.0001"), max_value=Decimal(10), **kwargs)

    def clean(self, value: Any) -> int | None:
        multiplier = super().clean(value)
        return None if multiplier is None else int(multiplier * BASIS_POINTS)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return _decimal_text(value, BASIS_POINTS)
        return value


# --- Forms ----------------------------------------------------------------------------------------------------------


class TierForm(forms.Form):
    """One rung of the ladder. The code is the key: typed when the tier is created, fixed afterwards."""

    # The service names these fields; the form shows them beside its own.
    ALIASES = {"points_multiplier_bp": "points_multiplier", "tier": "__all__"}

    code = forms.CharField(
        label=gettext_lazy("编码"),
        max_length=32,
        help_text=gettext_lazy("小写字母、数字、- 或 _，如 silver；保存后不能修改"),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}),
    )
    name_zh = forms.CharField(label=gettext_lazy("名称"), max_length=20)
    name_en = forms.CharField(label=gettext_lazy("英文名称"), max_length=30, required=False)
    threshold = MoneyField(
        label=gettext_lazy("成长值门槛（元）"),
        help_text=gettext_lazy("近 12 个月实付金额（扣除退款）达到此数即升级；最低等级为 0"),
    )
    points_multiplier = MultiplierField(
        label=gettext_lazy("积分倍数"),
        required=False,
        initial=BASIS_POINTS,
        help_text=gettext_lazy("如 1.2 表示积分 ×1.2；留空为 1"),
    )
    points_per_yuan_offset = forms.IntegerField(
        label=gettext_lazy("每 1 元抵扣所需积分"),
        required=False,
        widget=forms.NumberInput(attrs=_NUMBER),
        help_text=gettext_lazy("留空则用门店设置"),
    )
    points_lifetime_months = forms.IntegerField(
        label=gettext_lazy("积分有效期（月）"),
        required=False,
        widget=forms.NumberInput(attrs=_NUMBER),
        help_text=gettext_lazy("留空则用总部设置"),
    )
    perks_zh = forms.CharField(
        label=gettext_lazy("权益"), required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )
    perks_en = forms.CharField(
        label=gettext_lazy("英文权益"), required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, label in DISCOUNT_KEYS:
            self.fields[DISCOUNT_PREFIX + key] = PercentOffField(label=f"{bilingual(label)}（%）")
        if editing:
            self.fields["code"].disabled = True
            self.fields["code"].help_text = ""

    def discount_fields(self) -> list[forms.BoundField]:
        return [self[DISCOUNT_PREFIX + key] for key, _label in DISCOUNT_KEYS]

    @staticmethod
    def initial_for(tier: Tier) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "code": tier.code,
            "name_zh": tier.name_zh,
            "name_en": tier.name_en,
            "threshold": Money(tier.threshold_fen),
            "points_multiplier": tier.points_multiplier_bp,
            "points_per_yuan_offset": tier.points_per_yuan_offset,
            "points_lifetime_months": tier.points_lifetime_months,
            "perks_zh": tier.perks_zh,
            "perks_en": tier.perks_en,
        }
        for key, value in (tier.discounts_bp or {}).items():
            initial[DISCOUNT_PREFIX + key] = int(value)
        return initial

    def save_kwargs(self) -> dict[str, Any]:
        """The ``tier_save`` keyword arguments (not the actor and the code)."""
        d = self.cleaned_data
        return {
            "name_zh": d["name_zh"],
            "name_en": d["name_en"],
            "threshold": d["threshold"],
            "discounts_bp": {
                key: d[DISCOUNT_PREFIX + key] for key, _label in DISCOUNT_KEYS if d[DISCOUNT_PREFIX + key] is not None
            },
            "points_multiplier_bp": d["points_multiplier"] if d["points_multiplier"] is not None else BASIS_POINTS,
            "points_per_yuan_offset": d["points_per_yuan_offset"],
            "points_lifetime_months": d["points_lifetime_months"],
            "perks_zh": d["perks_zh"],
            "perks_en": d["perks_en"],
        }

    def add_service_error(self, exc: ApplicationError) -> None:
        """Beside the field the service names; a discount error beside that discount's own input (the service
        names the key: ``discounts_bp.service``)."""
        if exc.field and exc.field.startswith("discounts_bp."):
            key = exc.field.removeprefix("discounts_bp.")
            if DISCOUNT_PREFIX + key in self.fields:
                self.add_error(DISCOUNT_PREFIX + key, exc.message)
                return
        add_sales_error(self, exc, aliases=self.ALIASES)


class TierGrantForm(forms.Form):
    """Grant a tier by hand: a floor up to and including ``until``; a reason is required (audited)."""

    ALIASES = {"member": "__all__"}

    tier = forms.TypedChoiceField(label=gettext_lazy("授予等级"), coerce=int)
    until = forms.DateField(label=gettext_lazy("有效至（含当天）"), widget=_DATE_WIDGET)
    reason = forms.CharField(
        label=gettext_lazy("原因"),
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": gettext_lazy("如：店庆活动赠送金卡")}),
    )

    def __init__(self, *args: Any, ladder: list[Tier], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [("", "—"), *((t.pk, _tier_label(t)) for t in ladder)]  # type: ignore[attr-defined]


def _tier_label(tier: Tier) -> str:
    return tier_name(tier)


# --- Settings: the ladder -----------------------------------------------------------------------------------------


def _settings_page(request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    return render(request, template, {"tab": "tiers", **context}, status=status)


def _tier_of(actor: Actor, pk: int) -> Tier:
    found = next((t for t in tiers_list(actor.organisation) if t.pk == pk), None)
    if found is None:
        raise not_found("tier.not_found", "会员等级", "Tier")
    return found


def _ladder_rows(ladder: list[Tier]) -> list[dict[str, Any]]:
    return [
        {
            "tier": tier,
            "discounts": [
                (key, label, (tier.discounts_bp or {})[key])
                for key, label in DISCOUNT_KEYS
                if key in (tier.discounts_bp or {})
            ],
            "next_threshold_fen": ladder[i + 1].threshold_fen if i + 1 < len(ladder) else None,
        }
        for i, tier in enumerate(ladder)
    ]


@staff_view(Perm.CATALOG_MANAGE)
@require_GET
def tier_list(request: HttpRequest) -> HttpResponse:
    ladder = tiers_list(get_actor(request).organisation)
    return _settings_page(request, "frontdesk/tiers/list.html", {"rows": _ladder_rows(ladder)})


@staff_view(Perm.CATALOG_MANAGE)
@require_http_methods(["GET", "POST"])
def tier_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    actor = get_actor(request)
    existing = _tier_of(actor, pk) if pk is not None else None
    if existing is not None:
        initial = TierForm.initial_for(existing)
    else:
        initial = {"points_multiplier": BASIS_POINTS}
        if not tiers_list(actor.organisation):
            initial["threshold"] = Money(0)  # the first tier starts at 0
    form = TierForm(request.POST or None, initial=initial, editing=existing is not None)
    if request.method == "POST" and form.is_valid():
        try:
            saved = tier_save(
                actor=actor,
                code=existing.code if existing is not None else form.cleaned_data["code"],
                **form.save_kwargs(),
            )
        except ApplicationError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, _("会员等级 %(name)s 已保存。") % {"name": _tier_label(saved)})
            return redirect("frontdesk:tier_list")
    context = {"form": form, "existing": existing}
    return _settings_page(request, "frontdesk/tiers/form.html", context, status=400 if form.errors else 200)


@staff_view(Perm.CATALOG_MANAGE)
@require_POST
def tier_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    tier = _tier_of(actor, pk)
    try:
        tier_delete(actor=actor, tier=tier)
    except ApplicationError as exc:
        ladder = tiers_list(actor.organisation)
        context = {"rows": _ladder_rows(ladder), "refused": exc.message, "refused_tier": tier.pk}
        return _settings_page(request, "frontdesk/tiers/list.html", context, status=exc.status)
    messages.success(request, _("会员等级 %(name)s 已删除。") % {"name": _tier_label(tier)})
    return redirect("frontdesk:tier_list")


# --- A member's tier ----------------------------------------------------------------------------------------------


def _can_grant(actor: Actor, member: Member) -> bool:
    return actor.can(Perm.MONEY_ADJUST) and member.status == MemberStatus.ACTIVE


def _grant_form(actor: Actor, ladder: list[Tier], today: date) -> TierGrantForm:
    return TierGrantForm(ladder=ladder, initial={"until": today + timedelta(days=365)})


def _member_context(actor: Actor, member: Member, *, history: int) -> dict[str, Any]:
    ladder = tiers_list(member.organisation_id)
    progress = tier_progress(member)
    return {
        "member": member,
        "ladder": ladder,
        "progress": progress,
        "history": tier_history(member, limit=history) if ladder else [],
        "can_grant": bool(ladder) and _can_grant(actor, member),
    }


def _member_tier_page(
    request: HttpRequest, member: Member, *, grant_form: TierGrantForm | None = None, status: int = 200
) -> HttpResponse:
    actor = get_actor(request)
    context = _member_context(actor, member, history=PAGE_HISTORY)
    if context["can_grant"] and grant_form is None:
        grant_form = _grant_form(actor, context["ladder"], local_today(actor.store))
    context["grant_form"] = grant_form  # a refused grant is shown with its reason even if she can no longer get one
    response = render(request, "frontdesk/tiers/member.html", context, status=status)
    patch_cache_control(response, private=True, no_store=True)
    return response


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def member_tier(request: HttpRequest, pk: int) -> HttpResponse:
    member = member_get(get_actor(request), pk)
    return _member_tier_page(request, member)


@staff_view(Perm.MEMBER_VIEW)
@require_GET
def member_tier_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the tier card of the member page (her tier, the progress to the next, the latest changes)."""
    actor = get_actor(request)
    member = member_get(actor, pk)
    if not is_htmx(request):
        return redirect("frontdesk:member_tier", pk=member.pk)
    response = render(
        request, "frontdesk/tiers/_member_panel.html", _member_context(actor, member, history=PANEL_HISTORY)
    )
    patch_cache_control(response, private=True, no_store=True)
    return response


@staff_view(Perm.MONEY_ADJUST)
@require_POST
def member_tier_grant(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    member = member_get(actor, pk)
    ladder = tiers_list(member.organisation_id)
    form = TierGrantForm(request.POST, ladder=ladder)
    if form.is_valid():
        d = form.cleaned_data
        try:
            tier = _tier_of(actor, d["tier"])
            tier_grant(actor=actor, member=member, tier=tier, until=d["until"], reason=d["reason"])
        except ApplicationError as exc:
            add_sales_error(form, exc, aliases=TierGrantForm.ALIASES)
        else:
            messages.success(
                request,
                _("已授予 %(tier)s，有效至 %(until)s。") % {"tier": _tier_label(tier), "until": d["until"].isoformat()},
            )
            return redirect("frontdesk:member_tier", pk=member.pk)
    return _member_tier_page(request, member, grant_form=form, status=400)


urlpatterns = [
    path("settings/tiers/", tier_list, name="tier_list"),
    path("settings/tiers/new/", tier_edit, name="tier_create"),
    path("settings/tiers/<int:pk>/", tier_edit, name="tier_edit"),
    path("settings/tiers/<int:pk>/delete/", tier_delete_view, name="tier_delete"),
    path("members/<int:pk>/tier/", member_tier, name="member_tier"),
    path("members/<int:pk>/tier/panel/", member_tier_panel, name="member_tier_panel"),
    path("members/<int:pk>/tier/grant/", member_tier_grant, name="member_tier_grant"),
]
