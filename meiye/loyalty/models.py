"""Points (积分) and growth value (成长值).

Balances live in the ledger (ADR 0003): a member's points are the ``PTS`` account ("member", pk, "points"),
growth value the ``GRW`` account ("member", pk, "growth"). This app adds what the ledger cannot know:
the earning rates, how long points last, and the lots that say which points expire when.

Lots (``PointsLot``) keep one invariant, maintained by ``meiye.loyalty.services`` in the same
transaction as every points journal: the ``remaining`` of a member's lots adds up to her points
balance when it is positive, and to 0 when she owes points (a negative balance after a refund).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from meiye.catalog.models import EarningCategory

DEFAULT_POINTS_LIFETIME_MONTHS = 12


class EarningRate(models.Model):
    """Points per 元 actually paid in one earning category. A category without a row earns nothing."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    earning_category = models.CharField(max_length=20, choices=EarningCategory.choices)
    points_per_yuan = models.PositiveIntegerField(_("每元积分 Points per 元"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "earning_category"], name="loyalty_earningrate_unique_category"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.earning_category}: {self.points_per_yuan}/元"


class LoyaltySettings(models.Model):
    """The organisation's points rules. Without a row the defaults apply."""

    organisation = models.OneToOneField("org.Organisation", on_delete=models.PROTECT, related_name="+")
    points_lifetime_months = models.PositiveSmallIntegerField(
        _("积分有效期（月） Points lifetime (months)"), default=DEFAULT_POINTS_LIFETIME_MONTHS
    )

    class Meta:
        verbose_name_plural = "loyalty settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(points_lifetime_months__gt=0), name="loyalty_settings_lifetime_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id}: {self.points_lifetime_months} months"


class PointsLot(models.Model):
    """The points of one earning, with the date they expire. Spending takes from the lots expiring first.

    ``amount`` is what was earned (the earning journal's amount); ``remaining`` what is still spendable.
    A lot may be created with ``remaining`` below ``amount`` (even 0) when the earning repaid a debt.
    Points are usable up to and including ``expires_on``; the expiry job of the next day expires them.
    """

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="points_lots")
    journal = models.OneToOneField(
        "ledger.Journal", on_delete=models.PROTECT, related_name="+", help_text="the earning journal"
    )
    source_code = models.CharField(max_length=64, help_text="why, e.g. 'earn.bill', 'earn.birthday'")
    earned_on = models.DateField()
    expires_on = models.DateField()
    amount = models.BigIntegerField()
    remaining = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="loyalty_pointslot_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(remaining__gte=0) & models.Q(remaining__lte=models.F("amount")),
                name="loyalty_pointslot_remaining_within_amount",
            ),
        ]
        indexes = [
            models.Index(
                fields=["member", "expires_on"],
                condition=models.Q(remaining__gt=0),
                name="loyalty_lot_open_by_expiry_idx",
            ),
            models.Index(
                fields=["organisation", "expires_on"],
                condition=models.Q(remaining__gt=0),
                name="loyalty_lot_org_expiry_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"lot #{self.pk}: {self.remaining}/{self.amount} until {self.expires_on}"


class PointsLotUse(models.Model):
    """Points taken from a lot by one journal: a spend, a take-back, an expiry or a debt settlement.

    A refund of a spend puts exactly these amounts back on the same lots.
    """

    lot = models.ForeignKey(PointsLot, on_delete=models.PROTECT, related_name="uses")
    journal = models.ForeignKey("ledger.Journal", on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="loyalty_pointslotuse_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} from lot {self.lot_id} by journal {self.journal_id}"
