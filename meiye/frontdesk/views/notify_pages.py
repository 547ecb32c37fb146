"""Notifications (通知): the outbox with its filters, a message with its status history and a retry button,
the template editor per event, the notification settings (quiet hours, marketing events, channels), and a
member's message language and opt-outs.

The outbox is store-scoped (``notify.selectors.messages_visible``); recipients are only ever shown masked.
``urlpatterns`` here is spliced into ``frontdesk.urls``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from meiye.core.errors import ApplicationError
from meiye.frontdesk.forms import add_service_error
from meiye.frontdesk.labels import bilingual, bilingual_lazy, choices_of
from meiye.frontdesk.views.common import get_actor, staff_view
from meiye.members.selectors import member_get
from meiye.notify.events import EVENTS
from meiye.notify.models import Channel, Language, Message, MessageStatus, OptOutScope, SkipReason
from meiye.notify.selectors import (
    member_preferences,
    message_get,
    message_logs,
    messages_list,
    notify_settings,
    recipient_masked,
    template_effective,
    templates_overridden,
)
from meiye.notify.services import (
    message_retry,
    notify_preferences_set,
    notify_settings_set,
    notify_template_reset,
    notify_template_save,
)
from meiye.org.roles import Perm

PAGE_SIZE = 50

STATUS_BADGE = {
    MessageStatus.QUEUED: "badge-bill-open",
    MessageStatus.HELD: "badge-bill-open",
    MessageStatus.SENDING: "badge-bill-open",
    MessageStatus.SENT: "badge-yes",
    MessageStatus.DELIVERED: "badge-yes",
    MessageStatus.FAILED: "badge-health",
    MessageStatus.SKIPPED: "badge-inactive",
}


def _event_choices() -> list[tuple[str, Any]]:
    return [(key, bilingual_lazy(spec.label)) for key, spec in EVENTS.items()]


def _event_label(event: str) -> str:
    spec = EVENTS.get(event)
    return bilingual(spec.label) if spec is not None else event


# --- Forms --------------------------------------------------------------------------------------------------------


class OutboxFilterForm(forms.Form):
    status = forms.ChoiceField(label=gettext_lazy("状态"), required=False)
    channel = forms.ChoiceField(label=gettext_lazy("渠道"), required=False)
    event = forms.ChoiceField(label=gettext_lazy("事件"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        everything = ("", gettext_lazy("全部"))
        self.fields["status"].choices = [everything, *choices_of(MessageStatus)]  # type: ignore[attr-defined]
        self.fields["channel"].choices = [everything, *choices_of(Channel)]  # type: ignore[attr-defined]
        self.fields["event"].choices = [everything, *_event_choices()]  # type: ignore[attr-defined]


class TemplateForm(forms.Form):
    channel = forms.ChoiceField(choices=Channel.choices, widget=forms.HiddenInput)
    language = forms.ChoiceField(choices=Language.choices, widget=forms.HiddenInput)
    subject = forms.CharField(label=gettext_lazy("标题"), required=False, max_length=200)
    body = forms.CharField(
        label=gettext_lazy("内容"), required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 3})
    )


class SettingsForm(forms.Form):
    quiet_start = forms.TimeField(
        label=gettext_lazy("免打扰开始"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    quiet_end = forms.TimeField(
        label=gettext_lazy("免打扰结束"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    time_zone = forms.CharField(label=gettext_lazy("时区"), max_length=64)
    channels = forms.MultipleChoiceField(
        label=gettext_lazy("默认渠道"), required=False, widget=forms.CheckboxSelectMultiple
    )
    marketing_events = forms.MultipleChoiceField(
        label=gettext_lazy("营销类事件（需营销同意，免打扰时段暂缓）"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channels"].choices = choices_of(Channel)  # type: ignore[attr-defined]
        self.fields["marketing_events"].choices = _event_choices()  # type: ignore[attr-defined]


class PreferencesForm(forms.Form):
    language = forms.ChoiceField(label=gettext_lazy("消息语言"))
    sms = forms.ChoiceField(label=gettext_lazy("短信"), required=False)
    wechat = forms.ChoiceField(label=gettext_lazy("微信"), required=False)
    email = forms.ChoiceField(label=gettext_lazy("邮件"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = choices_of(Language)  # type: ignore[attr-defined]
        choices = [
            ("", bilingual_lazy("接收 Receive")),
            (OptOutScope.MARKETING.value, bilingual_lazy("退订营销消息 Opted out of marketing")),
            (OptOutScope.ALL.value, bilingual_lazy("退订全部消息 Opted out of all")),
        ]
        for channel in Channel.values:
            self.fields[channel].choices = choices  # type: ignore[attr-defined]


# --- The outbox ---------------------------------------------------------------------------------------------------


def _row(message: Message) -> dict[str, Any]:
    return {
        "message": message,
        "recipient": recipient_masked(message),
        "event": _event_label(message.event),
        "badge": STATUS_BADGE.get(MessageStatus(message.status), ""),
    }


@staff_view(Perm.NOTIFY_VIEW)
@require_GET
def notify_outbox(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    form = OutboxFilterForm(request.GET)
    filters: dict[str, Any] = {}
    if form.is_valid():
        filters = {k: v or None for k, v in form.cleaned_data.items()}
    page = Paginator(messages_list(actor, **filters), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "rows": [_row(m) for m in page.object_list],
        "can_manage": actor.can(Perm.NOTIFY_MANAGE),
    }
    response = render(request, "frontdesk/notify/outbox.html", context, status=400 if form.errors else 200)
    patch_cache_control(response, private=True, no_store=True)
    return response


@staff_view(Perm.NOTIFY_VIEW)
@require_GET
def notify_message(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    message = message_get(actor, pk)
    context = {
        **_row(message),
        "logs": list(message_logs(message)),
        "can_manage": actor.can(Perm.NOTIFY_MANAGE),
        "skip_reason": bilingual(SkipReason(message.skip_reason).label) if message.skip_reason else "",
    }
    response = render(request, "frontdesk/notify/message.html", context)
    patch_cache_control(response, private=True, no_store=True)
    return response


@staff_view(Perm.NOTIFY_VIEW)
@require_POST
def notify_message_retry(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    message = message_get(actor, pk)
    try:
        message_retry(actor=actor, message=message)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("已重新发送。"))
    return redirect("frontdesk:notify_message", pk=message.pk)


# --- Templates ------------------------------------------------------------------------------------------------------


@staff_view(Perm.NOTIFY_MANAGE)
@require_GET
def notify_templates(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    overridden = templates_overridden(actor.organisation.pk)
    marketing = notify_settings(actor.organisation.pk).marketing_events
    events = [
        {
            "key": key,
            "label": _event_label(key),
            "marketing": key in marketing,
            "overridden": sum(1 for o in overridden if o[0] == key),
        }
        for key in EVENTS
    ]
    return render(request, "frontdesk/notify/templates.html", {"events": events, "can_manage": True})


def _template_forms(request: HttpRequest, event: str, bound: TemplateForm | None) -> list[dict[str, Any]]:
    actor = get_actor(request)
    blocks = []
    for channel, channel_label in Channel.choices:
        for language, language_label in Language.choices:
            prefix = f"{channel}-{language}"
            current = template_effective(actor.organisation.pk, event=event, channel=channel, language=language)
            if bound is not None and bound.prefix == prefix:
                form = bound
            else:
                initial = {"channel": channel, "language": language, "subject": current.subject, "body": current.body}
                form = TemplateForm(initial=initial, prefix=prefix)
            blocks.append(
                {
                    "form": form,
                    "prefix": prefix,
                    "channel": bilingual(channel_label),
                    "language": bilingual(language_label),
                    "overridden": current.overridden,
                    "show_subject": channel == Channel.EMAIL,
                }
            )
    return blocks


@staff_view(Perm.NOTIFY_MANAGE)
@require_http_methods(["GET", "POST"])
def notify_template_edit(request: HttpRequest, event: str) -> HttpResponse:
    actor = get_actor(request)
    spec = EVENTS.get(event)
    if spec is None:
        raise Http404("event")
    bound: TemplateForm | None = None
    if request.method == "POST":
        prefix = request.POST.get("form", "")
        bound = TemplateForm(request.POST, prefix=prefix)
        if bound.is_valid():
            d = bound.cleaned_data
            try:
                if "reset" in request.POST:
                    notify_template_reset(actor=actor, event=event, channel=d["channel"], language=d["language"])
                else:
                    notify_template_save(
                        actor=actor,
                        event=event,
                        channel=d["channel"],
                        language=d["language"],
                        subject=d["subject"],
                        body=d["body"],
                    )
            except ApplicationError as exc:
                add_service_error(bound, exc)
            else:
                messages.success(request, _("模板已保存。"))
                return redirect("frontdesk:notify_template_edit", event=event)
    context = {
        "event": event,
        "label": _event_label(event),
        "variables": [f"{{{v}}}" for v in spec.variables],
        "blocks": _template_forms(request, event, bound),
        "can_manage": True,
    }
    status = 400 if bound is not None and bound.errors else 200
    return render(request, "frontdesk/notify/template_edit.html", context, status=status)


# --- Settings ---------------------------------------------------------------------------------------------------------


@staff_view(Perm.NOTIFY_MANAGE)
@require_http_methods(["GET", "POST"])
def notify_settings_view(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request)
    current = notify_settings(actor.organisation.pk)
    initial = {
        "quiet_start": current.quiet_start,
        "quiet_end": current.quiet_end,
        "time_zone": current.time_zone,
        "channels": list(current.channels),
        "marketing_events": sorted(current.marketing_events),
    }
    form = SettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            notify_settings_set(
                actor=actor,
                quiet_start=d["quiet_start"],
                quiet_end=d["quiet_end"],
                time_zone=d["time_zone"],
                marketing_events=d["marketing_events"],
                channels=d["channels"],
            )
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("通知设置已保存。"))
            return redirect("frontdesk:notify_settings")
    context = {"form": form, "can_manage": True}
    return render(request, "frontdesk/notify/settings.html", context, status=400 if form.errors else 200)


# --- A member's language and opt-outs ----------------------------------------------------------------------------------


@staff_view(Perm.MEMBER_CONSENT)
@require_http_methods(["GET", "POST"])
def notify_member(request: HttpRequest, pk: int) -> HttpResponse:
    actor = get_actor(request)
    member = member_get(actor, pk)
    prefs = member_preferences(member)
    initial = {"language": prefs.language, **{c: prefs.opt_outs.get(c, "") for c in Channel.values}}
    form = PreferencesForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            notify_preferences_set(
                actor=actor,
                member=member,
                language=d["language"],
                opt_outs={c: d[c] or None for c in Channel.values},
            )
        except ApplicationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, _("消息偏好已保存。"))
            return redirect("frontdesk:notify_member", pk=member.pk)
    rows: list[dict[str, Any]] = []
    if actor.can(Perm.NOTIFY_VIEW):
        rows = [_row(m) for m in messages_list(actor, member_id=member.pk)[:PAGE_SIZE]]
    context = {
        "member": member,
        "form": form,
        "rows": rows,
        "can_view_messages": actor.can(Perm.NOTIFY_VIEW),
        "can_manage": actor.can(Perm.NOTIFY_MANAGE),
    }
    response = render(request, "frontdesk/notify/member.html", context, status=400 if form.errors else 200)
    patch_cache_control(response, private=True, no_store=True)
    return response


urlpatterns = [
    path("notify/", notify_outbox, name="notify_outbox"),
    path("notify/messages/<int:pk>/", notify_message, name="notify_message"),
    path("notify/messages/<int:pk>/retry/", notify_message_retry, name="notify_message_retry"),
    path("notify/templates/", notify_templates, name="notify_templates"),
    path("notify/templates/<str:event>/", notify_template_edit, name="notify_template_edit"),
    path("notify/settings/", notify_settings_view, name="notify_settings"),
    path("notify/members/<int:pk>/", notify_member, name="notify_member"),
]
