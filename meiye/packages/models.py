"""Count cards, combo packages and time cards (计次卡 / 套餐 / 时间卡).

A ``PackageProduct`` is sold through a catalogue item of kind ``package`` (so a bill line prices it and it
earns points and growth like anything else). Selling one issues a ``MemberPackage`` per unit with one
``MemberPackageItem`` per service it contains. The sessions a member holds on an item live in the ledger,
asset ``SES:<member package item id>`` (ADR 0006): member ``package_sessions`` (may not go negative) against
store ``package_sessions_source`` (may). ``used`` and ``remaining`` on the item follow the ledger in the same
transaction (``remaining`` equals the member account's balance), so screens and the expiry job can select
without reading balances. A time card item (``count`` NULL) is unlimited within its validity: it has no
ledger sessions, only ``SessionUse`` rows.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class PackageKind(models.TextChoices):
    COUNT = "count", _("计次卡 Count card")
    COMBO = "combo", _("套餐 Combo package")
    TIME = "time", _("时间卡 Time card")


class RefundFormula(models.TextChoices):
    UNIT_PRICE = "unit_price", _("按折后单价 By unit price paid")
    LIST_PRICE = "list_price", _("按原价扣除 By list price")


class ValidityUnit(models.TextChoices):
    DAYS = "days", _("天 Days")
    MONTHS = "months", _("月 Months")


class ValidFrom(models.TextChoices):
    PURCHASE = "purchase", _("购买之日起 From purchase")
    FIRST_USE = "first_use", _("首次使用起 From first use")


class PackageStatus(models.TextChoices):
    ACTIVE = "active", _("有效 Active")
    FROZEN = "frozen", _("冻结 Frozen")
    REFUNDED = "refunded", _("已退款 Refunded")
    EXPIRED = "expired", _("已过期 Expired")
    TRANSFERRED = "transferred", _("已转让 Transferred")


class PackageProduct(models.Model):
    """What is for sale: name, price and category come from ``item``; the services from ``items``."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    item = models.OneToOneField("catalog.Item", on_delete=models.PROTECT, related_name="package_product")
    kind = models.CharField(max_length=10, choices=PackageKind.choices, default=PackageKind.COUNT)
    refund_formula = models.CharField(max_length=12, choices=RefundFormula.choices, default=RefundFormula.UNIT_PRICE)
    cooling_off_days = models.PositiveSmallIntegerField(default=7)
    transferable = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.item.name


class PackageProductItem(models.Model):
    """One service in a package product: how many sessions (NULL: unlimited, a time card) and how long."""

    product = models.ForeignKey(PackageProduct, on_delete=models.CASCADE, related_name="items")
    service = models.ForeignKey("catalog.Item", on_delete=models.PROTECT, related_name="+")
    count = models.PositiveIntegerField(null=True, blank=True)
    validity_value = models.PositiveSmallIntegerField()
    validity_unit = models.CharField(max_length=8, choices=ValidityUnit.choices, default=ValidityUnit.MONTHS)
    valid_from = models.CharField(max_length=10, choices=ValidFrom.choices, default=ValidFrom.PURCHASE)
    daily_limit = models.PositiveSmallIntegerField(null=True, blank=True)
    min_days_between = models.PositiveSmallIntegerField(default=0)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(count__isnull=True) | models.Q(count__gt=0), name="packages_product_item_count_pos"
            ),
            models.CheckConstraint(condition=models.Q(validity_value__gt=0), name="packages_product_item_validity"),
        ]

    def __str__(self) -> str:
        return f"{self.service_id} × {self.count if self.count is not None else '∞'}"


class MemberPackage(models.Model):
    """One unit of a package a member bought (a bill line of quantity 2 issues two)."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="packages")
    product = models.ForeignKey(PackageProduct, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=80)
    bill_id = models.BigIntegerField(null=True, blank=True)
    bill_line_id = models.BigIntegerField(null=True, blank=True)
    unit_no = models.PositiveSmallIntegerField(default=1)
    price_paid_fen = models.BigIntegerField()
    # What this package's sale earned the member (its share of the bill line's): a package refund takes back
    # the refunded part of it, as a bill refund would.
    earning_fen = models.BigIntegerField(default=0, help_text="growth value the sale earned")
    points_earned = models.BigIntegerField(default=0, help_text="points the sale earned")
    purchased_on = models.DateField()
    status = models.CharField(max_length=12, choices=PackageStatus.choices, default=PackageStatus.ACTIVE)
    refund_formula = models.CharField(max_length=12, choices=RefundFormula.choices)
    cooling_off_days = models.PositiveSmallIntegerField(default=7)
    transferable = models.BooleanField(default=False)
    frozen_on = models.DateField(null=True, blank=True)
    contract = models.ForeignKey(
        "contracts.Contract", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    transferred_from = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="transferred_to"
    )
    refunded_fen = models.BigIntegerField(null=True, blank=True)
    refund_journal_id = models.BigIntegerField(null=True, blank=True)
    sold_by = models.ForeignKey("org.Staff", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-purchased_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "bill_line_id", "unit_no"],
                condition=models.Q(bill_line_id__isnull=False),
                name="packages_member_package_unique_unit",
            ),
            models.CheckConstraint(condition=models.Q(price_paid_fen__gte=0), name="packages_price_paid_not_negative"),
        ]
        indexes = [models.Index(fields=["organisation", "bill_id"], name="packages_mp_bill_idx")]

    def __str__(self) -> str:
        return f"{self.name} #{self.pk}"


class MemberPackageItem(models.Model):
    """One service of a member's package: sessions bought, used and left, its share of the price, its dates.

    ``value after used = share_fen − floor(share_fen × used / count)`` (ADR 0006)."""

    member_package = models.ForeignKey(MemberPackage, on_delete=models.PROTECT, related_name="items")
    service = models.ForeignKey("catalog.Item", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=80)
    count = models.PositiveIntegerField(null=True, blank=True, help_text="sessions bought; NULL: time card")
    used = models.PositiveIntegerField(default=0, help_text="sessions used, net of returns")
    remaining = models.PositiveIntegerField(default=0, help_text="= the member's SES balance on this item")
    expired_sessions = models.PositiveIntegerField(default=0)
    share_fen = models.BigIntegerField()
    unit_price_fen = models.BigIntegerField()
    list_price_fen = models.BigIntegerField()
    validity_value = models.PositiveSmallIntegerField()
    validity_unit = models.CharField(max_length=8, choices=ValidityUnit.choices)
    from_first_use = models.BooleanField(default=False)
    daily_limit = models.PositiveSmallIntegerField(null=True, blank=True)
    min_days_between = models.PositiveSmallIntegerField(default=0)
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True, help_text="last valid day; NULL until first use")
    first_used_on = models.DateField(null=True, blank=True)
    last_used_on = models.DateField(null=True, blank=True)
    expired_on = models.DateField(null=True, blank=True)
    account_id = models.BigIntegerField(null=True, blank=True, help_text="ledger: member package_sessions")
    source_account_id = models.BigIntegerField(null=True, blank=True, help_text="ledger: package_sessions_source")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(share_fen__gte=0), name="packages_item_share_not_negative"),
        ]
        indexes = [models.Index(fields=["valid_until", "remaining"], name="packages_item_due_idx")]

    def __str__(self) -> str:
        return f"{self.name} {self.remaining}/{self.count}"

    @property
    def asset(self) -> str:
        return f"SES:{self.pk}"

    @property
    def is_time_card(self) -> bool:
        return self.count is None


class SessionUse(models.Model):
    """Sessions used on one item: at checkout (``bill_id``) or a quick 划卡 at the desk."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    member_item = models.ForeignKey(MemberPackageItem, on_delete=models.PROTECT, related_name="uses")
    quantity = models.PositiveIntegerField()
    returned = models.PositiveIntegerField(default=0)
    on = models.DateField()
    value_fen = models.BigIntegerField(default=0, help_text="the part of the item's share these sessions used")
    performed_by = models.ForeignKey("org.Staff", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    recorded_by = models.ForeignKey("org.Staff", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    bill_id = models.BigIntegerField(null=True, blank=True)
    journal_id = models.BigIntegerField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-on", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "idempotency_key"], name="packages_use_unique_key"),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="packages_use_quantity_pos"),
            models.CheckConstraint(
                condition=models.Q(returned__lte=models.F("quantity")), name="packages_use_returned"
            ),
        ]
        indexes = [models.Index(fields=["organisation", "bill_id"], name="packages_use_bill_idx")]

    def __str__(self) -> str:
        return f"{self.member_item_id} −{self.quantity} on {self.on}"


class AdjustmentKind(models.TextChoices):
    FREEZE = "freeze", _("冻结 Freeze")
    UNFREEZE = "unfreeze", _("解冻 Unfreeze")
    EXTEND = "extend", _("延期 Extend")
    TRANSFER = "transfer", _("转让 Transfer")
    REFUND = "refund", _("退款 Refund")


class PackageAdjustment(models.Model):
    """The history of a member's package: freezes, extensions, transfer, refund (with who and why)."""

    member_package = models.ForeignKey(MemberPackage, on_delete=models.PROTECT, related_name="adjustments")
    kind = models.CharField(max_length=10, choices=AdjustmentKind.choices)
    days = models.IntegerField(default=0)
    amount_fen = models.BigIntegerField(default=0)
    reason = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    staff = models.ForeignKey("org.Staff", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    idempotency_key = models.CharField(max_length=128, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member_package", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="packages_adjustment_unique_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.member_package_id}"
