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
    # Card product and recharge rule (issue 5). ``bonus_fen`` is the bonus credited with the recharge (the
    # hand bonus plus the rule's first part); ``pending_bonus_fen`` the rule's later parts (BonusInstalment).
    product = models.ForeignKey(
        "wallet.CardProduct", on_delete=models.PROTECT, null=True, blank=True, related_name="recharges"
    )
    rule = models.ForeignKey(
        "wallet.RechargeRule", on_delete=models.PROTECT, null=True, blank=True, related_name="recharges"
    )
    named = models.BooleanField(_("记名 Named"), default=True)
    hand_bonus_fen = models.BigIntegerField(_("手工赠送（分） Hand bonus (fen)"), default=0)
    rule_bonus_fen = models.BigIntegerField(_("规则赠送（分） Rule bonus (fen)"), default=0)
    pending_bonus_fen = models.BigIntegerField(_("待到账赠送（分） Pending bonus (fen)"), default=0)
    bonus_points = models.PositiveIntegerField(_("赠送积分 Bonus points"), default=0)
    points_journal = models.ForeignKey(
        "ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    contract = models.ForeignKey(
        "contracts.Contract", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    local_date = models.DateField(_("充值日期 Recharge date"), null=True, blank=True)
    cooling_off_until = models.DateField(_("冷静期至 Cooling-off until"), null=True, blank=True)
    # The cooling-off refund (wallet_recharge_refund), if any.
    refund_journal = models.OneToOneField(
        "ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    refund_tender = models.CharField(max_length=10, choices=Tender.choices, blank=True)
    refund_reason = models.CharField(max_length=200, blank=True)
    refunded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "idempotency_key"], name="wallet_recharge_unique_key"),
            models.CheckConstraint(
                condition=models.Q(hand_bonus_fen__gte=0, rule_bonus_fen__gte=0, pending_bonus_fen__gte=0),
                name="wallet_recharge_bonus_parts_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    bonus_fen=models.F("hand_bonus_fen") + models.F("rule_bonus_fen") - models.F("pending_bonus_fen")
                ),
                name="wallet_recharge_bonus_parts_add_up",
            ),
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


class RechargeRule(models.Model):
    """A recharge rule (充值规则, 充X送Y) of a card product: a recharge of at least ``threshold_fen`` gets
    ``bonus_fen`` of bonus, in ``instalments`` equal monthly parts (1: all at once; N: the first part at once,
    the others on the recharge's day of the month, clamped to the month's end; parts split by the largest
    remainder), plus ``bonus_points`` points, ``coupon_count`` coupons of ``coupon_template`` and the tier
    ``grant_tier`` for ``grant_months`` months. Of the active rules valid on the recharge's day, the one with
    the highest threshold not above the amount applies (a tie: the newest)."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey(CardProduct, on_delete=models.PROTECT, related_name="rules")
    name = models.CharField(_("名称 Name"), max_length=60, blank=True)
    threshold_fen = models.BigIntegerField(_("充值满（分） Recharge at least (fen)"))
    bonus_fen = models.BigIntegerField(_("赠送金额（分） Bonus (fen)"), default=0)
    instalments = models.PositiveSmallIntegerField(_("分期月数 Monthly parts"), default=1)
    bonus_points = models.PositiveIntegerField(_("赠送积分 Bonus points"), default=0)
    coupon_template = models.ForeignKey(
        "promotions.CouponTemplate", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    coupon_count = models.PositiveSmallIntegerField(_("赠券张数 Coupons"), default=0)
    grant_tier = models.ForeignKey("loyalty.Tier", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    grant_months = models.PositiveSmallIntegerField(_("等级月数 Tier months"), default=12)
    active = models.BooleanField(_("启用 Active"), default=True)
    starts_on = models.DateField(_("开始日期 From"), null=True, blank=True)
    ends_on = models.DateField(_("结束日期 Until"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(threshold_fen__gt=0), name="wallet_rule_threshold_positive"),
            models.CheckConstraint(condition=models.Q(bonus_fen__gte=0), name="wallet_rule_bonus_not_negative"),
            models.CheckConstraint(
                condition=models.Q(instalments__gte=1, instalments__lte=60), name="wallet_rule_instalments_range"
            ),
            models.CheckConstraint(
                condition=models.Q(coupon_count=0) | models.Q(coupon_template__isnull=False),
                name="wallet_rule_coupon_needs_template",
            ),
            models.CheckConstraint(
                condition=models.Q(grant_months__gte=1, grant_months__lte=120), name="wallet_rule_grant_months_range"
            ),
            models.CheckConstraint(
                condition=models.Q(starts_on__isnull=True)
                | models.Q(ends_on__isnull=True)
                | models.Q(ends_on__gte=models.F("starts_on")),
                name="wallet_rule_dates_in_order",
            ),
        ]
        indexes = [models.Index(fields=["product", "active", "-threshold_fen"], name="wallet_rule_product_idx")]

    def __str__(self) -> str:
        return self.name or f"rule #{self.pk}"


class InstalmentStatus(models.TextChoices):
    PENDING = "pending", _("待到账 Pending")
    RELEASED = "released", _("已到账 Released")
    CANCELLED = "cancelled", _("已取消 Cancelled")


class BonusInstalment(models.Model):
    """One later part of a rule's bonus (the first part is paid with the recharge). While pending its
    amount sits in the member's ``wallet_bonus_pending`` account; the job (``wallet_bonus_release_due``)
    moves it to her bonus on ``due_on`` (journal ``wallet.bonus_release``, key
    ``wallet.bonus_release:<pk>``); a refund, a close cancels it (back to the store's ``bonus_issued``).
    ``member`` follows the pending money (a merge, a transfer move it)."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    recharge = models.ForeignKey(Recharge, on_delete=models.PROTECT, related_name="instalments")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveSmallIntegerField(_("期数 Part"))
    due_on = models.DateField(_("到账日期 Due on"))
    amount_fen = models.BigIntegerField(_("金额（分） Amount (fen)"))
    status = models.CharField(max_length=10, choices=InstalmentStatus.choices, default=InstalmentStatus.PENDING)
    journal = models.ForeignKey("ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recharge", "seq"], name="wallet_instalment_unique_seq"),
            models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="wallet_instalment_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(status__in=InstalmentStatus.values), name="wallet_instalment_valid_status"
            ),
            models.CheckConstraint(
                condition=models.Q(status="pending", journal__isnull=True)
                | (~models.Q(status="pending") & models.Q(journal__isnull=False)),
                name="wallet_instalment_settled_has_journal",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organisation", "due_on", "id"],
                name="wallet_instalment_due_idx",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["member", "status"], name="wallet_instalment_member_idx"),
        ]

    def __str__(self) -> str:
        return f"instalment #{self.pk} ({self.seq}) of recharge #{self.recharge_id}"


class WalletClosure(models.Model):
    """A closing refund (退卡结清): the member's remaining principal paid back by ``tender``, her released
    bonus forfeited (store ``bonus_forfeited``) and her pending bonus cancelled (store ``bonus_issued``), in
    one ``wallet.close`` journal."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    principal_fen = models.BigIntegerField(_("退还本金（分） Principal refunded (fen)"))
    bonus_forfeited_fen = models.BigIntegerField(_("扣回赠送金（分） Bonus forfeited (fen)"))
    pending_cancelled_fen = models.BigIntegerField(_("取消待到账（分） Pending bonus cancelled (fen)"))
    tender = models.CharField(_("退款方式 Tender"), max_length=10, choices=Tender.choices)
    reason = models.CharField(_("原因 Reason"), max_length=200)
    journal = models.OneToOneField("ledger.Journal", on_delete=models.PROTECT, null=True, related_name="+")
    idempotency_key = models.CharField(max_length=128)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "idempotency_key"], name="wallet_closure_unique_key"),
            models.CheckConstraint(
                condition=models.Q(principal_fen__gte=0, bonus_forfeited_fen__gte=0, pending_cancelled_fen__gte=0),
                name="wallet_closure_amounts_not_negative",
            ),
            models.CheckConstraint(condition=models.Q(tender__in=Tender.values), name="wallet_closure_valid_tender"),
        ]

    def __str__(self) -> str:
        return f"closure #{self.pk}"
