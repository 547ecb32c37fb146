"""Reads for notifications: the effective settings and templates, a member's preferences, and the outbox
scoped to the stores the acting staff member may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from django.db.models import Q, QuerySet

from meiye.core.crypto import mask_email, mask_phone
from meiye.core.errors import not_found
from meiye.members.models import Member
from meiye.notify.events import DEFAULT_CHANNELS, DEFAULT_MARKETING_EVENTS, EVENTS, event_spec
from meiye.notify.models import (
    PENDING_STATUSES,
    Channel,
    Language,
    MemberPreference,
    Message,
    MessageLog,
    NotifySettings,
    NotifyTemplate,
    OptOut,
)
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.org.selectors import visible_store_ids


@dataclass(frozen=True)
class EffectiveSettings:
    quiet_start: time
    quiet_end: time
    time_zone: str
    marketing_events: frozenset[str]
    channels: tuple[str, ...]


def notify_settings(organisation_id: int) -> EffectiveSettings:
    """The organisation's notification rules: its row, else the defaults in code."""
    row = NotifySettings.objects.filter(organisation_id=organisation_id).first()
    if row is None:
        return EffectiveSettings(
            quiet_start=time(21, 0),
            quiet_end=time(9, 0),
            time_zone="Asia/Shanghai",
            marketing_events=frozenset(DEFAULT_MARKETING_EVENTS),
            channels=DEFAULT_CHANNELS,
        )
    return EffectiveSettings(
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        time_zone=row.time_zone,
        marketing_events=frozenset(e for e in row.marketing_events if e in EVENTS),
        channels=tuple(c for c in row.channels if c in Channel.values) or DEFAULT_CHANNELS,
    )


@dataclass(frozen=True)
class EffectiveTemplate:
    subject: str
    body: str
    overridden: bool


def template_effective(organisation_id: int, *, event: str, channel: str, language: str) -> EffectiveTemplate:
    """The wording used for (event, channel, language): the organisation's own, else the code default for
    the language, else the Chinese default."""
    spec = event_spec(event)
    row = NotifyTemplate.objects.filter(
        organisation_id=organisation_id, event=event, channel=channel, language=language
    ).first()
    if row is not None:
        return EffectiveTemplate(subject=row.subject, body=row.body, overridden=True)
    subject, body = spec.defaults.get(language) or spec.defaults[Language.ZH]
    return EffectiveTemplate(subject=subject, body=body, overridden=False)


def templates_overridden(organisation_id: int) -> set[tuple[str, str, str]]:
    """(event, channel, language) of every template the organisation has reworded."""
    return set(
        NotifyTemplate.objects.filter(organisation_id=organisation_id).values_list("event", "channel", "language")
    )


@dataclass(frozen=True)
class MemberPreferences:
    language: str
    opt_outs: dict[str, str]  # channel -> scope


def member_preferences(member: Member) -> MemberPreferences:
    pref = MemberPreference.objects.filter(member=member).first()
    return MemberPreferences(
        language=pref.language if pref is not None else Language.ZH,
        opt_outs=dict(OptOut.objects.filter(member=member).values_list("channel", "scope")),
    )


# --- The outbox ------------------------------------------------------------------------------------------------


def messages_visible(actor: Actor) -> QuerySet[Message]:
    """Messages the actor may see: of the stores she works in (the event's store or the member's home
    store); HQ roles see the whole organisation."""
    actor.require(Perm.NOTIFY_VIEW)
    qs = Message.objects.filter(organisation=actor.organisation)
    if actor.staff is not None and not actor.staff.sees_all_stores:
        stores = visible_store_ids(actor)
        qs = qs.filter(Q(store_id__in=stores) | Q(member__home_store_id__in=stores))
    return qs


def messages_list(
    actor: Actor,
    *,
    status: str | None = None,
    channel: str | None = None,
    event: str | None = None,
    member_id: int | None = None,
) -> QuerySet[Message]:
    qs = messages_visible(actor).select_related("member", "store")
    if status:
        qs = qs.filter(status=status)
    if channel:
        qs = qs.filter(channel=channel)
    if event:
        qs = qs.filter(event=event)
    if member_id:
        qs = qs.filter(member_id=member_id)
    return qs.order_by("-id")


def message_get(actor: Actor, message_id: int | str) -> Message:
    try:
        return messages_visible(actor).select_related("member", "store").get(pk=int(message_id))
    except (Message.DoesNotExist, ValueError, TypeError):
        raise not_found("notify.message_not_found", "消息", "Message") from None


def message_logs(message: Message) -> QuerySet[MessageLog]:
    return MessageLog.objects.filter(message=message).select_related("staff").order_by("at", "id")


def recipient_masked(message: Message) -> str:
    """The recipient as staff see it in the outbox: 138****5678, z***@example.com."""
    value = message.recipient or ""
    if message.channel == Channel.EMAIL:
        return mask_email(value)
    return mask_phone(value)


def messages_due(now: datetime) -> QuerySet[Message]:
    """Messages the delivery job should look at: queued or held until now, or sending with a lapsed lease."""
    return Message.objects.filter(status__in=PENDING_STATUSES, next_attempt_at__lte=now).order_by(
        "next_attempt_at", "id"
    )


def member_messages(member: Member) -> QuerySet[Message]:
    """Every message to the member (for her data export), oldest first."""
    return Message.objects.filter(member=member).order_by("id")
