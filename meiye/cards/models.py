"""Member cards (会员卡): the card numbers a member pays with, and payment security (ADR 0006).

A card is only a way to name the member at the till: balances (principal, bonus, pending bonus, package
sessions) are the member's, so a replacement card carries everything without a ledger movement. A card
number is not personal data; it is shown in full.

- ``MemberCard``: a number (unique per organisation), a ``wallet.CardProduct``, named (记名) or anonymous,
  physical or virtual, and a status. At most one *live* card (active, frozen or lost) per member.
- ``CardAlias``: an old number (imported from another system, or the virtual number a physical card was
  bound over) that still finds its card.
- ``CardSettings``: a store's replacement fee, whether balances may be transferred, whether every member
  needs a password or a one-time code to pay from stored value.
- ``PaymentPassword``: a member's 6-digit payment password (a password hash, never readable) and the
  lock-out counter; ``PaymentCode``: one-time codes sent by SMS (hashed; the plain code is kept encrypted
  only until the SMS gateway has it, and never shown to staff).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from meiye.core.fields import EncryptedTextField


class CardStatus(models.TextChoices):
    ACTIVE = "active", _("正常 Active")
    FROZEN = "frozen", _("冻结 Frozen")
    LOST = "lost", _("挂失 Reported lost")
    REPLACED = "replaced", _("已补卡 Replaced")
    CLOSED = "closed", _("已销卡 Closed")


LIVE_STATUSES = (CardStatus.ACTIVE, CardStatus.FROZEN, CardStatus.LOST)


class CardMedium(models.TextChoices):
    PHYSICAL = "physical", _("实体卡 Physical")
    VIRTUAL = "virtual", _("电子卡 Virtual")


class AliasSource(models.TextChoices):
    IMPORT = "import", _("旧系统导入 Imported")
    VIRTUAL = "virtual", _("绑定前的电子卡号 Virtual number before binding")


class MemberCard(models.Model):
    """One card a member pays with. ``replaced_by`` points at the card that replaced it (S-18)."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="cards")
    number = models.CharField(_("卡号 Card number"), max_length=32)
    product = models.ForeignKey("wallet.CardProduct", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    named = models.BooleanField(_("记名 Named"), default=True)
    medium = models.CharField(_("介质 Medium"), max_length=10, choices=CardMedium.choices)
    status = models.CharField(_("状态 Status"), max_length=10, choices=CardStatus.choices, default=CardStatus.ACTIVE)
    replaced_by = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaces")
    issued_at = models.DateTimeField(auto_now_add=True)
    issued_store = models.ForeignKey("org.Store", on_delete=models.PROTECT, null=True, related_name="+")
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_reason = models.CharField(_("原因 Reason"), max_length=200, blank=True)
    frozen_at = models.DateTimeField(null=True, blank=True)
    lost_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The key of the issue or replacement that created the card (replays return it).
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)
    # The key of the closing (``card_close``), so a retry returns the first closing.
    closed_key = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "number"], name="cards_card_unique_number"),
            models.UniqueConstraint(
                fields=["member"],
                condition=models.Q(status__in=["active", "frozen", "lost"]),
                name="cards_card_one_live_per_member",
            ),
            models.UniqueConstraint(
                fields=["organisation", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="cards_card_unique_key",
            ),
            models.CheckConstraint(condition=models.Q(status__in=CardStatus.values), name="cards_card_valid_status"),
            models.CheckConstraint(condition=models.Q(medium__in=CardMedium.values), name="cards_card_valid_medium"),
        ]
        indexes = [models.Index(fields=["member", "status"], name="cards_card_member_idx")]

    def __str__(self) -> str:
        return self.number

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


class CardAlias(models.Model):
    """Another number that finds a card: an old system's card number, or a virtual number bound over."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    number = models.CharField(_("旧卡号 Old number"), max_length=32)
    card = models.ForeignKey(MemberCard, on_delete=models.PROTECT, related_name="aliases")
    source = models.CharField(max_length=10, choices=AliasSource.choices, default=AliasSource.IMPORT)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")

    class Meta:
        verbose_name_plural = "card aliases"
        constraints = [
            models.UniqueConstraint(fields=["organisation", "number"], name="cards_alias_unique_number"),
            models.CheckConstraint(condition=models.Q(source__in=AliasSource.values), name="cards_alias_valid_source"),
        ]

    def __str__(self) -> str:
        return f"{self.number} → {self.card_id}"


class CardSettings(models.Model):
    """A store's card rules. Without a row: no fee, no transfers, authorisation only for members with a password."""

    store = models.OneToOneField("org.Store", on_delete=models.PROTECT, related_name="+")
    replacement_fee_fen = models.BigIntegerField(_("补卡工本费（分） Replacement fee (fen)"), default=0)
    allow_balance_transfer = models.BooleanField(_("允许转赠余额 Allow balance transfer"), default=False)
    require_payment_auth = models.BooleanField(
        _("储值支付须验证 Stored-value payment needs a password or code"), default=False
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "card settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(replacement_fee_fen__gte=0), name="cards_settings_fee_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"card settings of store {self.store_id}"


class PaymentPassword(models.Model):
    """A member's payment password and lock-out state (one row per member; ``password_hash`` empty: none set).

    The row also counts wrong one-time codes of a member without a password, so the lock-out is per member.
    """

    member = models.OneToOneField("members.Member", on_delete=models.PROTECT, related_name="+")
    password_hash = models.CharField(max_length=256, blank=True)
    set_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveSmallIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(password_hash="") | models.Q(set_at__isnull=False),
                name="cards_password_set_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"payment password of member {self.member_id}"

    @property
    def is_set(self) -> bool:
        return bool(self.password_hash)


class CodePurpose(models.TextChoices):
    PAYMENT = "payment", _("储值支付 Stored-value payment")
    PASSWORD = "password", _("设置支付密码 Set the payment password")


class PaymentCode(models.Model):
    """A one-time code sent to the member's phone. ``code_hash`` checks it; ``code_sealed`` (encrypted) is
    read only by the SMS delivery and cleared when the code is used or replaced."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=10, choices=CodePurpose.choices)
    code_hash = models.CharField(max_length=256)
    code_sealed = EncryptedTextField(purpose="cards.PaymentCode.code")
    message_key = models.CharField(max_length=128, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(purpose__in=CodePurpose.values), name="cards_code_valid_purpose"),
        ]
        indexes = [models.Index(fields=["member", "purpose", "-created_at"], name="cards_code_member_idx")]

    def __str__(self) -> str:
        return f"payment code #{self.pk} ({self.purpose})"
