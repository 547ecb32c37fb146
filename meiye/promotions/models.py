"""Coupons (优惠券) and promotions (促销): what lowers a bill's price besides the tier discount.

A coupon template says what a coupon does; a coupon is one issued to one member, used on one bill at most
and given back by a full refund while still valid (S-22). A promotion applies to every bill that meets it
(满减 spend X save Y, a time-limited percentage off, buy X get Y). How offers combine with the tier discount
is the organisation's stacking policy (S-21: by default the best single offer for the customer wins).

Amounts are fen; percentages are basis points of the price the customer PAYS (8,800 = pays 88%).
Which stores, categories and items an offer covers are JSON lists of ids (checked by the services when
saved): a checkout reads every live promotion in ONE query, with no join tables to prefetch.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

BASIS_POINTS = 10_000


class CouponKind(models.TextChoices):
    AMOUNT_OFF = "amount_off", _("满额减 Amount off")
    PERCENT_OFF = "percent_off", _("折扣 Percent off")
    FREE_SERVICE = "free_service", _("免费服务 Free service")


class CouponTemplate(models.Model):
    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("名称 Name"), max_length=60)
    kind = models.CharField(max_length=16, choices=CouponKind.choices)
    amount_off_fen = models.BigIntegerField(default=0, help_text="amount_off: fen off the eligible lines")
    pay_bp = models.PositiveIntegerField(default=BASIS_POINTS, help_text="percent_off: share paid, 8,800 = 88%")
    free_item = models.ForeignKey(
        "catalog.Item", on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="free_service"
    )
    min_spend_fen = models.BigIntegerField(default=0, help_text="the eligible lines must total at least this")
    category_ids = models.JSONField(default=list, blank=True, help_text="catalog category ids; empty: all")
    store_ids = models.JSONField(default=list, blank=True, help_text="store ids; empty: every store")
    valid_from = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    valid_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="valid N days from issue (instead of fixed dates)"
    )
    per_member_limit = models.PositiveSmallIntegerField(default=0, help_text="0: no limit")
    stackable = models.BooleanField(default=False, help_text="may be used with another coupon on one bill")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_active", "name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_off_fen__gte=0, min_spend_fen__gte=0, pay_bp__lte=BASIS_POINTS),
                name="promotions_template_amounts_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CouponStatus(models.TextChoices):
    ACTIVE = "active", _("可用 Active")
    USED = "used", _("已使用 Used")
    VOID = "void", _("已作废 Void")


class Coupon(models.Model):
    """One coupon held by one member. ``used_bill_id`` names the sales bill (no foreign key: sales sits
    above this app); a full refund of that bill makes the coupon active again if it is still valid."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="coupons")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="coupons")
    code = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=CouponStatus.choices, default=CouponStatus.ACTIVE)
    valid_from = models.DateField()
    valid_until = models.DateField()
    source = models.CharField(max_length=40, help_text="why: 'manual', 'rule:referral', 'campaign:12' …")
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    issued_at = models.DateTimeField(auto_now_add=True)
    idempotency_key = models.CharField(max_length=120, null=True, blank=True)
    used_bill_id = models.BigIntegerField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    discount_fen = models.BigIntegerField(default=0, help_text="what it took off the bill it was used on")

    class Meta:
        ordering = ["valid_until", "pk"]
        indexes = [models.Index(fields=["member", "status"], name="promotions_coupon_member_st")]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "code"], name="promotions_coupon_unique_code"),
            models.UniqueConstraint(
                fields=["organisation", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="promotions_coupon_unique_key",
            ),
            models.CheckConstraint(
                condition=models.Q(valid_until__gte=models.F("valid_from")), name="promotions_coupon_dates"
            ),
            models.CheckConstraint(
                condition=models.Q(status="used", used_bill_id__isnull=False) | ~models.Q(status="used"),
                name="promotions_coupon_used_has_bill",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} {self.code}"


class PromotionKind(models.TextChoices):
    SPEND_SAVE = "spend_save", _("满减 Spend X save Y")
    PERCENT_OFF = "percent_off", _("限时折扣 Percent off")
    BUY_X_GET_Y = "buy_x_get_y", _("买X送Y Buy X get Y")


class Promotion(models.Model):
    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("名称 Name"), max_length=60)
    kind = models.CharField(max_length=16, choices=PromotionKind.choices)
    threshold_fen = models.BigIntegerField(default=0, help_text="spend_save: the eligible lines reach this…")
    save_fen = models.BigIntegerField(default=0, help_text="spend_save: …and this much comes off")
    repeat = models.BooleanField(default=False, help_text="spend_save: every full threshold (满1000减100, 2000减200)")
    pay_bp = models.PositiveIntegerField(default=BASIS_POINTS, help_text="percent_off: share paid, 8,800 = 88%")
    buy_quantity = models.PositiveSmallIntegerField(default=0, help_text="buy_x_get_y: X")
    free_quantity = models.PositiveSmallIntegerField(default=0, help_text="buy_x_get_y: Y")
    item_kind = models.CharField(max_length=10, blank=True, help_text="'service', 'product' or blank for both")
    category_ids = models.JSONField(default=list, blank=True, help_text="catalog category ids; empty: all")
    item_ids = models.JSONField(default=list, blank=True, help_text="catalog item ids; empty: all")
    store_ids = models.JSONField(default=list, blank=True, help_text="store ids; empty: every store")
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)
    priority = models.PositiveSmallIntegerField(default=100, help_text="lower first when promotions stack")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["priority", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(threshold_fen__gte=0, save_fen__gte=0, pay_bp__lte=BASIS_POINTS),
                name="promotions_promotion_amounts_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StackingPolicy(models.TextChoices):
    BEST_SINGLE = "best_single", _("择优（单一优惠） Best single offer")
    STACK = "stack", _("叠加 Stack tier discount and promotions")


class PromotionSettings(models.Model):
    organisation = models.OneToOneField("org.Organisation", on_delete=models.PROTECT, related_name="+")
    stacking = models.CharField(max_length=12, choices=StackingPolicy.choices, default=StackingPolicy.BEST_SINGLE)
    version = models.PositiveBigIntegerField(
        default=0, help_text="a new random stamp on every change to promotions or the policy: checkouts cache by it"
    )

    def __str__(self) -> str:
        return f"{self.organisation_id}: {self.stacking}"
