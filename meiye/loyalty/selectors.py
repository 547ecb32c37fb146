"""Reads of points and growth value. Balances come from the ledger; lots from ``PointsLot``.

These take a member the caller already obtained through ``meiye.members.selectors.member_get`` (which
checks the actor may see her); they never write, not even an empty account.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    BigIntegerField,
    Case,
    DateField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import Combinable
from django.db.models.functions import Coalesce
from django.utils import timezone

from meiye.core.money import Money
from meiye.ledger.models import Account, Balance, Entry
from meiye.ledger.selectors import HistoryLine, account_find, account_history, balance_of
from meiye.loyalty.models import (
    DEFAULT_POINTS_LIFETIME_MONTHS,
    EarningRate,
    GrowthSource,
    LoyaltySettings,
    MemberTier,
    PointsLot,
    RulesSettings,
    Tier,
    TierChange,
)
from meiye.members.models import Member
from meiye.org.models import Organisation, Store

# Ledger assets and account kinds (ADR 0003).
POINTS_ASSET = "PTS"
GROWTH_ASSET = "GRW"
MEMBER_POINTS = "points"
POINTS_ISSUED = "points_issued"
POINTS_REDEEMED = "points_redeemed"
POINTS_EXPIRED = "points_expired"
MEMBER_GROWTH = "growth"
GROWTH_SOURCE = "growth_source"


def earning_rates(organisation: Organisation) -> dict[str, int]:
    """Points per 元 by earning category, as configured; a category missing here earns 0."""
    return dict(
        EarningRate.objects.filter(organisation=organisation)
        .order_by("earning_category")
        .values_list("earning_category", "points_per_yuan")
    )


def points_lifetime_months(organisation_id: int) -> int:
    lifetime = (
        LoyaltySettings.objects.filter(organisation_id=organisation_id)
        .values_list("points_lifetime_months", flat=True)
        .first()
    )
    return points_lifetime_or_default(lifetime)


def earning_rate_subquery(organisation_id: int, category_ref: str) -> Subquery:
    """The points per 元 of the earning category at ``category_ref`` of the outer queryset (NULL: none set,
    which earns 0), so a checkout reads the rates of its items with the items."""
    return Subquery(
        EarningRate.objects.filter(organisation_id=organisation_id, earning_category=OuterRef(category_ref)).values(
            "points_per_yuan"
        )[:1]
    )


def points_lifetime_subquery(organisation_ref: str = "organisation_id") -> Subquery:
    """``points_lifetime_months`` as an expression (NULL: the default; see ``points_lifetime_or_default``)."""
    return Subquery(
        LoyaltySettings.objects.filter(organisation_id=OuterRef(organisation_ref)).values("points_lifetime_months")[:1]
    )


def tiers_version_subquery(organisation_ref: str = "organisation_id") -> Subquery:
    """The organisation's tiers version (``LoyaltySettings.tiers_version``; NULL: it has no tiers) as an
    expression, read with a checkout's store row to find the ladder in this process's copy."""
    return Subquery(
        LoyaltySettings.objects.filter(organisation_id=OuterRef(organisation_ref)).values("tiers_version")[:1]
    )


def rules_version_subquery(organisation_ref: str = "organisation_id") -> Subquery:
    """The organisation's earning rules version as an expression, read with a checkout's store row
    (``rules.rules_view_known``): NULL, no rules row (no rule applies); 0, a row without a version."""
    return Subquery(
        RulesSettings.objects.filter(organisation_id=OuterRef(organisation_ref)).values(
            stamp=Coalesce("version", Value(0), output_field=BigIntegerField())
        )[:1]
    )


def held_tier_subquery(member_id: int) -> Subquery:
    """The tier the member ``member_id`` holds (NULL: none yet, so the lowest), as an expression."""
    return Subquery(MemberTier.objects.filter(member_id=member_id).values("tier_id")[:1])


def points_lifetime_or_default(value: int | None) -> int:
    return value if value is not None else DEFAULT_POINTS_LIFETIME_MONTHS


def member_points_account(member: Member) -> Account | None:
    return account_find(
        organisation_id=member.organisation_id,
        owner_type="member",
        owner_id=member.pk,
        asset=POINTS_ASSET,
        kind=MEMBER_POINTS,
    )


def member_growth_account(member: Member) -> Account | None:
    return account_find(
        organisation_id=member.organisation_id,
        owner_type="member",
        owner_id=member.pk,
        asset=GROWTH_ASSET,
        kind=MEMBER_GROWTH,
    )


def points_balance(member: Member) -> int:
    """The member's points; negative when she owes points taken back after she spent them (S-22)."""
    account = member_points_account(member)
    return balance_of(account) if account is not None else 0


def points_lots(member: Member) -> QuerySet[PointsLot]:
    """The member's lots that still hold points, the first to expire first."""
    return PointsLot.objects.filter(member=member, remaining__gt=0).order_by("expires_on", "pk")


def points_expiring(member: Member, *, until: date) -> list[tuple[date, int]]:
    """(expiry date, points) of the member's open lots expiring on or before ``until``, soonest first.

    For the reminder of S-08: on 2026-08-01, ``until=2026-09-01`` gives ``[(2026-09-01, 300)]``.
    """
    rows = (
        points_lots(member)
        .filter(expires_on__lte=until)
        .values("expires_on")
        .annotate(points=Sum("remaining"))
        .order_by("expires_on")
    )
    return [(row["expires_on"], int(row["points"])) for row in rows]


# --- Expiry and its reminder (S-08): set-based selections for the daily jobs ----------------------------------


@dataclass(frozen=True)
class ExpirySettings:
    """The organisation's expiry reminder lead (days; 0: no reminder) and yearly clearing date (or None)."""

    reminder_days: int
    clearing_month: int | None
    clearing_day: int | None

    @property
    def clearing(self) -> bool:
        return self.clearing_month is not None and self.clearing_day is not None


def expiry_settings(organisation_id: int) -> ExpirySettings:
    row = (
        LoyaltySettings.objects.filter(organisation_id=organisation_id)
        .values_list("expiry_reminder_days", "clearing_month", "clearing_day")
        .first()
    )
    if row is None:
        return ExpirySettings(reminder_days=31, clearing_month=None, clearing_day=None)
    return ExpirySettings(reminder_days=row[0], clearing_month=row[1], clearing_day=row[2])


def clearing_date_in(year: int, month: int, day: int) -> date:
    """The clearing date of ``year``; 29 February is the 28th in other years (clamped to the month's end)."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def clearing_date_before(conf: ExpirySettings, today: date) -> date | None:
    """The last yearly clearing date strictly before ``today`` (None: no clearing). Every lot earned before it
    expired on it, so the job of ``today`` expires the lots earned before it."""
    if conf.clearing_month is None or conf.clearing_day is None:
        return None
    this_year = clearing_date_in(today.year, conf.clearing_month, conf.clearing_day)
    return this_year if this_year < today else clearing_date_in(today.year - 1, conf.clearing_month, conf.clearing_day)


def clearing_date_next(conf: ExpirySettings, today: date) -> date | None:
    """The next yearly clearing date on or after ``today`` (None: no clearing)."""
    if conf.clearing_month is None or conf.clearing_day is None:
        return None
    this_year = clearing_date_in(today.year, conf.clearing_month, conf.clearing_day)
    return this_year if this_year >= today else clearing_date_in(today.year + 1, conf.clearing_month, conf.clearing_day)


def points_lots_due_q(*, today: date, cleared_before: date | None) -> Q:
    """The open lots the expiry job of ``today`` expires: past their own expiry (valid up to and including
    ``expires_on``), or earned before the last clearing date."""
    due = Q(expires_on__lt=today)
    if cleared_before is not None:
        due |= Q(earned_on__lt=cleared_before)
    return Q(remaining__gt=0) & due


def points_expiry_members(*, organisation_id: int, today: date) -> list[int]:
    """Ids of the members with lots the expiry job of ``today`` expires, ascending: one query."""
    cleared_before = clearing_date_before(expiry_settings(organisation_id), today)
    return list(
        PointsLot.objects.filter(
            points_lots_due_q(today=today, cleared_before=cleared_before), organisation_id=organisation_id
        )
        .order_by("member_id")
        .values_list("member_id", flat=True)
        .distinct()
    )


def points_expiry_reminders_due(*, organisation_id: int, today: date) -> list[tuple[int, date, int]]:
    """(member id, expiry date, points) for every member with open lots expiring from ``today`` up to
    ``expiry_reminder_days`` later, by the lot's own expiry or by the next clearing date when that comes first
    — one grouped query, by member and date. Empty when the reminder is off (0 days).

    S-08: on 2026-08-01 (31 days) it gives the member's ``(2026-09-01, 300)``."""
    conf = expiry_settings(organisation_id)
    if conf.reminder_days <= 0:
        return []
    until = today + timedelta(days=conf.reminder_days)
    lots = PointsLot.objects.filter(organisation_id=organisation_id, remaining__gt=0, expires_on__gte=today)
    cleared_before = clearing_date_before(conf, today)
    if cleared_before is not None:
        lots = lots.exclude(earned_on__lt=cleared_before)  # already due: the job of today expires them
    clearing = clearing_date_next(conf, today)
    if clearing is None:
        lots = lots.filter(expires_on__lte=until).annotate(on=F("expires_on"))
    else:
        lots = lots.annotate(
            on=Case(
                When(Q(earned_on__lt=clearing, expires_on__gt=clearing), then=Value(clearing)),
                default=F("expires_on"),
                output_field=DateField(),
            )
        ).filter(on__lte=until)
    rows = lots.values("member_id", "on").annotate(points=Sum("remaining")).order_by("member_id", "on")
    return [(row["member_id"], row["on"], int(row["points"])) for row in rows]


def points_history(member: Member, *, limit: int | None = 50) -> list[HistoryLine]:
    """The member's points movements, newest first, each with the balance after it."""
    account = member_points_account(member)
    return account_history(account, limit=limit) if account is not None else []


def growth_balance(member: Member) -> int:
    """The member's growth value in fen (all time, net of refunds)."""
    account = member_growth_account(member)
    return balance_of(account) if account is not None else 0


# --- Tiers and the 12-month growth value ---------------------------------------------------------------------
#
# Growth value (成长值) is ledger-backed: the member's GRW account holds it all time, net of refunds. The tier
# rules read "the last 12 months": the sum of the entries of her growth account (and of the members merged
# into her, ``GrowthSource``) whose journal was posted from the same day 12 months earlier up to and
# including the day in question, in the store's time zone. The ``growth.merge`` journals are left out:
# they move a merged member's whole balance on the day of the merge, and her own entries, at their own
# dates, are counted instead. One indexed query (the account by its unique owner key, its entries, their
# journals), never the points balance, never a recharge (recharges post no growth).

GROWTH_WINDOW_MONTHS = 12
GROWTH_MERGE_CODE = "growth.merge"


def shift_months(day: date, months: int) -> date:
    """The same day ``months`` later (or earlier, if negative), clamped to the end of a shorter month."""
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def growth_window_start(on: date) -> date:
    """The first day whose payments still count on ``on``: the same day 12 months earlier.

    Like a points lot (valid up to and including its expiry day), growth paid on 2025-11-24 counts up to and
    including 2026-11-24 — the tier anniversary of a member upgraded that day.
    """
    return shift_months(on, -GROWTH_WINDOW_MONTHS)


def store_zone(store: Store | None) -> ZoneInfo:
    return ZoneInfo(store.time_zone if store is not None else settings.TIME_ZONE)


def local_today(store: Store | None) -> date:
    return timezone.localdate(timezone=store_zone(store))


def growth_window_bounds(on: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The instants the growth that counts on ``on`` was paid between: from the start of the window's first day
    (included) to the start of the day after ``on`` (excluded), in ``zone``."""
    start = datetime.combine(growth_window_start(on), time.min, tzinfo=zone)
    return start, datetime.combine(on + timedelta(days=1), time.min, tzinfo=zone)


def growth_window_entries(
    organisation_id: int,
    *,
    on: date | None = None,
    zone: tzinfo | None = None,
    between: tuple[datetime, datetime] | None = None,
    owner: Q | None = None,
    member_id: int | None = None,
) -> QuerySet[Entry]:
    """The growth entries that count on ``on`` in ``zone`` (or paid ``between`` two instants, see
    ``growth_window_bounds``) of the member ``member_id`` (her own account only) or of the accounts ``owner``
    selects."""
    if between is None:
        assert on is not None and zone is not None
        between = growth_window_bounds(on, zone)
    start, end = between
    owners = Q(account__owner_id=member_id) if member_id is not None else (owner or Q())
    return Entry.objects.filter(
        owners,
        account__organisation_id=organisation_id,
        account__owner_type="member",
        account__asset=GROWTH_ASSET,
        account__kind=MEMBER_GROWTH,
        journal__created_at__gte=start,
        journal__created_at__lt=end,
    ).exclude(journal__code=GROWTH_MERGE_CODE)


def growth_window_expression(
    member_id: int,
    organisation_id: int,
    *,
    on: date | None = None,
    zone: tzinfo | None = None,
    between: tuple[datetime, datetime] | None = None,
) -> Combinable:
    """The member's 12-month growth (fen, may be negative) as an expression, to read it with other rows: on
    ``on`` in ``zone``, or paid ``between`` two instants (a prepared query passes them as arguments).

    Her own account and the accounts of the members merged into her are summed apart, so each lookup of
    an account uses its unique index (organisation, owner type, owner id, asset, kind)."""
    if between is None:
        assert on is not None and zone is not None
        between = growth_window_bounds(on, zone)
    own = growth_window_entries(organisation_id, between=between, member_id=member_id)
    merged = growth_window_entries(
        organisation_id,
        between=between,
        owner=Q(account__owner_id__in=GrowthSource.objects.filter(member_id=member_id).values("source_id")),
    )
    return Coalesce(_sum_of(own), 0, output_field=BigIntegerField()) + Coalesce(
        _sum_of(merged), 0, output_field=BigIntegerField()
    )


def growth_seen_annotations(
    organisation_id: int, member_id: int, between: tuple[datetime, datetime]
) -> dict[str, Combinable]:
    """What an upgrade check after her bill needs, as expressions to read with a row before the bill's
    transaction locks anything (the checkout's store row; ``tiers.GrowthSeen``): her earned tier
    (``_seen_earned_id``, NULL: no state row, the lowest), the version of her growth balance (``_seen_version``,
    NULL: no account yet) and her own growth paid ``between`` the window's bounds (``_seen_growth``). The growth
    is NULL when it would not be used: the organisation has no tiers, or members were merged into her (their
    entries count too, and are not posted to her balance, so its version would not tell they changed)."""
    own = growth_window_entries(organisation_id, between=between, member_id=member_id)
    return {
        "_seen_earned_id": Subquery(MemberTier.objects.filter(member_id=member_id).values("earned_tier_id")[:1]),
        "_seen_version": Subquery(
            Balance.objects.filter(
                account__organisation_id=organisation_id,
                account__owner_type="member",
                account__owner_id=member_id,
                account__asset=GROWTH_ASSET,
                account__kind=MEMBER_GROWTH,
            ).values("version")[:1]
        ),
        "_seen_growth": Case(
            When(
                Exists(Tier.objects.filter(organisation_id=organisation_id))
                & ~Exists(GrowthSource.objects.filter(member_id=member_id)),
                then=Coalesce(_sum_of(own), 0, output_field=BigIntegerField()),
            ),
            default=None,
            output_field=BigIntegerField(),
        ),
    }


def growth_in_window(member: Member, *, on: date, zone: tzinfo | None = None) -> int:
    """The member's growth value in fen on ``on``: paid in the last 12 months net of refunds, at least 0."""
    zone = zone or store_zone(member.home_store)
    total = (
        Member.objects.filter(pk=member.pk)
        .annotate(growth=growth_window_expression(member.pk, member.organisation_id, on=on, zone=zone))
        .values_list("growth", flat=True)
        .first()
    )
    return max(int(total or 0), 0)


def _sum_of(entries: QuerySet[Entry]) -> Subquery:
    return Subquery(
        entries.order_by().values("account__organisation_id").annotate(total=Sum("amount")).values("total")[:1],
        output_field=BigIntegerField(),
    )


def tiers_list(organisation: Organisation | int) -> list[Tier]:
    """The organisation's tier ladder, lowest first (the lowest starts at 0)."""
    organisation_id = organisation if isinstance(organisation, int) else organisation.pk
    return list(Tier.objects.filter(organisation_id=organisation_id).order_by("threshold_fen"))


def tier_for_growth(ladder: Sequence[Tier], growth_fen: int) -> Tier | None:
    """The highest tier of ``ladder`` (lowest first) whose threshold ``growth_fen`` reaches."""
    reached = [tier for tier in ladder if tier.threshold_fen <= growth_fen]
    return reached[-1] if reached else (ladder[0] if ladder else None)


def member_tier_state(member: Member) -> MemberTier | None:
    """The member's tier state row (None: she is on the lowest tier and never had another)."""
    return MemberTier.objects.filter(member_id=member.pk).select_related("tier", "earned_tier", "floor_tier").first()


def tier_history(member: Member, *, limit: int | None = 50) -> list[TierChange]:
    """The member's tier changes, newest first (from, to, why, when, who)."""
    rows = (
        TierChange.objects.filter(member_id=member.pk)
        .select_related("from_tier", "to_tier", "staff")
        .order_by("-created_at", "-pk")
    )
    return list(rows[:limit] if limit is not None else rows)


def tier_reviews_due(*, organisation_id: int, today: date) -> list[int]:
    """Members whose tier the review job of ``today`` must look at (anniversary or end of a grant)."""
    return list(
        MemberTier.objects.filter(organisation_id=organisation_id, review_on__lte=today)
        .order_by("member_id")
        .values_list("member_id", flat=True)
    )


@dataclass(frozen=True)
class TierProgress:
    """Where a member stands: her tier, her 12-month growth, and what the next tier still needs."""

    tier: Tier | None
    since: date | None
    growth_fen: int
    next_tier: Tier | None
    remaining_fen: int
    floor_tier: Tier | None = None
    floor_until: date | None = None
    review_on: date | None = None

    @property
    def message_zh(self) -> str:
        if self.tier is None:
            return ""
        if self.next_tier is None:
            return f"已是最高等级{self.tier.name_zh}"
        return f"距离{self.next_tier.name_zh}还差 {_yuan_text(self.remaining_fen)}"

    @property
    def message_en(self) -> str:
        if self.tier is None:
            return ""
        if self.next_tier is None:
            return f"{self.tier.name_en or self.tier.name_zh} is the highest tier"
        return f"{_yuan_text(self.remaining_fen)} to {self.next_tier.name_en or self.next_tier.name_zh}"


def tier_progress(member: Member, *, on: date | None = None) -> TierProgress:
    """The member's tier and how far the next one is ("距离金卡还差 ¥1,234" / "¥1,234 to Gold").

    The next tier is the first above the tier she has (granted or earned); the growth is the 12-month
    figure the upgrade rule compares with the threshold.
    """
    ladder = tiers_list(member.organisation_id)
    if not ladder:
        return TierProgress(tier=None, since=None, growth_fen=0, next_tier=None, remaining_fen=0)
    on = on or local_today(member.home_store)
    growth = growth_in_window(member, on=on)
    state = member_tier_state(member)
    tier = state.tier if state is not None else ladder[0]
    higher = [t for t in ladder if t.threshold_fen > tier.threshold_fen]
    next_tier = higher[0] if higher else None
    return TierProgress(
        tier=tier,
        since=state.since if state is not None else None,
        growth_fen=growth,
        next_tier=next_tier,
        remaining_fen=max(next_tier.threshold_fen - growth, 0) if next_tier is not None else 0,
        floor_tier=state.floor_tier if state is not None else None,
        floor_until=state.floor_until if state is not None else None,
        review_on=state.review_on if state is not None else None,
    )


def _yuan_text(fen: int) -> str:
    """ "¥1,234" for whole 元, "¥1,234.50" otherwise."""
    text = Money(fen).format()
    return text[:-3] if text.endswith(".00") else text
