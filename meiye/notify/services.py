"""Writes for notifications: report an event (``notify_event``), deliver and retry messages, templates,
settings, a member's language and opt-outs, and the member merge / export / erasure hooks.

Other apps call ``notify_event`` inside their own transaction. The messages are stored in that
transaction and handed to the delivery task only when it commits (``transaction.on_commit``): a rolled
back charge sends nothing and stores nothing. Delivery happens outside any transaction (a provider is a
network call): the message is claimed (status ``sending`` with a 5-minute lease), sent, then its outcome
recorded; a worker that dies mid-send leaves a lapsed lease that the next sweep picks up again, so
delivery is at least once (gateways get an idempotency key to drop repeats).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.core.errors import ValidationFailed
from meiye.core.idempotency import conflict_error, validate_key
from meiye.members.models import ConsentPurpose, Member, MemberStatus
from meiye.members.selectors import consent_state, member_get, member_survivor
from meiye.notify.events import EVENTS, event_spec
from meiye.notify.models import (
    PENDING_STATUSES,
    Channel,
    Language,
    MemberPreference,
    Message,
    MessageLog,
    MessageStatus,
    NotifySettings,
    NotifyTemplate,
    OptOut,
    OptOutScope,
    SkipReason,
)
from meiye.notify.providers import SendResult, provider_for, scrub
from meiye.notify.quiet import in_quiet_hours, quiet_hours_end, zone_of
from meiye.notify.rendering import placeholders, render, variables_for
from meiye.notify.selectors import (
    EffectiveSettings,
    member_messages,
    member_preferences,
    message_get,
    messages_due,
    notify_settings,
    template_effective,
)
from meiye.org.context import Actor
from meiye.org.models import Organisation, Store
from meiye.org.roles import Perm

log = logging.getLogger("meiye.notify")

LEASE = timedelta(minutes=5)
# A secret variable (a one-time code) is stored and shown as this; the real value reaches the provider only.
SECRET_MASK = "******"  # noqa: S105 - the mask, not a secret
# Apps whose events carry a secret register ``event -> function(message) -> the secret, or None when it may
# no longer be sent`` (the app keeps the value encrypted and reads it back only for delivery).
SECRET_SOURCES: dict[str, Callable[[Message], str | None]] = {}
MAX_BODY = 1000
MAX_SUBJECT = 200

# The member's consent a marketing message needs, per channel.
MARKETING_CONSENT = {
    Channel.SMS: ConsentPurpose.MARKETING_SMS,
    Channel.WECHAT: ConsentPurpose.MARKETING_WECHAT,
    Channel.EMAIL: ConsentPurpose.MARKETING_EMAIL,
}


def retry_minutes() -> list[int]:
    """Minutes to wait after the 1st, 2nd … failed attempt (``MEIYE_NOTIFY_RETRY_MINUTES``, default 1, 5, 30)."""
    return [int(m) for m in getattr(settings, "MEIYE_NOTIFY_RETRY_MINUTES", [1, 5, 30])]


def max_attempts() -> int:
    """Attempts before a message is marked failed: the first one and one per backoff step."""
    return len(retry_minutes()) + 1


# --- Reporting an event ------------------------------------------------------------------------------------


def notify_event(
    *,
    actor: Actor | None = None,
    organisation_id: int | None = None,
    member: Member | None,
    event: str,
    context: Mapping[str, Any],
    idempotency_key: str,
    channels: Sequence[str] | None = None,
    store: Store | None = None,
    language: str | None = None,
    recipient: str | None = None,
    now: datetime | None = None,
    secret: str = "",
) -> list[Message]:
    """Tell a member about an event: one message per channel, rendered in her language, stored, and
    delivered after the caller's transaction commits.

    ``actor`` (or, for jobs without one, ``organisation_id``) names the organisation; the store is
    ``store``, else the actor's, else the member's home store (it decides who sees the message, and whose
    time zone the quiet hours are in). ``channels`` defaults to the organisation's channels (SMS).
    ``idempotency_key`` names the business event (``wallet.charge:<journal id>``): a second call with the
    same key returns the messages of the first and sends nothing. ``recipient`` is only for a message to
    someone who is not a member (``member=None``).

    A message is stored as skipped (opted out, no marketing consent, no address, member erased) rather
    than refused: a notification never makes the caller's operation fail. A marketing event during quiet
    hours is held until they end. Missing event variables, an unknown event or channel are programming
    errors (``ValueError``).

    ``secret`` names a variable (a one-time code) that nobody may read in Meiye: the stored body shows
    ``SECRET_MASK`` in its place and the delivery asks the event's ``SECRET_SOURCES`` entry for the value.
    """
    spec = event_spec(event)
    if secret and (secret not in spec.variables or event not in SECRET_SOURCES):
        raise ValueError(f"notify_event({event!r}): secret {secret!r} is not a variable or has no secret source")
    missing = [name for name in spec.required if name not in context and f"{name}_fen" not in context]
    if missing:
        raise ValueError(f"notify_event({event!r}) needs context {missing}")
    organisation = _organisation(actor, organisation_id)
    key = validate_key(idempotency_key)
    conf = notify_settings(organisation.pk)
    chosen = tuple(dict.fromkeys(channels)) if channels is not None else conf.channels
    unknown = [c for c in chosen if c not in Channel.values]
    if unknown or not chosen:
        raise ValueError(f"notify_event: unknown channels {unknown}; expected some of {Channel.values}")
    if member is not None:
        if member.organisation_id != organisation.pk:
            raise ValueError("notify_event: the member belongs to another organisation")
        if recipient is not None:
            raise ValueError("notify_event: a member's messages go to her own phone or email; no recipient")
        member = member_survivor(member)
    if store is None:
        store = actor.store if actor is not None and actor.store is not None else None
    if store is None and member is not None:
        store = member.home_store
    moment = now or timezone.now()
    marketing = event in conf.marketing_events
    prefs = member_preferences(member) if member is not None else None
    lang = language or (prefs.language if prefs is not None else Language.ZH)
    if lang not in Language.values:
        lang = Language.ZH
    consents = consent_state(member) if member is not None and marketing else {}
    values = {
        "name": member.name if member is not None else "",
        "member_no": member.member_no if member is not None else "",
        "org": organisation.name,
        "store": store.name if store is not None else "",
        **variables_for(context, lang),
    }
    if secret:
        values[secret] = SECRET_MASK
    zone = zone_of(store.time_zone if store is not None else conf.time_zone)
    quiet = marketing and in_quiet_hours(moment, start=conf.quiet_start, end=conf.quiet_end, zone=zone)
    messages: list[Message] = []
    to_deliver: list[int] = []
    with transaction.atomic():
        for channel in chosen:
            existing = Message.objects.filter(organisation=organisation, idempotency_key=key, channel=channel).first()
            if existing is not None:
                messages.append(_replayed(existing, event, key, member))
                continue
            template = template_effective(organisation.pk, event=event, channel=channel, language=lang)
            subject = render(template.subject, values)
            if channel == Channel.EMAIL and not subject:
                subject = organisation.name
            reason = _skip_reason(
                member=member,
                channel=channel,
                marketing=marketing,
                opt_out=prefs.opt_outs.get(channel) if prefs is not None else None,
                consents=consents,
                address=_address(member, channel) if member is not None else (recipient or ""),
            )
            due: datetime | None
            if reason:
                status, note, due = MessageStatus.SKIPPED, str(SkipReason(reason).label), None
            elif quiet:
                due = quiet_hours_end(moment, start=conf.quiet_start, end=conf.quiet_end, zone=zone)
                status, note = MessageStatus.HELD, f"免打扰，{_local(due, zone)} 发送 / quiet hours until then"
            else:
                status, note, due = MessageStatus.QUEUED, "", moment
            message = Message(
                organisation=organisation,
                store=store,
                member=member,
                channel=channel,
                event=event,
                marketing=marketing,
                language=lang,
                recipient=None if reason else (_address(member, channel) if member is not None else recipient),
                subject=subject[:MAX_SUBJECT] if channel == Channel.EMAIL else "",
                body=render(template.body, values),
                status=status,
                skip_reason=reason,
                next_attempt_at=due,
                idempotency_key=key,
                created_by=actor.staff if actor is not None else None,
            )
            try:
                with transaction.atomic():
                    message.save()
            except IntegrityError:
                # The same event was reported concurrently and that report committed first.
                existing = Message.objects.filter(
                    organisation=organisation, idempotency_key=key, channel=channel
                ).first()
                if existing is None:
                    raise
                messages.append(_replayed(existing, event, key, member))
                continue
            MessageLog.objects.create(message=message, at=moment, status=status, note=str(note)[:300])
            messages.append(message)
            if status == MessageStatus.QUEUED:
                to_deliver.append(message.pk)
        if to_deliver:
            _deliver_on_commit(to_deliver, now)
    return messages


def _organisation(actor: Actor | None, organisation_id: int | None) -> Organisation:
    if actor is not None:
        if organisation_id is not None and organisation_id != actor.organisation.pk:
            raise ValueError("notify_event: organisation_id and actor disagree")
        return actor.organisation
    if organisation_id is None:
        raise ValueError("notify_event needs an actor or an organisation_id")
    return Organisation.objects.get(pk=organisation_id)


def _replayed(existing: Message, event: str, key: str, member: Member | None) -> Message:
    """The message first stored under ``key``; the same key for another event or member is a conflict."""
    if existing.event != event or existing.member_id != (member.pk if member is not None else None):
        raise conflict_error(key)
    return existing


def _address(member: Member, channel: str) -> str:
    """Where a member's message on a channel goes: her email, else her phone (SMS; WeChat, where the
    gateway maps the phone to her openid)."""
    value = member.email if channel == Channel.EMAIL else member.phone
    return value or ""


def _skip_reason(
    *,
    member: Member | None,
    channel: str,
    marketing: bool,
    opt_out: str | None,
    consents: Mapping[str, bool],
    address: str,
) -> str:
    if member is not None and member.status == MemberStatus.ERASED:
        return SkipReason.MEMBER_ERASED
    if opt_out == OptOutScope.ALL or (opt_out == OptOutScope.MARKETING and marketing):
        return SkipReason.OPTED_OUT
    if marketing and (member is None or not consents.get(MARKETING_CONSENT[Channel(channel)], False)):
        return SkipReason.NO_CONSENT
    if not address:
        return SkipReason.NO_ADDRESS
    return ""


def _local(at: datetime, zone: Any) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _deliver_on_commit(message_ids: list[int], now: datetime | None) -> None:
    """Hand the messages to the delivery task once the caller's transaction commits. ``robust``: a queue
    that cannot be reached does not fail the caller; the sweep (``notify_send_due``) sends them later."""

    def enqueue() -> None:
        from meiye.notify.tasks import message_deliver_task

        for pk in message_ids:
            message_deliver_task(pk, now)

    transaction.on_commit(enqueue, robust=True)


# --- Delivery -------------------------------------------------------------------------------------------------------


def message_deliver(*, message_id: int, now: datetime | None = None) -> Message | None:
    """Send one due message through its channel's provider and record the outcome.

    Returns None when the message is not due (already sent, held, or being sent by another worker).
    Before sending, the member's opt-outs and consent are read again (she may have changed her mind while
    the message waited) and a marketing message inside quiet hours goes back to being held. A failed
    attempt is retried after 1, 5, 30 minutes (``MEIYE_NOTIFY_RETRY_MINUTES``), then marked failed; a
    permanent failure (bad address, refused) is failed at once.
    """
    moment = now or timezone.now()
    with transaction.atomic():
        claimed = Message.objects.filter(
            pk=message_id, status__in=PENDING_STATUSES, next_attempt_at__lte=moment
        ).update(status=MessageStatus.SENDING, next_attempt_at=moment + LEASE)
    if not claimed:
        return None
    message = Message.objects.select_related("organisation", "store", "member").get(pk=message_id)
    conf = notify_settings(message.organisation_id)
    reason = _skip_reason_now(message, conf)
    if reason:
        return _settle(
            message, status=MessageStatus.SKIPPED, at=moment, skip_reason=reason, note=SkipReason(reason).label
        )
    zone = zone_of(message.store.time_zone if message.store is not None else conf.time_zone)
    if message.marketing and in_quiet_hours(moment, start=conf.quiet_start, end=conf.quiet_end, zone=zone):
        due = quiet_hours_end(moment, start=conf.quiet_start, end=conf.quiet_end, zone=zone)
        return _settle(
            message,
            status=MessageStatus.HELD,
            at=moment,
            next_attempt_at=due,
            note=f"免打扰，{_local(due, zone)} 发送 / quiet hours until then",
        )
    if message.event in SECRET_SOURCES and SECRET_MASK in (message.body or ""):
        value = SECRET_SOURCES[message.event](message)
        if not value:
            return _record_attempt(
                message,
                SendResult(status="failed", error="secret expired or used / 验证码已失效", permanent=True),
                "",
                moment,
            )
        # In memory only: the stored body keeps the mask (``_record_attempt`` saves a fresh copy).
        message.body = (message.body or "").replace(SECRET_MASK, value)
    provider_name = ""
    try:
        provider = provider_for(message.channel)
        provider_name = provider.name
        result = provider.send(message)
    except Exception as exc:  # a broken provider is a failed attempt, never a lost message
        result = SendResult(status="failed", error=scrub(f"{type(exc).__name__}: {exc}"))
    return _record_attempt(message, result, provider_name, moment)


def _skip_reason_now(message: Message, conf: EffectiveSettings) -> str:
    member = message.member
    if member is None:
        return SkipReason.NO_CONSENT if message.marketing else ""
    prefs = member_preferences(member)
    consents = consent_state(member) if message.marketing else {}
    return _skip_reason(
        member=member,
        channel=message.channel,
        marketing=message.marketing,
        opt_out=prefs.opt_outs.get(message.channel),
        consents=consents,
        address=message.recipient or "",
    )


def _settle(
    message: Message,
    *,
    status: str,
    at: datetime,
    next_attempt_at: datetime | None = None,
    skip_reason: str = "",
    note: Any = "",
) -> Message:
    with transaction.atomic():
        locked = Message.objects.select_for_update().get(pk=message.pk)
        locked.status = status
        locked.next_attempt_at = next_attempt_at
        if skip_reason:
            locked.skip_reason = skip_reason
        locked.save(update_fields=["status", "next_attempt_at", "skip_reason", "updated_at"])
        MessageLog.objects.create(message=locked, at=at, status=status, attempt=locked.attempts, note=str(note)[:300])
    return locked


def _record_attempt(message: Message, result: SendResult, provider_name: str, moment: datetime) -> Message:
    with transaction.atomic():
        locked = Message.objects.select_for_update().get(pk=message.pk)
        locked.attempts += 1
        locked.provider = provider_name[:20]
        note = ""
        if result.ok:
            locked.status = result.status
            locked.provider_ref = result.provider_ref[:128]
            locked.sent_at = moment
            if result.status == MessageStatus.DELIVERED:
                locked.delivered_at = moment
            locked.last_error = ""
            locked.next_attempt_at = None
            note = locked.provider_ref
        else:
            locked.last_error = scrub(result.error) or "failed"
            note = locked.last_error
            if result.permanent or locked.attempts >= max_attempts():
                locked.status = MessageStatus.FAILED
                locked.next_attempt_at = None
            else:
                wait = retry_minutes()[locked.attempts - 1]
                locked.status = MessageStatus.QUEUED
                locked.next_attempt_at = moment + timedelta(minutes=wait)
                note = f"{note}; 将于 {wait} 分钟后重试 / retry in {wait} min"
        locked.save()
        MessageLog.objects.create(
            message=locked, at=moment, status=locked.status, attempt=locked.attempts, note=note[:300]
        )
    # Never the recipient: the message id, channel and outcome are enough to follow a delivery.
    log.info(
        "notify.attempt",
        extra={
            "message_id": locked.pk,
            "channel": locked.channel,
            "event": locked.event,
            "status": locked.status,
            "attempt": locked.attempts,
            "provider": locked.provider,
        },
    )
    return locked


class _ProgressLike(Protocol):
    def advance(self, count: int = 1) -> None: ...
    def finish(self) -> None: ...


def notify_send_due(
    *, now: datetime | None = None, progress: Callable[[int], _ProgressLike] | None = None
) -> dict[str, int]:
    """Deliver every due message of every organisation: queued ones (first attempts whose task was lost,
    retries whose backoff has passed), held ones whose quiet hours are over, and ones whose sending lease
    lapsed. The periodic task and ``manage.py notify_send_due`` both call this. Returns counts by outcome.

    ``progress(total)`` may return a progress bar (``advance`` / ``finish``) for the command."""
    moment = now or timezone.now()
    ids = list(messages_due(moment).values_list("id", flat=True))
    bar = progress(len(ids)) if progress is not None else None
    counts: dict[str, int] = {"due": len(ids)}
    for message_id in ids:
        message = message_deliver(message_id=message_id, now=moment)
        outcome = message.status if message is not None else "not_due"
        counts[outcome] = counts.get(outcome, 0) + 1
        if bar is not None:
            bar.advance()
    if bar is not None:
        bar.finish()
    return counts


def message_retry(*, actor: Actor, message: Message, now: datetime | None = None) -> Message:
    """Send a failed message again (one more attempt), by hand. Audited."""
    actor.require(Perm.NOTIFY_VIEW)
    message = message_get(actor, message.pk)
    moment = now or timezone.now()
    with transaction.atomic():
        locked = Message.objects.select_for_update().get(pk=message.pk)
        if locked.status != MessageStatus.FAILED:
            raise ValidationFailed(
                "notify.not_failed",
                zh="只有发送失败的消息可以重发。",
                en="Only a failed message can be sent again.",
            )
        locked.status = MessageStatus.QUEUED
        locked.next_attempt_at = moment
        locked.save(update_fields=["status", "next_attempt_at", "updated_at"])
        MessageLog.objects.create(
            message=locked,
            at=moment,
            status=MessageStatus.QUEUED,
            attempt=locked.attempts,
            note="手工重发 / sent again by hand",
            staff=actor.staff,
        )
        audit_record(actor=actor, action="notify.retry", obj=locked, detail={"event": locked.event})
        _deliver_on_commit([locked.pk], now)
    return locked


def notify_delivery_report(
    *, provider: str, provider_ref: str, delivered: bool, error: str = "", now: datetime | None = None
) -> Message | None:
    """A gateway's delivery receipt: a sent message becomes delivered, or failed (the gateway accepted it
    but the handset never got it; not retried). Unknown references are ignored (None)."""
    moment = now or timezone.now()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .filter(provider=provider, provider_ref=provider_ref, status=MessageStatus.SENT)
            .first()
        )
        if message is None:
            return None
        if delivered:
            message.status = MessageStatus.DELIVERED
            message.delivered_at = moment
        else:
            message.status = MessageStatus.FAILED
            message.last_error = scrub(error) or "not delivered"
        message.save()
        MessageLog.objects.create(
            message=message, at=moment, status=message.status, attempt=message.attempts, note=message.last_error
        )
    return message


# --- Templates, settings, a member's preferences ----------------------------------------------------------------


def _check_choice(value: str, allowed: Sequence[str], field: str, zh: str, en: str) -> None:
    if value not in allowed:
        raise ValidationFailed(
            f"notify.invalid_{field}",
            zh=f"{zh}：{value!r} 不是有效选项。",
            en=f"{en}: {value!r} is not a valid choice.",
            field=field,
        )


def notify_template_save(
    *, actor: Actor, event: str, channel: str, language: str, subject: str, body: str
) -> NotifyTemplate | None:
    """Reword one (event, channel, language). Placeholders must be the event's variables. Saving the
    code's default wording removes the organisation's own (returns None). Audited."""
    actor.require(Perm.NOTIFY_MANAGE)
    _check_choice(event, list(EVENTS), "event", "事件", "event")
    _check_choice(channel, Channel.values, "channel", "渠道", "channel")
    _check_choice(language, Language.values, "language", "语言", "language")
    spec = event_spec(event)
    subject = " ".join((subject or "").split())
    body = (body or "").strip().replace("\r\n", "\n")
    if not body:
        raise ValidationFailed("input.required", zh="内容：必填。", en="body: this field is required.", field="body")
    if len(body) > MAX_BODY or len(subject) > MAX_SUBJECT:
        raise ValidationFailed(
            "notify.template_too_long",
            zh=f"内容最多 {MAX_BODY} 个字符，标题最多 {MAX_SUBJECT} 个字符。",
            en=f"body: at most {MAX_BODY} characters; subject: at most {MAX_SUBJECT}.",
            field="body" if len(body) > MAX_BODY else "subject",
        )
    for field, text in (("subject", subject), ("body", body)):
        unknown = sorted({p for p in placeholders(text) if p not in spec.variables})
        if unknown:
            allowed = " ".join(f"{{{v}}}" for v in spec.variables)
            raise ValidationFailed(
                "notify.unknown_placeholder",
                zh=f"{'标题' if field == 'subject' else '内容'}：占位符 {'、'.join(unknown)} 不可用；可用：{allowed}。",
                en=f"{field}: {', '.join(unknown)} cannot be used; available: {allowed}.",
                field=field,
                extra={"unknown": unknown, "available": list(spec.variables)},
            )
    default_subject, default_body = spec.defaults.get(language) or spec.defaults[Language.ZH]
    with transaction.atomic():
        if (subject, body) == (default_subject, default_body):
            NotifyTemplate.objects.filter(
                organisation=actor.organisation, event=event, channel=channel, language=language
            ).delete()
            row = None
        else:
            row, _created = NotifyTemplate.objects.update_or_create(
                organisation=actor.organisation,
                event=event,
                channel=channel,
                language=language,
                defaults={"subject": subject, "body": body, "updated_by": actor.staff},
            )
        audit_record(
            actor=actor,
            action="notify.template_save" if row is not None else "notify.template_reset",
            object_type="notify.NotifyTemplate",
            object_id=f"{event}/{channel}/{language}",
            detail={"event": event, "channel": channel, "language": language},
        )
    return row


def notify_template_reset(*, actor: Actor, event: str, channel: str, language: str) -> None:
    """Go back to the code's default wording for (event, channel, language). Audited."""
    _check_choice(event, list(EVENTS), "event", "事件", "event")
    subject, body = EVENTS[event].defaults.get(language) or EVENTS[event].defaults[Language.ZH]
    notify_template_save(actor=actor, event=event, channel=channel, language=language, subject=subject, body=body)


def notify_settings_set(
    *,
    actor: Actor,
    quiet_start: time,
    quiet_end: time,
    time_zone: str,
    marketing_events: Sequence[str],
    channels: Sequence[str],
) -> NotifySettings:
    """Set quiet hours, the time zone for messages without a store, which events are marketing and the
    default channels. Audited."""
    actor.require(Perm.NOTIFY_MANAGE)
    if zone_of(time_zone).key != (time_zone or "").strip():
        raise ValidationFailed(
            "notify.invalid_time_zone",
            zh=f"时区：{time_zone!r} 不是有效的时区（如 Asia/Shanghai）。",
            en=f"time_zone: {time_zone!r} is not a time zone (e.g. Asia/Shanghai).",
            field="time_zone",
        )
    for event in marketing_events:
        _check_choice(event, list(EVENTS), "marketing_events", "营销类事件", "marketing_events")
    for channel in channels:
        _check_choice(channel, Channel.values, "channels", "渠道", "channels")
    if not channels:
        raise ValidationFailed(
            "notify.channels_required",
            zh="默认渠道：至少选择一个。",
            en="channels: choose at least one.",
            field="channels",
        )
    with transaction.atomic():
        row, _created = NotifySettings.objects.select_for_update().get_or_create(organisation=actor.organisation)
        row.quiet_start = quiet_start
        row.quiet_end = quiet_end
        row.time_zone = time_zone.strip()
        row.marketing_events = sorted(set(marketing_events))
        row.channels = [c for c in Channel.values if c in set(channels)]
        row.save()
        audit_record(
            actor=actor,
            action="notify.settings_set",
            obj=row,
            detail={
                "quiet_hours": [quiet_start.strftime("%H:%M"), quiet_end.strftime("%H:%M")],
                "time_zone": row.time_zone,
                "marketing_events": row.marketing_events,
                "channels": row.channels,
            },
        )
    return row


def notify_preferences_set(*, actor: Actor, member: Member, language: str, opt_outs: Mapping[str, str | None]) -> None:
    """Record the member's message language and, per channel, her opt-out (``all``, ``marketing`` or None
    to receive messages again). Channels not named are left as they are. Audited (no personal data)."""
    actor.require(Perm.MEMBER_CONSENT)
    member = member_get(actor, member.pk)
    _check_choice(language, Language.values, "language", "语言", "language")
    for channel, scope in opt_outs.items():
        _check_choice(channel, Channel.values, "channel", "渠道", "channel")
        if scope is not None:
            _check_choice(scope, OptOutScope.values, "scope", "退订范围", "scope")
    with transaction.atomic():
        MemberPreference.objects.update_or_create(
            member=member, defaults={"organisation_id": member.organisation_id, "language": language}
        )
        for channel, scope in opt_outs.items():
            if scope is None:
                OptOut.objects.filter(member=member, channel=channel).delete()
            else:
                OptOut.objects.update_or_create(
                    member=member,
                    channel=channel,
                    defaults={"organisation_id": member.organisation_id, "scope": scope, "recorded_by": actor.staff},
                )
        audit_record(
            actor=actor,
            action="notify.preferences",
            obj=member,
            detail={"language": language, "opt_outs": dict(opt_outs)},
        )


# --- Member merge, export, erasure --------------------------------------------------------------------------------


def notify_merge(actor: Actor, survivor: Member, merged: Member) -> dict[str, Any]:
    """``members.services.MERGE_HOOKS`` entry: the merged member's messages and her opt-outs (where the
    survivor has none for the channel) move to the survivor."""
    moved = Message.objects.filter(member=merged).update(member=survivor)
    taken = set(OptOut.objects.filter(member=survivor).values_list("channel", flat=True))
    opt_outs = OptOut.objects.filter(member=merged).exclude(channel__in=taken).update(member=survivor)
    OptOut.objects.filter(member=merged).delete()
    return {"messages": moved, "opt_outs": opt_outs}


def notify_export_section(member: Member) -> tuple[str, Any]:
    """``members.services.EXPORT_SECTIONS`` entry: her message language, opt-outs and every message."""
    prefs = member_preferences(member)
    return (
        "notifications",
        {
            "language": prefs.language,
            "opt_outs": [{"channel": c, "scope": s} for c, s in sorted(prefs.opt_outs.items())],
            "messages": [
                {
                    "at": m.created_at.isoformat(),
                    "channel": m.channel,
                    "event": m.event,
                    "status": m.status,
                    "skip_reason": m.skip_reason,
                    "recipient": m.recipient,
                    "subject": m.subject or "",
                    "body": m.body or "",
                    "sent_at": m.sent_at.isoformat() if m.sent_at else None,
                    "redacted": m.redacted,
                }
                for m in member_messages(member)
            ],
        },
    )


def notify_erasure_hook(member: Member) -> list[dict[str, str]]:
    """``members.services.RETENTION_HOOKS`` entry, run inside ``member_erase``'s transaction for her and for
    each record merged into her: messages are not records the law asks us to keep, so their recipient,
    subject and body are redacted, and any message still waiting is dropped. Keeps nothing (returns [])."""
    Message.objects.filter(member=member, status__in=PENDING_STATUSES).update(
        status=MessageStatus.SKIPPED, skip_reason=SkipReason.MEMBER_ERASED, next_attempt_at=None
    )
    Message.objects.filter(member=member).update(recipient=None, subject=None, body=None, last_error="", redacted=True)
    return []
