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
