"""Notifications (通知): the outbox of messages to members, templates, quiet hours and opt-outs.

A ``Message`` is one message on one channel: rendered when the event happens (in the member's language),
stored with its recipient encrypted, and delivered by a provider (``meiye.notify.providers``) from a Huey
task after the caller's transaction commits. Each change of its status is a ``MessageLog`` row.
Templates and settings have defaults in code (``meiye.notify.events``); rows here override them.
"""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from meiye.core.fields import EncryptedTextField


class Channel(models.TextChoices):
    SMS = "sms", _("短信 SMS")
    WECHAT = "wechat", _("微信模板消息 WeChat")
    EMAIL = "email", _("邮件 Email")


class Language(models.TextChoices):
    ZH = "zh-hans", _("中文 Chinese")
    EN = "en", _("英文 English")


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("待发送 Queued")
    HELD = "held", _("免打扰暂缓 Held for quiet hours")
    SENDING = "sending", _("发送中 Sending")
    SENT = "sent", _("已发送 Sent")
    DELIVERED = "delivered", _("已送达 Delivered")
    FAILED = "failed", _("发送失败 Failed")
    SKIPPED = "skipped", _("未发送 Skipped")


class SkipReason(models.TextChoices):
    OPTED_OUT = "opted_out", _("会员已退订 Opted out")
    NO_CONSENT = "no_consent", _("未同意营销 No marketing consent")
    NO_ADDRESS = "no_address", _("无联系方式 No address")
    MEMBER_ERASED = "member_erased", _("会员已注销 Member erased")


class OptOutScope(models.TextChoices):
    ALL = "all", _("全部消息 All messages")
    MARKETING = "marketing", _("仅营销消息 Marketing only")


# Statuses a message can still leave on its own (the delivery job looks at these).
PENDING_STATUSES = (MessageStatus.QUEUED, MessageStatus.HELD, MessageStatus.SENDING)


class NotifySettings(models.Model):
    """An organisation's notification rules. Without a row the defaults in ``meiye.notify.events`` apply."""

    organisation = models.OneToOneField("org.Organisation", on_delete=models.PROTECT, related_name="+")
    quiet_start = models.TimeField(_("免打扰开始 Quiet hours start"), default=time(21, 0))
    quiet_end = models.TimeField(_("免打扰结束 Quiet hours end"), default=time(9, 0))
    # Used when a message has no store; a store's own time zone wins.
    time_zone = models.CharField(_("时区 Time zone"), max_length=64, default="Asia/Shanghai")
    # Events that are marketing: they need the member's marketing consent and wait out quiet hours.
    marketing_events = models.JSONField(default=list)
    # Channels an event goes out on when the caller does not name them.
    channels = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "notify settings"

    def __str__(self) -> str:
        return f"notify settings of {self.organisation_id}"


class NotifyTemplate(models.Model):
    """An organisation's own wording for one event on one channel in one language (else the code default).

    Placeholders are ``{name}``-style and limited to the event's variables (checked when saved)."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    event = models.CharField(max_length=40)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    language = models.CharField(max_length=10, choices=Language.choices)
    subject = models.CharField(_("标题 Subject"), max_length=200, blank=True)
    body = models.TextField(_("内容 Body"))
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "event", "channel", "language"], name="notify_template_unique"
            ),
            models.CheckConstraint(condition=models.Q(channel__in=Channel.values), name="notify_template_channel"),
            models.CheckConstraint(condition=models.Q(language__in=Language.values), name="notify_template_language"),
        ]

    def __str__(self) -> str:
        return f"{self.event}/{self.channel}/{self.language}"


class MemberPreference(models.Model):
    """The language a member's messages are written in (Chinese unless she chose English)."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    member = models.OneToOneField("members.Member", on_delete=models.PROTECT, related_name="+")
    language = models.CharField(max_length=10, choices=Language.choices, default=Language.ZH)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.member_id}: {self.language}"


class OptOut(models.Model):
    """A member does not want messages on a channel: all of them, or marketing only (e.g. replied "T")."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    scope = models.CharField(max_length=10, choices=OptOutScope.choices, default=OptOutScope.ALL)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "channel"], name="notify_optout_unique"),
            models.CheckConstraint(condition=models.Q(channel__in=Channel.values), name="notify_optout_channel"),
            models.CheckConstraint(condition=models.Q(scope__in=OptOutScope.values), name="notify_optout_scope"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: no {self.scope} {self.channel}"


class Message(models.Model):
    """One message on one channel (the outbox row). The recipient, subject and body are encrypted.

    ``idempotency_key`` names the business event (``wallet.charge:<journal id>``): one message per
    (organisation, key, channel), so an event sends once however often it is reported.
    ``next_attempt_at`` is when the delivery job should look at the message next: now for a queued one,
    the end of quiet hours for a held one, the backoff for a failed attempt, a lease while sending.
    """

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    # The store the event happened in, else the member's home store: who may see the message.
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    event = models.CharField(max_length=40)
    marketing = models.BooleanField(default=False)
    language = models.CharField(max_length=10, choices=Language.choices, default=Language.ZH)
    recipient = EncryptedTextField(purpose="notify.Message.recipient")
    subject = EncryptedTextField(purpose="notify.Message.subject")
    body = EncryptedTextField(purpose="notify.Message.body")
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    skip_reason = models.CharField(max_length=20, choices=SkipReason.choices, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    provider_ref = models.CharField(max_length=128, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    idempotency_key = models.CharField(max_length=128)
    redacted = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "idempotency_key", "channel"], name="notify_message_unique_key"
            ),
            models.CheckConstraint(condition=models.Q(channel__in=Channel.values), name="notify_message_channel"),
            models.CheckConstraint(condition=models.Q(status__in=MessageStatus.values), name="notify_message_status"),
            models.CheckConstraint(
                condition=~models.Q(status=MessageStatus.SKIPPED) | ~models.Q(skip_reason=""),
                name="notify_message_skip_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notify_message_due_idx"),
            models.Index(fields=["organisation", "store", "-id"], name="notify_message_store_idx"),
            models.Index(fields=["member", "-id"], name="notify_message_member_idx"),
            models.Index(fields=["provider", "provider_ref"], name="notify_message_ref_idx"),
        ]

    def __str__(self) -> str:
        return f"message #{self.pk} {self.event}/{self.channel}"


class MessageLog(models.Model):
    """The status history of a message: queued, held, each attempt and its outcome, a retry by hand."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="logs")
    at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=MessageStatus.choices)
    attempt = models.PositiveSmallIntegerField(default=0)
    note = models.CharField(max_length=300, blank=True)
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.message_id}: {self.status}"
