"""The points mall (积分商城): what members can get for their points, and each redemption.

Balances live in the ledger (ADR 0003), never in these rows:

- the member's points: loyalty's ``PTS`` accounts; a redemption spends them through loyalty's
  ``points_spend_prepare`` (lots expiring first) and a rejection gives the same lots back (``points_restore``);
- an item's stock, when limited: asset ``STK:mall:<item id>``. ("mall_item", id, "mall_stock") is what is on
  the shelf and may not go negative; the organisation's "mall_stock_source" (stock received, may go negative),
  "mall_stock_held" (reserved for redemptions awaiting approval, may not go negative) and "mall_stock_redeemed"
  (handed out) are its counter-accounts;
- the cash part of a points+cash item: the store's ``tender_<kind>`` and ``revenue`` CNY accounts.

This app keeps the items, the organisation's mall rules, and the business record of each redemption with
the journals it posted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from meiye.wallet.models import Tender

DEFAULT_MIN_REDEEM_POINTS = 500
DEFAULT_APPROVAL_THRESHOLD_POINTS = 20_000


class MallItemKind(models.TextChoices):
    GIFT = "gift", _("实物礼品 Gift")
    SERVICE = "service", _("服务 Service")
    UPGRADE = "upgrade", _("服务升级 Service upgrade")
    POINTS_CASH = "points_cash", _("积分+现金 Points + cash")


class RedemptionStatus(models.TextChoices):
    PENDING = "pending", _("待审批 Awaiting approval")
    COMPLETED = "completed", _("已完成 Completed")
    REJECTED = "rejected", _("已驳回 Rejected")


class MallSettings(models.Model):
    """The organisation's mall rules. Without a row the defaults of S-07 apply (500 and 20,000 points)."""

    organisation = models.OneToOneField("org.Organisation", on_delete=models.PROTECT, related_name="+")
    min_redeem_points = models.PositiveIntegerField(
        _("最低兑换积分 Minimum redemption (points)"), default=DEFAULT_MIN_REDEEM_POINTS
    )
    approval_threshold_points = models.PositiveIntegerField(
        _("审批门槛（积分） Approval threshold (points)"),
        null=True,
        blank=True,
        default=DEFAULT_APPROVAL_THRESHOLD_POINTS,
        help_text="a redemption of this many points or more waits for a store manager; empty: never",
    )

    class Meta:
        verbose_name_plural = "mall settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(approval_threshold_points__isnull=True) | models.Q(approval_threshold_points__gt=0),
                name="mall_settings_threshold_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id}: min {self.min_redeem_points}, approval {self.approval_threshold_points}"


class MallItem(models.Model):
    """Something a member can redeem: its price in points (and, for points+cash, in fen), where, how many.

    ``stock_limited=False`` means unlimited (a service); otherwise the stock is the ledger balance of the item's
    ``mall_stock`` account, changed only by journals. ``stores`` empty means every store of the organisation.
    """

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("类型 Kind"), max_length=16, choices=MallItemKind.choices)
    name = models.CharField(_("名称 Name"), max_length=80)
    points_price = models.PositiveIntegerField(_("所需积分 Points"))
    cash_fen = models.BigIntegerField(_("现金部分（分） Cash part (fen)"), default=0)
    catalog_item = models.ForeignKey(
        "catalog.Item",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("关联项目 Catalogue item"),
    )
    stock_limited = models.BooleanField(_("限量库存 Limited stock"), default=True)
    per_member_limit = models.PositiveIntegerField(_("每人限兑 Per-member limit"), null=True, blank=True)
    stores = models.ManyToManyField("org.Store", blank=True, related_name="+", verbose_name=_("可兑换门店 Stores"))
    is_active = models.BooleanField(_("上架 Active"), default=True)
    create_key = models.CharField(max_length=128, null=True, blank=True, help_text="idempotency key of the creation")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["points_price", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(points_price__gt=0), name="mall_item_points_positive"),
            models.CheckConstraint(
                condition=(models.Q(kind="points_cash") & models.Q(cash_fen__gt=0))
                | (~models.Q(kind="points_cash") & models.Q(cash_fen=0)),
                name="mall_item_cash_only_for_points_cash",
            ),
            models.CheckConstraint(
                condition=models.Q(per_member_limit__isnull=True) | models.Q(per_member_limit__gt=0),
                name="mall_item_limit_positive",
            ),
            models.UniqueConstraint(
                fields=["organisation", "create_key"],
                condition=models.Q(create_key__isnull=False),
                name="mall_item_unique_create_key",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def stock_asset(self) -> str:
        return stock_asset(self.pk)


def stock_asset(item_id: int) -> str:
    """The ledger asset of one mall item's stock."""
    return f"STK:mall:{item_id}"


class MallRedemption(models.Model):
    """One member's redemption of ``quantity`` of an item in a store: the points, cash and stock it moved.

    At or above the approval threshold it is ``pending``: the points are already spent (so they cannot be
    spent twice) and the stock is held; a store manager completes it or rejects it, and a rejection posts the
    reversals (same lots back, stock back to the shelf, cash back to the tender).
    """

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    store = models.ForeignKey("org.Store", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="mall_redemptions")
    item = models.ForeignKey(MallItem, on_delete=models.PROTECT, related_name="redemptions")
    item_name = models.CharField(max_length=80, help_text="the item's name at the time")
    quantity = models.PositiveIntegerField(default=1)
    points = models.BigIntegerField(_("积分 Points"), help_text="points price × quantity")
    cash_fen = models.BigIntegerField(_("现金（分） Cash (fen)"), default=0)
    tender = models.CharField(_("支付方式 Tender"), max_length=10, choices=Tender.choices, blank=True)
    status = models.CharField(_("状态 Status"), max_length=10, choices=RedemptionStatus.choices)
    points_journal = models.OneToOneField(
        "ledger.Journal",
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        help_text="the points spent; set in the transaction that creates the row (the journal references it)",
    )
    stock_journal = models.OneToOneField(
        "ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cash_journal = models.OneToOneField(
        "ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    idempotency_key = models.CharField(max_length=128)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "idempotency_key"], name="mall_redemption_unique_key"),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="mall_redemption_quantity_positive"),
            models.CheckConstraint(condition=models.Q(points__gt=0), name="mall_redemption_points_positive"),
            models.CheckConstraint(condition=models.Q(cash_fen__gte=0), name="mall_redemption_cash_not_negative"),
            models.CheckConstraint(
                condition=models.Q(status__in=RedemptionStatus.values), name="mall_redemption_valid_status"
            ),
            models.CheckConstraint(
                condition=(models.Q(cash_fen=0) & models.Q(tender=""))
                | (models.Q(cash_fen__gt=0) & ~models.Q(tender="")),
                name="mall_redemption_tender_with_cash",
            ),
        ]
        indexes = [
            models.Index(fields=["member", "-created_at"], name="mall_redemption_member_idx"),
            models.Index(fields=["store", "status", "-created_at"], name="mall_redemption_store_idx"),
        ]

    def __str__(self) -> str:
        return f"redemption #{self.pk}"
