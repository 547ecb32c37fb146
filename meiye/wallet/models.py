"""Stored value (储值): a member's principal (本金, money she paid in) and bonus (赠送金, given by the store).

Balances live in the ledger (ADR 0003): ("member", pk, "CNY", "wallet_principal") and ("member", pk, "CNY",
"wallet_bonus"), which may not go negative. This app keeps the recharges (the business record of each
top-up, kept for prepaid-card record keeping) and each store's rule for spending principal and bonus.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class SpendOrder(models.TextChoices):
    PROPORTIONAL = "proportional", _("按比例 In proportion to the balances")
    PRINCIPAL_FIRST = "principal_first", _("先本金 Principal first")
    BONUS_FIRST = "bonus_first", _("先赠送金 Bonus first")


class Tender(models.TextChoices):
    CASH = "cash", _("现金 Cash")
    CARD = "card", _("银行卡 Bank card")
    WECHAT = "wechat", _("微信 WeChat Pay")
    ALIPAY = "alipay", _("支付宝 Alipay")


class WalletSettings(models.Model):
    """A store's stored-value rules. Without a row the store spends in proportion (the reference rule)."""

    store = models.OneToOneField("org.Store", on_delete=models.PROTECT, related_name="+")
    spend_order = models.CharField(
        _("扣款顺序 Spend order"), max_length=20, choices=SpendOrder.choices, default=SpendOrder.PROPORTIONAL
    )

    class Meta:
        verbose_name_plural = "wallet settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(spend_order__in=SpendOrder.values), name="wallet_settings_valid_spend_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.store_id}: {self.spend_order}"


class Recharge(models.Model):
    """One top-up of a member's stored value: what she paid, the bonus given, how she paid.

    ``journal`` is the ``wallet.recharge`` ledger journal; it is set in the same transaction that creates
    the row (the journal references the recharge, so the row is written first).
    """

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="recharges")
    amount_fen = models.BigIntegerField(_("充值金额（分） Amount (fen)"))
    bonus_fen = models.BigIntegerField(_("赠送金额（分） Bonus (fen)"), default=0)
    tender = models.CharField(_("支付方式 Tender"), max_length=10, choices=Tender.choices)
    external_ref = models.CharField(_("支付流水号 Payment reference"), max_length=64, blank=True)
    journal = models.OneToOneField("ledger.Journal", on_delete=models.PROTECT, null=True, related_name="+")
    idempotency_key = models.CharField(max_length=128)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "idempotency_key"], name="wallet_recharge_unique_key"),
            models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="wallet_recharge_amount_positive"),
            models.CheckConstraint(condition=models.Q(bonus_fen__gte=0), name="wallet_recharge_bonus_not_negative"),
            models.CheckConstraint(condition=models.Q(tender__in=Tender.values), name="wallet_recharge_valid_tender"),
        ]
        indexes = [models.Index(fields=["member", "-created_at"], name="wallet_recharge_member_idx")]

    def __str__(self) -> str:
        return f"recharge #{self.pk}"


class CardRefundMethod(models.TextChoices):
    """How a stored-value card's refund is worked out (shown on the prepaid contract)."""

    REMAINING_PRINCIPAL = "remaining_principal", _("退还剩余本金 The remaining principal")


class CardProduct(models.Model):
    """A kind of stored-value card (储值卡种类) the organisation sells: its name and its rules.

    Caps (S-16) limit the principal a card may hold: ``named_cap_fen`` for a card registered to a named
    member, ``anonymous_cap_fen`` for a bearer card (NULL: no cap). ``cooling_off_days`` is the period in
    which a recharge nothing was spent from is refunded in full (S-14). Recharge rules (充X送Y) belong to a
    product. A member's cards (``meiye.cards``) each name their product; a recharge without a card uses the
    organisation's default product (``is_default``), if it has one.
    """

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    code = models.SlugField(_("代码 Code"), max_length=32)
    name = models.CharField(_("名称 Name"), max_length=60)
    named_cap_fen = models.BigIntegerField(
        _("记名卡本金上限（分） Named-card principal cap (fen)"), null=True, blank=True
    )
    anonymous_cap_fen = models.BigIntegerField(
        _("不记名卡本金上限（分） Anonymous-card principal cap (fen)"), null=True, blank=True
    )
    cooling_off_days = models.PositiveSmallIntegerField(_("冷静期（天） Cooling-off days"), default=7)
    refund_method = models.CharField(
        _("退款方式 Refund method"),
        max_length=24,
        choices=CardRefundMethod.choices,
        default=CardRefundMethod.REMAINING_PRINCIPAL,
    )
    terms = models.TextField(_("合同补充条款 Extra contract terms"), blank=True)
    is_default = models.BooleanField(_("默认卡种 Default product"), default=False)
    active = models.BooleanField(_("启用 Active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "code"], name="wallet_card_product_unique_code"),
            models.UniqueConstraint(
                fields=["organisation"],
                condition=models.Q(is_default=True),
                name="wallet_card_product_one_default",
            ),
            models.CheckConstraint(
                condition=models.Q(named_cap_fen__isnull=True) | models.Q(named_cap_fen__gt=0),
                name="wallet_card_product_named_cap_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(anonymous_cap_fen__isnull=True) | models.Q(anonymous_cap_fen__gt=0),
                name="wallet_card_product_anonymous_cap_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(refund_method__in=CardRefundMethod.values),
                name="wallet_card_product_valid_refund_method",
            ),
        ]

    def __str__(self) -> str:
        return self.name
