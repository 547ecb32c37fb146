"""Bills (消费单), their lines and tenders, refunds, and each store's checkout settings.

Amounts are integer fen (``*_fen``), points and quantities integers. A bill is built while ``open``,
then completed in one transaction that posts everything to the ledger; from then on it is immutable
except for ``BillLine.refunded_quantity``, which refunds raise. Journals are referenced, never copied:
the ledger is the record of what moved, these rows are the record of why.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

DEFAULT_MANUAL_DISCOUNT_FLOOR_BP = 9500  # a cashier alone may go down to 95% of the member price (S-20)
DEFAULT_POINTS_OFFSET_CAP_BP = 1000  # points may pay at most 10% of the payable amount (S-06)
DEFAULT_POINTS_PER_YUAN_OFFSET = 100  # 100 points = 1 元 (S-06, Regular)
BASIS_POINTS = 10_000


class BillStatus(models.TextChoices):
    OPEN = "open", _("未结 Open")
    COMPLETED = "completed", _("已结账 Completed")
    VOIDED = "voided", _("已作废 Voided")


class TenderKind(models.TextChoices):
    CASH = "cash", _("现金 Cash")
    CARD = "card", _("银行卡 Bank card")
    WECHAT = "wechat", _("微信 WeChat Pay")
    ALIPAY = "alipay", _("支付宝 Alipay")
    STORED_VALUE = "stored_value", _("储值 Stored value")
    POINTS = "points", _("积分抵扣 Points offset")
    PACKAGE = "package", _("次卡/套餐 Package")
    GIFT_CARD = "gift_card", _("礼品卡 Gift card")


# Money from outside the system: it lands in the store's tender account and earns points and growth.
EXTERNAL_TENDERS: tuple[str, ...] = (TenderKind.CASH, TenderKind.CARD, TenderKind.WECHAT, TenderKind.ALIPAY)


class RefundDestination(models.TextChoices):
    ORIGINAL = "original", _("原路退回 To the original tenders")
    STORED_VALUE = "stored_value", _("退到储值 To stored value")


class SalesSettings(models.Model):
    """A store's checkout rules. A store without a row uses the defaults (see ``selectors.sales_settings``)."""

    store = models.OneToOneField("org.Store", on_delete=models.PROTECT, primary_key=True, related_name="+")
    manual_discount_floor_bp = models.PositiveIntegerField(
        _("收银员自主改价下限（基点） Cashier's own price floor (bp of member price)"),
        default=DEFAULT_MANUAL_DISCOUNT_FLOOR_BP,
    )
    points_offset_cap_bp = models.PositiveIntegerField(
        _("积分抵扣上限（基点） Points offset cap (bp of payable)"), default=DEFAULT_POINTS_OFFSET_CAP_BP
    )
    points_per_yuan_offset = models.PositiveIntegerField(
        _("每 1 元抵扣所需积分 Points per 1 元 offset"), default=DEFAULT_POINTS_PER_YUAN_OFFSET
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(manual_discount_floor_bp__gte=0, manual_discount_floor_bp__lte=BASIS_POINTS),
                name="sales_settings_floor_bp_range",
            ),
            models.CheckConstraint(
                condition=models.Q(points_offset_cap_bp__gte=0, points_offset_cap_bp__lte=BASIS_POINTS),
                name="sales_settings_cap_bp_range",
            ),
            models.CheckConstraint(
                condition=models.Q(points_per_yuan_offset__gt=0), name="sales_settings_ppy_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"sales settings of store {self.store_id}"


class BillSequence(models.Model):
    """The next bill number of a store; taken under a row lock so numbers have no gaps or duplicates."""

    store = models.OneToOneField("org.Store", on_delete=models.PROTECT, primary_key=True, related_name="+")
    next_value = models.PositiveBigIntegerField(default=1)

    def __str__(self) -> str:
        return f"store {self.store_id}: next {self.next_value}"


class Bill(models.Model):
    """A customer's bill in one store; ``member`` is empty for a walk-in customer."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    number = models.CharField(_("单号 Bill no."), max_length=48)
    status = models.CharField(max_length=10, choices=BillStatus.choices, default=BillStatus.OPEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=200, blank=True)

    list_total_fen = models.BigIntegerField(default=0)
    discount_total_fen = models.BigIntegerField(default=0)
    payable_total_fen = models.BigIntegerField(default=0)
    earning_total_fen = models.BigIntegerField(default=0, help_text="money that earned points and growth")
    points_earned = models.BigIntegerField(default=0)

    # The member's tier and price rules as they were when the bill was priced (receipt and disputes).
    member_snapshot = models.JSONField(default=dict, blank=True)

    # Completion is idempotent per (organisation, key): a replay with the same request hash returns this
    # bill; ``bill_checkout`` claims the key when it inserts the bill, ``bill_complete`` when it starts.
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)

    cny_journal = models.ForeignKey("ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    points_spend_journal = models.ForeignKey(
        "ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    points_earn_journal = models.ForeignKey(
        "ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    growth_journal = models.ForeignKey(
        "ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["store", "number"], name="sales_bill_unique_store_number"),
            models.UniqueConstraint(
                fields=["organisation", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="sales_bill_unique_org_idempotency_key",
            ),
            models.CheckConstraint(
                condition=models.Q(list_total_fen__gte=0, discount_total_fen__gte=0, payable_total_fen__gte=0),
                name="sales_bill_totals_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(payable_total_fen=models.F("list_total_fen") - models.F("discount_total_fen")),
                name="sales_bill_payable_is_list_minus_discount",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="completed") | models.Q(completed_at__isnull=False),
                name="sales_bill_completed_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["store", "status", "completed_at"], name="sales_bill_store_day_idx"),
            models.Index(fields=["member", "completed_at"], name="sales_bill_member_idx"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_open(self) -> bool:
        return self.status == BillStatus.OPEN


class BillLine(models.Model):
    """One item on a bill, with its price history (``price_steps``) and what it earned."""

    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="lines")
    item = models.ForeignKey("catalog.Item", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10)
    name = models.CharField(max_length=80)
    quantity = models.PositiveIntegerField(default=1)
    list_price_fen = models.BigIntegerField(help_text="the store's list price: the catalogue's or the store's own")
    unit_price_fen = models.BigIntegerField(help_text="the final price of one unit")
    discount_fen = models.BigIntegerField(
        default=0, help_text="the line's share of promotions and coupons priced on the whole bill (满减, coupons)"
    )
    line_total_fen = models.BigIntegerField(help_text="unit price × quantity − discount")
    # [{"step": "store_price", "unit_price_fen": 65000, "reason": "门店价 Store price"}, …] in pipeline order.
    price_steps = models.JSONField(default=list, blank=True)
    earning_category = models.CharField(max_length=20)
    commission_category = models.CharField(max_length=20)
    performed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    sold_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="who approved a manual price below the cashier's own floor",
    )
    earning_fen = models.BigIntegerField(default=0, help_text="real money allocated to this line")
    points_earned = models.BigIntegerField(default=0)
    # [{"step": "base_rate", "points_per_yuan": 1, "multiplier": "1/1"}, …] from the earning pipeline.
    earning_steps = models.JSONField(default=list, blank=True)
    refunded_quantity = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="sales_line_quantity_positive"),
            models.CheckConstraint(
                condition=models.Q(list_price_fen__gte=0, unit_price_fen__gte=0, line_total_fen__gte=0),
                name="sales_line_prices_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    line_total_fen=models.F("unit_price_fen") * models.F("quantity") - models.F("discount_fen")
                ),
                name="sales_line_total_is_unit_times_quantity_less_discount",
            ),
            models.CheckConstraint(condition=models.Q(discount_fen__gte=0), name="sales_line_discount_not_negative"),
            models.CheckConstraint(
                condition=models.Q(refunded_quantity__lte=models.F("quantity")),
                name="sales_line_refund_within_quantity",
            ),
            models.CheckConstraint(
                condition=models.Q(earning_fen__gte=0, earning_fen__lte=models.F("line_total_fen")),
                name="sales_line_earning_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} × {self.quantity}"

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.refunded_quantity


class Tender(models.Model):
    """One way the bill was paid. All CNY tenders of a bill share the bill's ``sales.bill`` journal."""

    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="tenders")
    kind = models.CharField(max_length=16, choices=TenderKind.choices)
    amount_fen = models.BigIntegerField(help_text="the part of the payable this tender covers")
    received_fen = models.BigIntegerField(null=True, blank=True, help_text="cash handed over")
    change_fen = models.BigIntegerField(default=0)
    external_ref = models.CharField(max_length=64, blank=True, help_text="card slip / WeChat / Alipay reference")
    principal_fen = models.BigIntegerField(default=0)
    bonus_fen = models.BigIntegerField(default=0)
    points_used = models.BigIntegerField(default=0)
    journal = models.ForeignKey("ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    points_journal = models.ForeignKey(
        "ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    package_item = models.ForeignKey(
        "packages.MemberPackageItem", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    sessions = models.PositiveIntegerField(default=0, help_text="count-card sessions this tender used")
    gift_card = models.ForeignKey(
        "giftcards.GiftCard", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount_fen__gt=0), name="sales_tender_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(change_fen__gte=0, principal_fen__gte=0, bonus_fen__gte=0, points_used__gte=0),
                name="sales_tender_parts_not_negative",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="stored_value")
                | models.Q(amount_fen=models.F("principal_fen") + models.F("bonus_fen")),
                name="sales_tender_stored_value_split",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="points") | models.Q(points_used__gt=0),
                name="sales_tender_points_used",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="package") | models.Q(package_item__isnull=False, sessions__gt=0),
                name="sales_tender_package_sessions",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="gift_card") | models.Q(gift_card__isnull=False),
                name="sales_tender_gift_card",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_fen}"


class Refund(models.Model):
    """A refund of all or part of a completed bill; reverses exactly what the bill did for that part."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, related_name="+")
    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="refunds")
    destination = models.CharField(max_length=16, choices=RefundDestination.choices)
    reason = models.CharField(max_length=200)
    is_full = models.BooleanField(default=False, help_text="the whole bill in one refund")
    amount_fen = models.BigIntegerField(default=0)
    earning_fen = models.BigIntegerField(default=0, help_text="growth taken back")
    points_restored = models.BigIntegerField(default=0)
    points_taken_back = models.BigIntegerField(default=0)
    idempotency_key = models.CharField(max_length=128)
    request_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    cny_journal = models.ForeignKey("ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    points_restore_journal = models.ForeignKey(
        "ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    points_take_back_journal = models.ForeignKey(
        "ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    points_reearn_journal = models.ForeignKey(
        "ledger.Journal",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="a partial refund's re-earning of the points the unrefunded lines keep",
    )
    growth_journal = models.ForeignKey(
        "ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "idempotency_key"], name="sales_refund_unique_org_idempotency_key"
            ),
            models.CheckConstraint(
                condition=models.Q(amount_fen__gte=0, earning_fen__gte=0, points_restored__gte=0),
                name="sales_refund_amounts_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["store", "created_at"], name="sales_refund_store_day_idx")]

    def __str__(self) -> str:
        return f"refund {self.pk} of {self.bill_id}"


class RefundLine(models.Model):
    refund = models.ForeignKey(Refund, on_delete=models.PROTECT, related_name="lines")
    line = models.ForeignKey(BillLine, on_delete=models.PROTECT, related_name="refund_lines")
    quantity = models.PositiveIntegerField()
    amount_fen = models.BigIntegerField()
    earning_fen = models.BigIntegerField(default=0)
    points_taken_back = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="sales_refundline_quantity_positive"),
            models.CheckConstraint(condition=models.Q(amount_fen__gte=0), name="sales_refundline_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"refund {self.refund_id}: line {self.line_id} × {self.quantity}"


class RefundTender(models.Model):
    """The part of one original tender that a refund gives back (and where it went)."""

    refund = models.ForeignKey(Refund, on_delete=models.PROTECT, related_name="tenders")
    tender = models.ForeignKey(Tender, on_delete=models.PROTECT, related_name="refund_parts")
    amount_fen = models.BigIntegerField()
    principal_fen = models.BigIntegerField(default=0)
    bonus_fen = models.BigIntegerField(default=0)
    points = models.BigIntegerField(default=0, help_text="offset points given back")
    destination = models.CharField(max_length=16, choices=RefundDestination.choices)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_fen__gt=0, principal_fen__gte=0, bonus_fen__gte=0, points__gte=0),
                name="sales_refundtender_amounts",
            ),
        ]

    def __str__(self) -> str:
        return f"refund {self.refund_id}: tender {self.tender_id} {self.amount_fen}"
