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
    expiry_reminder_days = models.PositiveSmallIntegerField(
        _("到期提醒提前天数 Expiry reminder (days before)"), default=31, help_text="0: no reminder"
    )
    # An optional yearly clearing date (e.g. 31 December): every lot earned before that year's date expires
    # on it, whatever its own expiry. Both NULL: no clearing.
    clearing_month = models.PositiveSmallIntegerField(null=True, blank=True)
    clearing_day = models.PositiveSmallIntegerField(null=True, blank=True)
    # A random stamp every change to the tier ladder sets (``loyalty.tiers``); a checkout reads it with its store
    # row and prices from this process's copy of the ladder while the stamp is the one copied. NULL: no tier
    # was ever saved, so the organisation has none.
    tiers_version = models.PositiveBigIntegerField(null=True, blank=True, editable=False)

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


class PointsLotReturn(models.Model):
    """Points given back to a lot they were spent from (a partial refund of a points offset): the lot keeps
    its own expiry. Append-only; ``spend_journal`` is the spend whose ``PointsLotUse`` rows are returned."""

    lot = models.ForeignKey(PointsLot, on_delete=models.PROTECT, related_name="returns")
    journal = models.ForeignKey("ledger.Journal", on_delete=models.PROTECT, related_name="+")
    spend_journal = models.ForeignKey("ledger.Journal", on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="loyalty_pointslotreturn_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} back to lot {self.lot_id} by journal {self.journal_id}"


# --- Tiers (会员等级) ----------------------------------------------------------------------------------------


class Tier(models.Model):
    """One rung of the organisation's tier ladder (普通/银卡/金卡/钻石), reached by growth value.

    Tiers are ordered by ``threshold_fen``: the lowest starts at 0 and no two share a threshold (so they
    strictly increase). ``discounts_bp`` maps an item kind ("service", "product") or an earning category
    ("basic_care", "retail" …, which wins over the kind) to a discount in basis points: the reference
    Silver tier is ``{"service": 1000}`` (services 10% off, retail not discounted). ``points_multiplier_bp``
    is the earning multiplier in basis points (×1.2 = 12000). A NULL offset rate or lifetime means the
    store's / organisation's own setting applies.
    """

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    code = models.SlugField(_("编码 Code"), max_length=32)
    name_zh = models.CharField(_("名称 Name (zh)"), max_length=20)
    name_en = models.CharField(_("英文名称 Name (en)"), max_length=30, blank=True)
    threshold_fen = models.BigIntegerField(_("成长值门槛（分） Growth threshold (fen)"))
    discounts_bp = models.JSONField(_("折扣（基点） Discounts (bp)"), default=dict, blank=True)
    points_multiplier_bp = models.PositiveIntegerField(_("积分倍数（基点） Points multiplier (bp)"), default=10_000)
    points_per_yuan_offset = models.PositiveIntegerField(
        _("每 1 元抵扣所需积分 Points per 1 元 offset"), null=True, blank=True
    )
    points_lifetime_months = models.PositiveSmallIntegerField(
        _("积分有效期（月） Points lifetime (months)"), null=True, blank=True
    )
    perks_zh = models.TextField(_("权益 Perks (zh)"), blank=True)
    perks_en = models.TextField(_("权益（英文） Perks (en)"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organisation", "threshold_fen"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "code"], name="loyalty_tier_unique_code"),
            models.UniqueConstraint(fields=["organisation", "threshold_fen"], name="loyalty_tier_unique_threshold"),
            models.CheckConstraint(
                condition=models.Q(threshold_fen__gte=0), name="loyalty_tier_threshold_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(points_multiplier_bp__gt=0), name="loyalty_tier_multiplier_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(points_per_yuan_offset__isnull=True) | models.Q(points_per_yuan_offset__gt=0),
                name="loyalty_tier_offset_rate_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(points_lifetime_months__isnull=True) | models.Q(points_lifetime_months__gt=0),
                name="loyalty_tier_lifetime_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name_zh} {self.name_en}".strip()


class MemberTier(models.Model):
    """A member's tier state. No row: she is on the organisation's lowest tier.

    - ``earned_tier`` / ``earned_since``: what growth value gave her. It rises at once when a bill crosses a
      threshold and is reviewed (may fall) only on the anniversaries of ``earned_since``.
    - ``floor_tier`` / ``floor_until``: a tier granted by hand, a floor up to and including that date.
    - ``tier`` / ``since``: the tier she has, max(earned, floor while it lasts): what pricing and earning
      use; ``since`` is the day she got it.
    - ``review_on``: the next day the review job must look at her (the earned tier's anniversary, or the
      day after the floor ends, whichever comes first); NULL when nothing can fall.
    """

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    member = models.OneToOneField("members.Member", on_delete=models.PROTECT, related_name="tier_state")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    since = models.DateField()
    earned_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    earned_since = models.DateField()
    floor_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    floor_until = models.DateField(null=True, blank=True)
    review_on = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(floor_tier__isnull=True, floor_until__isnull=True)
                | models.Q(floor_tier__isnull=False, floor_until__isnull=False),
                name="loyalty_membertier_floor_complete",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organisation", "review_on"],
                condition=models.Q(review_on__isnull=False),
                name="loyalty_membertier_review_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"member {self.member_id}: tier {self.tier_id} since {self.since}"


class TierChangeCause(models.TextChoices):
    BILL = "bill", _("消费升级 Upgrade on a bill")
    REVIEW = "review", _("年度复核 Yearly review")
    GRANT = "grant", _("手工授予 Granted by hand")
    FLOOR_END = "floor_end", _("授予到期 Grant ended")
    MERGE = "merge", _("会员合并 Member merge")


class TierChange(models.Model):
    """One change of a member's tier: from, to, why, when, who. Append-only (database triggers)."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="tier_changes")
    from_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    to_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    cause = models.CharField(max_length=12, choices=TierChangeCause.choices)
    note = models.CharField(max_length=200, blank=True, help_text="the reason given for a grant by hand")
    growth_fen = models.BigIntegerField(null=True, blank=True, help_text="12-month growth value at the time")
    on = models.DateField(help_text="the store-local business day of the change")
    staff = models.ForeignKey(
        "org.Staff", on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="who (NULL: a job)"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["member", "created_at"], name="loyalty_tierchange_member_idx")]

    def __str__(self) -> str:
        return f"member {self.member_id}: {self.from_tier_id} -> {self.to_tier_id} ({self.cause})"


class GrowthSource(models.Model):
    """A member merged into ``member``: her growth-account entries count in ``member``'s 12-month growth at
    their own dates (the ``growth.merge`` journal that moved the balance is dated the day of the merge, so
    the window ignores it). Transitive: merging B (who absorbed A) into C gives C rows for B and A."""

    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    source = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "source"], name="loyalty_growthsource_unique")]

    def __str__(self) -> str:
        return f"{self.source_id} counts for {self.member_id}"


# --- Earning rules and event rewards (issue 4 section 2, ``meiye.loyalty.rules``) ----------------------------


class RulesSettings(models.Model):
    """The organisation's earning rules beyond the base rate and the tier. Without a row no rule applies.

    A multiplier of 10,000 basis points (×1) or a points amount of 0 switches its rule off; ``member_day``
    NULL means no member day, ``dormant_days`` NULL no wake-up, ``daily_earning_limit`` NULL no review flag.
    """

    organisation = models.OneToOneField("org.Organisation", on_delete=models.PROTECT, related_name="+")
    birthday_multiplier_bp = models.PositiveIntegerField(
        _("生日月积分倍数（基点） Birthday month (bp)"), default=10_000
    )
    birthday_gift_points = models.PositiveIntegerField(_("生日礼积分 Birthday gift points"), default=0)
    member_day = models.PositiveSmallIntegerField(_("会员日（每月几号） Member day"), null=True, blank=True)
    member_day_multiplier_bp = models.PositiveIntegerField(_("会员日积分倍数（基点） Member day (bp)"), default=10_000)
    checkin_points = models.PositiveIntegerField(_("签到积分 Check-in points"), default=0)
    checkin_streak_days = models.PositiveSmallIntegerField(_("连续签到天数 Streak length"), default=7)
    checkin_streak_bonus = models.PositiveIntegerField(_("连续签到奖励 Streak bonus"), default=0)
    dormant_days = models.PositiveSmallIntegerField(_("沉睡天数 Dormant after (days)"), null=True, blank=True)
    dormant_points = models.PositiveIntegerField(_("唤醒积分 Wake-up points"), default=0)
    dormant_coupon_template = models.ForeignKey(
        "promotions.CouponTemplate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("唤醒优惠券 Wake-up coupon"),
    )
    referral_referrer_points = models.PositiveIntegerField(_("推荐人积分 Referrer points"), default=0)
    referral_referee_points = models.PositiveIntegerField(_("被推荐人积分 Referee points"), default=0)
    referral_refund_window_days = models.PositiveSmallIntegerField(_("推荐退款期（天） Refund window"), default=7)
    referral_spend_threshold_fen = models.BigIntegerField(
        _("被推荐人累计消费门槛（分） Referee spend threshold (fen)"), null=True, blank=True
    )
    referral_coupon_template = models.ForeignKey(
        "promotions.CouponTemplate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("推荐奖励优惠券 Referral coupon"),
    )
    daily_earning_limit = models.PositiveIntegerField(_("每日积分复核上限 Daily earning limit"), null=True, blank=True)
    # A random stamp every save sets (``rules_settings_save``): a checkout reads it with its store row and takes the
    # rules from this process's copy while the stamp is the one copied. NULL only on a row from before stamps.
    version = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "rules settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(member_day__isnull=True) | models.Q(member_day__gte=1, member_day__lte=31),
                name="loyalty_rules_member_day_in_month",
            ),
            models.CheckConstraint(
                condition=models.Q(birthday_multiplier_bp__gt=0, member_day_multiplier_bp__gt=0),
                name="loyalty_rules_multipliers_positive",
            ),
            models.CheckConstraint(condition=models.Q(checkin_streak_days__gt=0), name="loyalty_rules_streak_positive"),
            models.CheckConstraint(
                condition=models.Q(dormant_days__isnull=True) | models.Q(dormant_days__gt=0),
                name="loyalty_rules_dormant_days_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(referral_spend_threshold_fen__isnull=True)
                | models.Q(referral_spend_threshold_fen__gt=0),
                name="loyalty_rules_referral_threshold_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"rules of {self.organisation_id}"


class BirthdayGift(models.Model):
    """The birthday gift of one member in one year (S-04): at most one (unique), given by the daily job."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    year = models.PositiveSmallIntegerField()
    on = models.DateField()
    points = models.PositiveIntegerField()
    journal = models.ForeignKey("ledger.Journal", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "year"], name="loyalty_birthdaygift_once_a_year")]

    def __str__(self) -> str:
        return f"birthday gift {self.year} of {self.member_id}"


class CheckIn(models.Model):
    """One day's check-in of a member (S-11). Append-only; one a day. ``streak_day`` counts consecutive days."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    on = models.DateField()
    streak_day = models.PositiveIntegerField()
    points = models.PositiveIntegerField()
    bonus = models.PositiveIntegerField(default=0)
    journal = models.ForeignKey("ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    staff = models.ForeignKey("org.Staff", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "on"], name="loyalty_checkin_once_a_day"),
            models.CheckConstraint(condition=models.Q(streak_day__gt=0), name="loyalty_checkin_streak_positive"),
        ]

    def __str__(self) -> str:
        return f"check-in {self.on} of {self.member_id} (day {self.streak_day})"


class DormantReward(models.Model):
    """The wake-up reward of one dormant spell (S-12). ``since`` is the spell's start: the day of her last
    visit (or the day she joined, never having visited); unique, so one reward per spell."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    since = models.DateField()
    on = models.DateField()
    points = models.PositiveIntegerField()
    journal = models.ForeignKey("ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    coupon = models.ForeignKey("promotions.Coupon", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "since"], name="loyalty_dormantreward_once_a_spell")]

    def __str__(self) -> str:
        return f"wake-up of {self.member_id} dormant since {self.since}"


class MemberVisit(models.Model):
    """A member's last visit, for the dormant scan (S-12): the latest bill journal (reference type
    ``sales.Bill``, not a reversal or a refund) that moved one of her own accounts. Kept by
    ``rules.member_visits_refresh`` from the ledger, set-based, and backfilled by migration 0007; a member who
    never visited has no row (she is dormant from the day she joined)."""

    member = models.OneToOneField("members.Member", on_delete=models.PROTECT, primary_key=True, related_name="+")
    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    last_visit_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["organisation", "last_visit_at"], name="loyalty_visit_org_last_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} last visited {self.last_visit_at:%Y-%m-%d}"


class VisitScan(models.Model):
    """How far ``member_visits_refresh`` has read the organisation's journals: every journal with an id up to
    ``journal_id`` is in ``MemberVisit``. Newer ones, and those of the last hour (a transaction may commit a
    lower id after a higher one), are read again on the next refresh."""

    organisation = models.OneToOneField(
        "org.Organisation", on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    journal_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"visits of {self.organisation_id} read up to journal {self.journal_id}"


class ReferralReward(models.Model):
    """The referral reward of one referred member (S-10): once (unique ``referee``), on her first paid bill
    with a service; reversed (``reversed_on``) by a full refund of that bill within the window. The
    referrer's coupon for the referee's total spend is recorded here too."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    referee = models.OneToOneField("members.Member", on_delete=models.PROTECT, related_name="+")
    referrer = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    bill_id = models.BigIntegerField(null=True, blank=True, help_text="the bill that earned the points")
    completed_on = models.DateField(null=True, blank=True)
    referrer_journal = models.ForeignKey(
        "ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    referee_journal = models.ForeignKey(
        "ledger.Journal", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reversed_on = models.DateField(null=True, blank=True)
    coupon = models.ForeignKey("promotions.Coupon", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"referral {self.referrer_id} -> {self.referee_id}"


class EarningFlag(models.Model):
    """A member who earned more points in one day than the organisation's review limit: a flag for a manager
    to look at, never a refusal. One per member and day; open until reviewed (who, when, a note)."""

    organisation = models.ForeignKey("org.Organisation", on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    on = models.DateField()
    points = models.BigIntegerField()
    limit = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Reviewed (``rules.earning_flag_review``): who looked at it, when, and what she found. All or none.
    reviewed_by = models.ForeignKey("org.Staff", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "on"], name="loyalty_earningflag_once_a_day"),
            models.CheckConstraint(
                condition=models.Q(reviewed_at__isnull=True, reviewed_by__isnull=True, review_note="")
                | (models.Q(reviewed_at__isnull=False, reviewed_by__isnull=False) & ~models.Q(review_note="")),
                name="loyalty_earningflag_review_complete",
            ),
        ]
        indexes = [models.Index(fields=["organisation", "on"], name="loyalty_earningflag_day_idx")]

    def __str__(self) -> str:
        return f"flag {self.on} of {self.member_id}: {self.points} > {self.limit}"

    @property
    def is_reviewed(self) -> bool:
        return self.reviewed_at is not None
