"""Event rewards and earning rules beyond the base rate and the tier (issue 4 section 2).

The organisation's rules are one ``RulesSettings`` row (no row: no rule applies), saved by
``rules_settings_save``. What each rule does, and its reference numbers (shared/SCENARIOS.md):

- Birthday month (S-04): bills in the member's birthday month earn ×2 (the earning step
  ``birthday_month`` in ``sales.pricing``); the daily job ``birthday_gifts_give`` gives 200 points on the
  birthday (29 February: on the 28th in other years), once a year (``BirthdayGift`` unique per year, and the
  journal's idempotency key ``rule:birthday:<member>:<year>``).
- Member day (S-21): bills on the 8th earn ×2 (the earning step ``member_day``).
- Check-in (S-11): ``checkin_record`` gives 10 points once a day; the 7th consecutive day (and every 7th
  after it) 50 more. A missed day restarts the streak. ``CheckIn`` rows are append-only.
- Dormant wake-up (S-12): the daily job ``dormant_wake`` gives 300 points and a voucher to members with no
  visit for 90 days, once per dormant spell (``DormantReward`` unique per spell start).
- Referral (S-10): ``rewards_after_bill`` rewards the referrer (200) and the referred member (100) on her
  first paid bill with a service; ``rewards_reverse_for_bill`` takes both back on a full refund within 7
  days; when her total spend reaches 500.00 the referrer receives a voucher, once.
- Daily earning limit: ``earning_flags_raise`` flags (``EarningFlag``) members who earned more points in a
  day than the limit, for a manager to review; it never refuses an earning.

Every point given here names its rule in the lot's ``source_code`` ("rule:birthday", "rule:checkin" …).

A visit, for the dormant rule, is a ledger journal about a bill (reference type ``sales.Bill``) that moved
one of the member's own accounts (points, growth, stored value, sessions): loyalty may not import sales, and
every completed bill of a member posts at least one of these. The last visit per member is kept in
``MemberVisit`` (indexed by organisation and date) by ``member_visits_refresh``, which reads only the journals
written since its last run; the dormant job refreshes it and then reads it through the index. Writing it from
``rewards_after_bill`` instead would cost a write in every checkout (pinned at 20 queries).

The earning steps must not cost the checkout a query: a one-shot checkout (``bill_checkout``) reads the
rules' version with its store row and takes the rules from its process's copy (``rules_view_known``: one query
to copy them again after a save); elsewhere they are read through the cache (``rules_config``), refreshed when
they are saved; a miss costs one query.

Seams that sales calls:

- ``rewards_after_bill(actor=, member=, bill_id=, earning_fen=, services_fen=, on=)`` — inside the checkout's
  transaction once the bill has posted (after ``tiers.tier_after_bill``): event rewards that a completed bill
  triggers, such as the referral rewards of S-10 on the referred member's first paid service. It must cost
  no query for a member without a referrer (the checkout is pinned at 20 queries).
- ``rewards_reverse_for_bill(actor=, member=, bill_id=, completed_on=, on=, is_full=)`` — inside a refund's
  transaction: a full refund within 7 days reverses the rewards that bill triggered (S-10).
"""

from __future__ import annotations

import calendar
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from math import gcd
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.core.errors import ApplicationError, Conflict, ValidationFailed, not_found
from meiye.core.stamps import new_stamp
from meiye.ledger.models import Journal
from meiye.ledger.services import AccountKey
from meiye.loyalty.models import (
    BirthdayGift,
    CheckIn,
    DormantReward,
    EarningFlag,
    MemberVisit,
    PointsLot,
    ReferralReward,
    RulesSettings,
    VisitScan,
)
from meiye.loyalty.selectors import growth_balance, store_zone
from meiye.loyalty.services import points_account_keys, points_earn, points_take_back
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_get, merge_chain
from meiye.notify.events import MEMBER_BIRTHDAY
from meiye.notify.services import notify_event
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.promotions.models import CouponTemplate
from meiye.promotions.services import coupon_issue

__all__ = [
    "RulesConfig",
    "birthday_gifts_give",
    "birthday_multiplier",
    "birthdays_due",
    "checkin_record",
    "dormant_due",
    "dormant_wake",
    "earning_flag_review",
    "earning_flags_raise",
    "member_day_multiplier",
    "member_visits_refresh",
    "rewards_after_bill",
    "rewards_reverse_for_bill",
    "rules_config",
    "rules_settings_save",
]

BASIS_POINTS = 10_000
MAX_MULTIPLIER_BP = 100_000  # ×10
MAX_POINTS = 1_000_000
BILL_REFERENCE = "sales.Bill"  # the reference type sales gives its journals (a string: loyalty never imports sales)
_CACHE_KEY = "loyalty:rules:{}"
_CACHE_SECONDS = 3600
_MEMO = "_loyalty_rules"

SOURCE_BIRTHDAY = "rule:birthday"
SOURCE_CHECKIN = "rule:checkin"
SOURCE_CHECKIN_STREAK = "rule:checkin_streak"
SOURCE_DORMANT = "rule:dormant"
SOURCE_REFERRAL = "rule:referral"


# --- Configuration -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RulesConfig:
    """The organisation's rules as plain values (cacheable). The defaults switch every rule off."""

    birthday_multiplier_bp: int = BASIS_POINTS
    birthday_gift_points: int = 0
    member_day: int | None = None
    member_day_multiplier_bp: int = BASIS_POINTS
    checkin_points: int = 0
    checkin_streak_days: int = 7
    checkin_streak_bonus: int = 0
    dormant_days: int | None = None
    dormant_points: int = 0
    dormant_coupon_template_id: int | None = None
    referral_referrer_points: int = 0
    referral_referee_points: int = 0
    referral_refund_window_days: int = 7
    referral_spend_threshold_fen: int | None = None
    referral_coupon_template_id: int | None = None
    daily_earning_limit: int | None = None


_FIELDS = tuple(f.name for f in fields(RulesConfig))


def rules_config(organisation_id: int) -> RulesConfig:
    """The organisation's rules, from the cache (no query) or else one query."""
    key = _CACHE_KEY.format(organisation_id)
    cached = cache.get(key)
    if isinstance(cached, dict):
        return RulesConfig(**cached)
    row = RulesSettings.objects.filter(organisation_id=organisation_id).values(*_FIELDS).first()
    config = RulesConfig(**row) if row is not None else RulesConfig()
    cache.set(key, {name: getattr(config, name) for name in _FIELDS}, _CACHE_SECONDS)
    return config


def rules_view_known(member: Member, *, version: int | None) -> None:
    """Set the member's rules for a checkout that read, with its store row, the organisation's rules version
    (``selectors.rules_version_subquery``), so that the earning steps read nothing: no rules row (None), none
    apply; a stamped row, this process's copy while the stamp is the one copied (one query to copy it again
    after a save). A row without a stamp (0) is left to ``rules_config``, through the cache."""
    if version == 0:
        return
    config = RulesConfig()
    if version is not None:
        cached = _RULES_COPY.get(member.organisation_id)
        if cached is not None and cached[0] == version:
            config = cached[1]
        else:
            row = (
                RulesSettings.objects.filter(organisation_id=member.organisation_id).values(*_FIELDS, "version").first()
            )
            if row is not None:
                stamp = row.pop("version")
                config = RulesConfig(**row)
                if stamp:
                    _RULES_COPY[member.organisation_id] = (stamp, config)
    setattr(member, _MEMO, config)


# (organisation id) -> (rules version, rules): each process's copy of the rules checkouts earn by
# (``rules_view_known``). Every save sets a new random version in its transaction, so a copy is never used once
# the save has committed; a restored database, or a test's rolled-back one, cannot show a version copied before.
_RULES_COPY: dict[int, tuple[int, RulesConfig]] = {}


def _forget_config(organisation_id: int) -> None:
    key = _CACHE_KEY.format(organisation_id)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def _invalid(field: str, zh: str, en: str) -> ValidationFailed:
    return ValidationFailed("loyalty.invalid_rule", zh=f"{zh}", en=f"{field}: {en}", field=field)


def _whole(field: str, value: Any, low: int, high: int, *, zh: str, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(
            field, f"{zh}：需要 {low} 到 {high} 之间的整数。", f"must be a whole number from {low} to {high}."
        )
    return value


def rules_settings_save(*, actor: Actor, **values: Any) -> RulesSettings:
    """Save the organisation's earning rules (those named; the others keep their value). HQ only
    (``catalog.manage``, like tiers). Multipliers in basis points (×2 = 20,000); money in fen; a coupon
    template by its id. Invalid values are refused naming the field, and nothing is written."""
    actor.require(Perm.CATALOG_MANAGE)
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise _invalid(unknown[0], "未知的规则设置。", "not a rule setting.")
    limits: dict[str, tuple[int, int, str, bool]] = {
        "birthday_multiplier_bp": (BASIS_POINTS, MAX_MULTIPLIER_BP, "生日月积分倍数（基点）", False),
        "birthday_gift_points": (0, MAX_POINTS, "生日礼积分", False),
        "member_day": (1, 28, "会员日（每月几号）", True),
        "member_day_multiplier_bp": (BASIS_POINTS, MAX_MULTIPLIER_BP, "会员日积分倍数（基点）", False),
        "checkin_points": (0, MAX_POINTS, "签到积分", False),
        "checkin_streak_days": (2, 365, "连续签到天数", False),
        "checkin_streak_bonus": (0, MAX_POINTS, "连续签到奖励", False),
        "dormant_days": (1, 3650, "沉睡天数", True),
        "dormant_points": (0, MAX_POINTS, "唤醒积分", False),
        "referral_referrer_points": (0, MAX_POINTS, "推荐人积分", False),
        "referral_referee_points": (0, MAX_POINTS, "被推荐人积分", False),
        "referral_refund_window_days": (0, 365, "推荐退款期（天）", False),
        "referral_spend_threshold_fen": (1, 10**12, "被推荐人累计消费门槛（分）", True),
        "daily_earning_limit": (1, MAX_POINTS * 100, "每日积分复核上限", True),
    }
    for name, value in values.items():
        if name in limits:
            low, high, zh, nullable = limits[name]
            _whole(name, value, low, high, zh=zh, nullable=nullable)
    for name in ("dormant_coupon_template_id", "referral_coupon_template_id"):
        template_id = values.get(name)
        if template_id is None:
            continue
        if (
            isinstance(template_id, bool)
            or not isinstance(template_id, int)
            or not CouponTemplate.objects.filter(pk=template_id, organisation=actor.organisation).exists()
        ):
            raise _invalid(name, "优惠券模板不存在。", "no such coupon template.")
    with transaction.atomic():
        row, _created = RulesSettings.objects.select_for_update().get_or_create(organisation=actor.organisation)
        before = {name: getattr(row, name) for name in _FIELDS}
        for name, value in values.items():
            setattr(row, name, value)
        row.version = new_stamp()
        row.save()
        after = {name: getattr(row, name) for name in _FIELDS}
        audit_record(
            actor=actor,
            action="loyalty.rules_save",
            obj=row,
            detail={name: [before[name], after[name]] for name in _FIELDS if before[name] != after[name]},
        )
        _forget_config(actor.organisation.pk)
    return row


# --- Earning steps (called by ``sales.pricing``; no query on a cache hit) -------------------------------------


def _fraction(bp: int) -> tuple[int, int]:
    divisor = gcd(bp, BASIS_POINTS)
    return bp // divisor, BASIS_POINTS // divisor


def _member_config(member: Member) -> RulesConfig:
    """The rules, kept on the member instance for the rest of the request (a bill asks once per line)."""
    config: RulesConfig | None = getattr(member, _MEMO, None)
    if config is None:
        config = rules_config(member.organisation_id)
        setattr(member, _MEMO, config)
    return config


def birthday_multiplier(member: Member | None, on: date) -> tuple[int, int] | None:
    """The birthday-month multiplier as a fraction (×2 = 2/1) if ``on`` is in her birthday month, else None."""
    if member is None or member.birthday is None or member.birthday.month != on.month:
        return None
    bp = _member_config(member).birthday_multiplier_bp
    return _fraction(bp) if bp != BASIS_POINTS else None


def member_day_multiplier(member: Member | None, on: date) -> tuple[int, int] | None:
    """The member-day multiplier (S-21: the 8th, ×2) if ``on`` is the member day, else None."""
    if member is None:
        return None
    config = _member_config(member)
    if config.member_day is None or config.member_day != on.day or config.member_day_multiplier_bp == BASIS_POINTS:
        return None
    return _fraction(config.member_day_multiplier_bp)


# --- Birthday gift (S-04) ---------------------------------------------------------------------------------------


def _birthday_q(on: date) -> Q:
    q = Q(birthday__month=on.month, birthday__day=on.day)
    if on.month == 2 and on.day == 28 and not calendar.isleap(on.year):
        q |= Q(birthday__month=2, birthday__day=29)  # born on 29 February: the 28th in other years
    return q


def birthdays_due(*, organisation_id: int, on: date) -> list[int]:
    """Ids of the active members whose birthday is ``on`` and who have not had this year's gift: one query."""
    given = BirthdayGift.objects.filter(member_id=OuterRef("pk"), year=on.year)
    return list(
        Member.objects.filter(_birthday_q(on), organisation_id=organisation_id, status=MemberStatus.ACTIVE)
        .exclude(Q(pk__in=given.values("member_id")))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def birthday_gifts_give(
    *, actor: Actor, on: date, member_ids: Sequence[int] | None = None, progress: Callable[[], None] | None = None
) -> int:
    """Give the birthday gift to every member whose birthday is ``on`` (once a year). Returns how many got it.
    A second run the same day gives nothing more."""
    organisation_id = actor.organisation.pk
    config = rules_config(organisation_id)
    ids = birthdays_due(organisation_id=organisation_id, on=on) if member_ids is None else list(member_ids)
    given = 0
    if config.birthday_gift_points <= 0:
        return 0
    for member in Member.objects.filter(pk__in=ids, organisation_id=organisation_id).order_by("pk"):
        if _birthday_gift_one(actor, member, on, config.birthday_gift_points):
            given += 1
        if progress is not None:
            progress()
    return given


def _birthday_gift_one(actor: Actor, member: Member, on: date, points: int) -> bool:
    with transaction.atomic():
        if BirthdayGift.objects.filter(member=member, year=on.year).exists():
            return False
        lot = points_earn(
            actor=actor,
            member=member,
            points=points,
            source_code=SOURCE_BIRTHDAY,
            reference_type="loyalty.BirthdayGift",
            reference_id=f"{member.pk}:{on.year}",
            idempotency_key=f"rule:birthday:{member.pk}:{on.year}",
            earned_on=on,
        )
        assert lot is not None
        BirthdayGift.objects.create(
            organisation_id=member.organisation_id,
            member=member,
            year=on.year,
            on=on,
            points=points,
            journal_id=lot.journal_id,
        )
        audit_record(actor=actor, action="loyalty.birthday_gift", obj=member, detail={"points": points, "on": str(on)})
        with contextlib.suppress(ApplicationError):  # a message never undoes the gift
            notify_event(
                actor=actor,
                member=member,
                event=MEMBER_BIRTHDAY,
                context={},
                idempotency_key=f"member.birthday:{member.pk}:{on.year}",
            )
    return True


# --- Check-in (S-11) --------------------------------------------------------------------------------------------


def checkin_record(*, actor: Actor, member: Member, on: date) -> CheckIn:
    """Record the member's check-in of ``on``: 10 points, and on the 7th consecutive day 50 more (S-11).

    Once a day: a second check-in the same day returns the first and gives nothing. A missed day restarts
    the streak at day 1. The streak bonus comes on every multiple of the streak length (7, 14 …)."""
    actor.require(Perm.CHECKOUT)
    member = member_get(actor, member.pk)  # her organisation, a store the actor may see
    if member.status != MemberStatus.ACTIVE:
        raise ValidationFailed("checkin.member_inactive", zh="会员不是正常状态。", en="The member is not active.")
    config = rules_config(member.organisation_id)
    with transaction.atomic():
        Member.objects.select_for_update(no_key=True).filter(pk=member.pk).values_list("pk", flat=True).get()
        first = CheckIn.objects.filter(member=member, on=on).first()
        if first is not None:
            return first
        previous = CheckIn.objects.filter(member=member, on=on - timedelta(days=1)).first()
        streak = previous.streak_day + 1 if previous is not None else 1
        bonus = config.checkin_streak_bonus if streak % config.checkin_streak_days == 0 else 0
        points = config.checkin_points
        journal_id = None
        if points > 0:
            lot = points_earn(
                actor=actor,
                member=member,
                points=points,
                source_code=SOURCE_CHECKIN,
                reference_type="loyalty.CheckIn",
                reference_id=f"{member.pk}:{on.isoformat()}",
                idempotency_key=f"rule:checkin:{member.pk}:{on.isoformat()}",
                earned_on=on,
            )
            journal_id = lot.journal_id if lot is not None else None
        if bonus > 0:
            points_earn(
                actor=actor,
                member=member,
                points=bonus,
                source_code=SOURCE_CHECKIN_STREAK,
                reference_type="loyalty.CheckIn",
                reference_id=f"{member.pk}:{on.isoformat()}",
                idempotency_key=f"rule:checkin-streak:{member.pk}:{on.isoformat()}",
                earned_on=on,
            )
        checkin = CheckIn.objects.create(
            organisation_id=member.organisation_id,
            member=member,
            on=on,
            streak_day=streak,
            points=points,
            bonus=bonus,
            journal_id=journal_id,
            staff=actor.staff,
        )
        audit_record(
            actor=actor,
            action="loyalty.checkin",
            obj=member,
            detail={"on": str(on), "streak_day": streak, "points": points, "bonus": bonus},
        )
    return checkin


# --- Dormant wake-up (S-12) ---------------------------------------------------------------------------------


def _local_midnight(day: date, actor: Actor) -> datetime:
    return datetime.combine(day, time.min, tzinfo=store_zone(actor.store))


# Journals of the last hour are read again by every refresh: a transaction may commit a lower journal id
# after a higher one (PostgreSQL hands out ids at INSERT), but not one that has been open for an hour.
VISIT_LAG = timedelta(hours=1)

_VISITS_UPSERT = (
    "INSERT INTO loyalty_membervisit (member_id, organisation_id, last_visit_at) "
    "SELECT a.owner_id, %s, MAX(j.created_at) FROM ledger_journal j "
    "JOIN ledger_entry e ON e.journal_id = j.id JOIN ledger_account a ON a.id = e.account_id "
    "WHERE j.organisation_id = %s AND j.id > %s AND j.reference_type = %s AND j.reversal_of_id IS NULL "
    "AND j.code NOT LIKE %s AND a.owner_type = 'member' "
    "AND EXISTS (SELECT 1 FROM members_member m WHERE m.id = a.owner_id) "
    "GROUP BY a.owner_id "
    "ON CONFLICT (member_id) DO UPDATE SET last_visit_at = excluded.last_visit_at "
    "WHERE loyalty_membervisit.last_visit_at < excluded.last_visit_at"
)


def member_visits_refresh(*, organisation_id: int) -> int:
    """Bring ``MemberVisit`` up to date with the organisation's ledger: one set-based upsert of the latest bill
    journal per member among the journals written since the last refresh (``VisitScan``; those of the last
    ``VISIT_LAG`` are read again). Idempotent; refreshes of one organisation run one at a time (its
    ``VisitScan`` row is locked). Returns the number of members whose last visit moved.

    Why from the ledger rather than from ``rewards_after_bill``: a write in every checkout would take it past
    its pinned 20 queries (with tiers configured), and the ledger already holds every visit; reading only
    the new journals keeps the refresh proportional to the day's bills, not to the members."""
    ops = connection.ops
    with transaction.atomic():
        scan = VisitScan.objects.select_for_update().filter(organisation_id=organisation_id).first()
        if scan is None:
            VisitScan.objects.get_or_create(organisation_id=organisation_id)
            scan = VisitScan.objects.select_for_update().get(organisation_id=organisation_id)
        after = scan.journal_id
        with connection.cursor() as cursor:
            cursor.execute(_VISITS_UPSERT, [organisation_id, organisation_id, after, BILL_REFERENCE, "sales.refund%"])
            moved = max(cursor.rowcount, 0)
            cursor.execute(
                "SELECT MAX(id) FROM ledger_journal WHERE organisation_id = %s AND id > %s AND created_at < %s",
                [organisation_id, after, ops.adapt_datetimefield_value(timezone.now() - VISIT_LAG)],
            )
            upto = cursor.fetchone()[0]
        if upto is not None and upto > after:
            scan.journal_id = upto
            scan.save(update_fields=["journal_id", "updated_at"])
    return moved


def dormant_due(*, actor: Actor, on: date) -> list[tuple[int, date]]:
    """(member id, the start of her dormant spell) of the active members with no visit in the last
    ``dormant_days`` days who have had no wake-up for this spell.

    Her spell starts on the day of her last visit (a bill journal on one of her accounts, ``MemberVisit``),
    or the day she joined if she never visited; she is dormant from ``dormant_days`` days after it. Refreshes
    the visits first (``member_visits_refresh``), then two set-based reads: the visited members through the
    (organisation, last visit) index, and the members without a visit who joined before the cut-off."""
    config = rules_config(actor.organisation.pk)
    if config.dormant_days is None:
        return []
    organisation_id = actor.organisation.pk
    member_visits_refresh(organisation_id=organisation_id)
    cutoff = _local_midnight(on - timedelta(days=config.dormant_days - 1), actor)
    visited = MemberVisit.objects.filter(
        organisation_id=organisation_id, last_visit_at__lt=cutoff, member__status=MemberStatus.ACTIVE
    ).values_list("member_id", "last_visit_at")
    never = (
        Member.objects.filter(organisation_id=organisation_id, status=MemberStatus.ACTIVE, created_at__lt=cutoff)
        .filter(~Exists(MemberVisit.objects.filter(member_id=OuterRef("pk"))))
        .values_list("pk", "created_at")
    )
    zone = store_zone(actor.store)
    due = sorted((pk, last.astimezone(zone).date()) for pk, last in [*visited, *never])
    if not due:
        return []
    # Every reward of the organisation's members in one pass (not an IN of every due member: SQLite refuses
    # that many parameters, and the rewards are far fewer than the members).
    rewarded = set(DormantReward.objects.filter(organisation_id=organisation_id).values_list("member_id", "since"))
    return [(pk, since) for pk, since in due if (pk, since) not in rewarded]


def dormant_wake(
    *,
    actor: Actor,
    on: date,
    due: Sequence[tuple[int, date]] | None = None,
    progress: Callable[[], None] | None = None,
) -> int:
    """Give the wake-up reward (S-12: 300 points and a 100.00 voucher) once per dormant spell. Returns how
    many members were woken; a second run the same day gives nothing more."""
    config = rules_config(actor.organisation.pk)
    if config.dormant_days is None:
        return 0
    due = dormant_due(actor=actor, on=on) if due is None else due
    template = (
        CouponTemplate.objects.filter(pk=config.dormant_coupon_template_id).first()
        if config.dormant_coupon_template_id is not None
        else None
    )
    members = Member.objects.in_bulk([pk for pk, _ in due])
    woken = 0
    for pk, since in due:
        member = members.get(pk)
        if member is not None and _dormant_one(actor, member, since, on, config.dormant_points, template):
            woken += 1
        if progress is not None:
            progress()
    return woken


def _dormant_one(
    actor: Actor, member: Member, since: date, on: date, points: int, template: CouponTemplate | None
) -> bool:
    spell = f"{member.pk}:{since.isoformat()}"
    with transaction.atomic():
        if DormantReward.objects.filter(member=member, since=since).exists():
            return False
        lot = (
            points_earn(
                actor=actor,
                member=member,
                points=points,
                source_code=SOURCE_DORMANT,
                reference_type="loyalty.DormantReward",
                reference_id=spell,
                idempotency_key=f"rule:dormant:{spell}",
                earned_on=on,
            )
            if points > 0
            else None
        )
        coupon = None
        if template is not None:
            try:
                coupon = coupon_issue(
                    actor=actor,
                    member=member,
                    template=template,
                    source=SOURCE_DORMANT,
                    idempotency_key=f"rule:dormant-coupon:{spell}",
                    on=on,
                )
            except ApplicationError:  # template withdrawn or the member's limit reached: the points stand
                coupon = None
        DormantReward.objects.create(
            organisation_id=member.organisation_id,
            member=member,
            since=since,
            on=on,
            points=points,
            journal_id=lot.journal_id if lot is not None else None,
            coupon=coupon,
        )
        audit_record(
            actor=actor,
            action="loyalty.dormant_wake",
            obj=member,
            detail={"since": str(since), "points": points, "coupon": coupon.pk if coupon is not None else None},
        )
    return True


# --- Referral (S-10): the checkout and refund seams ---------------------------------------------------------


def rewards_after_bill(
    *, actor: Actor, member: Member, bill_id: int, earning_fen: int, services_fen: int, on: date
) -> None:
    """Inside the checkout: the referral rewards (S-10). No query at all for a member without a referrer."""
    referrer_id = member.referrer_id
    if referrer_id is None:
        return
    config = _member_config(member)  # the checkout has set them on her (rules_view_known), else the cache
    # Her row is locked first, so two checkouts of the same referred member decide the reward one at a time.
    Member.objects.select_for_update(no_key=True).filter(pk=member.pk).values_list("pk").first()
    reward = ReferralReward.objects.filter(referee_id=member.pk).first()
    not_awarded = reward is None or (reward.bill_id is None and reward.reversed_on is None)
    if not_awarded and services_fen > 0 and (config.referral_referrer_points or config.referral_referee_points):
        # (a row without a bill only records the voucher, given when her spend reached the threshold first)
        reward = _referral_award(actor, member, referrer_id, bill_id, on, config, reward)
    _referral_coupon(actor, member, referrer_id, reward, on, config)


def _referral_award(
    actor: Actor,
    member: Member,
    referrer_id: int,
    bill_id: int,
    on: date,
    config: RulesConfig,
    reward: ReferralReward | None,
) -> ReferralReward:
    referrer = Member.objects.get(pk=referrer_id)
    journals: dict[str, int | None] = {}
    for role, who, points in (
        ("referrer", referrer, config.referral_referrer_points),
        ("referee", member, config.referral_referee_points),
    ):
        lot = (
            points_earn(
                actor=actor,
                member=who,
                points=points,
                source_code=SOURCE_REFERRAL,
                reference_type=BILL_REFERENCE,
                reference_id=str(bill_id),
                idempotency_key=f"rule:referral:{member.pk}:{role}",
                earned_on=on,
            )
            if points > 0 and who.status == MemberStatus.ACTIVE
            else None
        )
        journals[role] = lot.journal_id if lot is not None else None
    if reward is None:
        reward = ReferralReward(organisation_id=member.organisation_id, referee=member, referrer=referrer)
    reward.bill_id, reward.completed_on = bill_id, on
    reward.referrer_journal_id, reward.referee_journal_id = journals["referrer"], journals["referee"]
    reward.save()
    audit_record(
        actor=actor,
        action="loyalty.referral_reward",
        obj=member,
        detail={
            "bill_id": bill_id,
            "referrer": referrer.member_no,
            "referrer_points": config.referral_referrer_points,
            "referee_points": config.referral_referee_points,
        },
    )
    return reward


def _referral_coupon(
    actor: Actor, member: Member, referrer_id: int, reward: ReferralReward | None, on: date, config: RulesConfig
) -> None:
    """The referrer's voucher once the referred member's total spend (her growth value, all time, net of
    refunds) reaches the threshold."""
    if config.referral_coupon_template_id is None or config.referral_spend_threshold_fen is None:
        return
    if reward is not None and reward.coupon_id is not None:
        return
    if growth_balance(member) < config.referral_spend_threshold_fen:
        return
    template = CouponTemplate.objects.filter(pk=config.referral_coupon_template_id).first()
    if template is None:
        return
    if reward is None:  # reached the threshold before any paid service: the row records the coupon only
        reward = ReferralReward.objects.create(
            organisation_id=member.organisation_id, referee=member, referrer_id=referrer_id
        )
    referrer = Member.objects.get(pk=reward.referrer_id)
    try:
        coupon = coupon_issue(
            actor=Actor.system(actor.organisation, actor.store),
            member=referrer,
            template=template,
            source=SOURCE_REFERRAL,
            idempotency_key=f"rule:referral-coupon:{member.pk}",
            on=on,
        )
    except ApplicationError:  # withdrawn template, referrer inactive or at her limit: the bill stands
        return
    reward.coupon = coupon
    reward.save(update_fields=["coupon", "updated_at"])
    audit_record(actor=actor, action="loyalty.referral_coupon", obj=member, detail={"coupon": coupon.pk})


def referral_reversal_account_keys(*, member: Member, bill_id: int) -> list[AccountKey]:
    """The accounts ``rewards_reverse_for_bill`` may take the referrer's points back from, for a refund of
    ``bill_id`` to lock with its own rows in ONE statement (the ledger's order): locking the referrer's points
    only later, while holding the store's and organisation's rows, could deadlock with her own checkout. Empty
    (one query) when the bill earned no referral reward that still stands."""
    referrer_id = (
        ReferralReward.objects.filter(
            referee_id=member.pk, bill_id=bill_id, reversed_on__isnull=True, referrer_journal__isnull=False
        )
        .values_list("referrer_id", flat=True)
        .first()
    )
    if referrer_id is None:
        return []
    referrer = Member.objects.get(pk=referrer_id)
    return [key for holder in merge_chain(referrer) for key in points_account_keys(member=holder, earn=True)]


def rewards_reverse_for_bill(
    *, actor: Actor, member: Member, bill_id: int, completed_on: date, on: date, is_full: bool
) -> None:
    """Inside a refund: a full refund within the window (7 days) takes both referral rewards back (S-10).
    The reward stays used: a later bill does not earn it again. Keyed on the reward row, not on the member's
    current referrer (which may have been cleared since)."""
    if not is_full:
        return
    reward_exists = ReferralReward.objects.filter(referee_id=member.pk, bill_id=bill_id, reversed_on__isnull=True)
    if not reward_exists.exists():
        return
    config = rules_config(member.organisation_id)
    if (on - completed_on).days > config.referral_refund_window_days:
        return
    reward = (
        ReferralReward.objects.select_for_update()
        .filter(referee_id=member.pk, bill_id=bill_id, reversed_on__isnull=True)
        .first()
    )
    if reward is None:
        return
    for role, journal_id in (("referrer", reward.referrer_journal_id), ("referee", reward.referee_journal_id)):
        if journal_id is not None:
            points_take_back(
                actor=actor,
                earn_journal=Journal.objects.get(pk=journal_id),
                idempotency_key=f"rule:referral-back:{member.pk}:{role}",
            )
    reward.reversed_on = on
    reward.save(update_fields=["reversed_on", "updated_at"])
    audit_record(actor=actor, action="loyalty.referral_reversed", obj=member, detail={"bill_id": bill_id})


# --- Daily earning limit: flags for review ---------------------------------------------------------------------


def earning_flags_raise(*, actor: Actor, on: date) -> int:
    """Flag the members who earned more than the daily limit on ``on`` (all sources): one set-based query,
    then one row per new flag. Never refuses or reverses anything. Returns how many flags were raised."""
    config = rules_config(actor.organisation.pk)
    if config.daily_earning_limit is None:
        return 0
    over = (
        PointsLot.objects.filter(organisation_id=actor.organisation.pk, earned_on=on)
        .exclude(member_id__in=EarningFlag.objects.filter(on=on).values("member_id"))
        .values("member_id")
        .annotate(total=Sum("amount"))
        .filter(total__gt=config.daily_earning_limit)
        .order_by("member_id")
    )
    flags = [
        EarningFlag(
            organisation_id=actor.organisation.pk,
            member_id=row["member_id"],
            on=on,
            points=row["total"],
            limit=config.daily_earning_limit,
        )
        for row in over
    ]
    with transaction.atomic():
        EarningFlag.objects.bulk_create(flags, ignore_conflicts=True)
        for flag in flags:
            audit_record(
                actor=actor,
                action="loyalty.earning_flag",
                obj=flag.member,
                detail={"on": str(on), "points": flag.points, "limit": flag.limit},
            )
    return len(flags)


REVIEW_NOTE_MAX = 255


def earning_flag_review(*, actor: Actor, flag_id: int, note: str) -> EarningFlag:
    """Mark a daily-limit flag as reviewed by the acting staff member, now, with her note (what she found,
    e.g. "团购核实无误"). Needs ``money.adjust`` (as the flags page) and a member of a store the actor may see;
    audited. A flag is reviewed once: reviewing it again is ``loyalty.flag_already_reviewed``."""
    actor.require(Perm.MONEY_ADJUST)
    text = (note or "").strip()
    if not text or len(text) > REVIEW_NOTE_MAX:
        raise ValidationFailed(
            "input.invalid",
            zh=f"复核说明：必填，最多 {REVIEW_NOTE_MAX} 个字符。",
            en=f"note: required, at most {REVIEW_NOTE_MAX} characters.",
            field="note",
        )
    with transaction.atomic():
        flag = EarningFlag.objects.select_for_update().filter(pk=flag_id, organisation_id=actor.organisation.pk).first()
        if flag is None:
            raise not_found("loyalty.flag_not_found", "该积分复核标记", "The earning flag")
        member_get(actor, flag.member_id)  # store-scoped: NotFound for a member the actor may not see
        if flag.reviewed_at is not None:
            raise Conflict(
                "loyalty.flag_already_reviewed",
                zh=f"该标记已于 {timezone.localtime(flag.reviewed_at):%Y-%m-%d %H:%M} 复核过。",
                en=f"This flag was already reviewed on {timezone.localtime(flag.reviewed_at):%Y-%m-%d %H:%M}.",
            )
        flag.reviewed_by_id = actor.staff.pk if actor.staff is not None else None
        flag.reviewed_at = timezone.now()
        flag.review_note = text
        flag.save(update_fields=["reviewed_by", "reviewed_at", "review_note"])
        audit_record(
            actor=actor,
            action="loyalty.earning_flag_review",
            obj=flag.member,
            detail={"on": str(flag.on), "points": flag.points, "note": text},
        )
    return flag
