"""Writes for points and growth value: earning rates, earn, spend, restore, take back, expire, merge.

Every points change is one ledger journal (ADR 0003) plus the matching change to the member's lots, in one
transaction. The services work inside an outer transaction (a checkout's) and are idempotent through the
ledger's idempotency key: a replay returns the first journal (the first lot, for an earning) and changes
nothing; the same key with a different request is refused (``ledger.idempotency_conflict``).

Locking: each service first locks the member's points balance row (``select_for_update``; on SQLite the
IMMEDIATE transaction holds the write lock), then checks for a replay, then posts. Two requests for the
same member therefore run one after the other, and the replay check cannot race with the first post.
Lots are locked in (expires_on, id) order, always after the balance row.

The lots invariant (see ``meiye.loyalty.models``): the ``remaining`` of a member's lots adds up to her
balance when it is positive, to 0 when she owes points. ``_settle`` restores it after operations that
can leave too much on the lots (a take-back of points already spent, a restore while in debt, a merge
with a member in debt) by taking the excess from the lots expiring first, recorded as ``PointsLotUse``
rows of that operation's journal. ``verify_points_lots()`` checks the invariant for a whole organisation.

Permissions: these services are building blocks of checkout, refunds and jobs. The member must belong to
the actor's organisation; writing points needs the checkout or the refund permission (a system actor,
i.e. a scheduled job, may always). Finding the member (``member_get``) is the caller's job.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.catalog.models import EarningCategory
from meiye.core.errors import ApplicationError, ValidationFailed, forbidden, not_found
from meiye.core.idempotency import validate_key
from meiye.ledger.models import Account, Balance, Journal
from meiye.ledger.selectors import journal_by_idempotency_key
from meiye.ledger.services import (
    AccountKey,
    Leg,
    LockedAccounts,
    Posting,
    account_get_or_create,
    accounts_lock,
    journal_post,
    journal_reverse,
)
from meiye.loyalty.models import EarningRate, LoyaltySettings, PointsLot, PointsLotUse
from meiye.loyalty.selectors import (
    GROWTH_ASSET,
    GROWTH_SOURCE,
    MEMBER_GROWTH,
    MEMBER_POINTS,
    POINTS_ASSET,
    POINTS_EXPIRED,
    POINTS_ISSUED,
    POINTS_REDEEMED,
    growth_balance,
    points_balance,
    points_lifetime_months,
)
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_survivor
from meiye.org.context import Actor
from meiye.org.roles import Perm

__all__ = [
    "PreparedEarning",
    "PreparedSpending",
    "earning_rate_set",
    "growth_account_keys",
    "growth_add",
    "growth_add_prepare",
    "growth_balance",
    "loyalty_settings_set",
    "points_account_keys",
    "points_balance",
    "points_earn",
    "points_earn_prepare",
    "points_expire_due",
    "points_export_section",
    "points_for_amount",
    "points_merge",
    "points_restore",
    "points_spend",
    "points_spend_prepare",
    "points_take_back",
    "verify_points_lots",
]

MAX_POINTS = 10**12
MAX_LIFETIME_MONTHS = 120


# --- Configuration ---------------------------------------------------------------------------------------


def earning_rate_set(*, actor: Actor, earning_category: str, points_per_yuan: int) -> EarningRate:
    """Set how many points one 元 actually paid earns in a category (S-02: basic care 1, anti-ageing 3)."""
    actor.require(Perm.CATALOG_MANAGE)
    if earning_category not in EarningCategory.values or earning_category == EarningCategory.NONE:
        raise ValidationFailed(
            "loyalty.invalid_earning_category",
            zh=f"积分类别：{earning_category!r} 不是可积分的类别。",
            en=f"earning_category: {earning_category!r} is not a category that earns points.",
            field="earning_category",
        )
    if isinstance(points_per_yuan, bool) or not isinstance(points_per_yuan, int) or not 0 <= points_per_yuan <= 1000:
        raise ValidationFailed(
            "loyalty.invalid_rate",
            zh="每元积分：需要 0 到 1000 之间的整数。",
            en="points_per_yuan: must be a whole number from 0 to 1000.",
            field="points_per_yuan",
        )
    with transaction.atomic():
        rate, created = EarningRate.objects.select_for_update().get_or_create(
            organisation=actor.organisation,
            earning_category=earning_category,
            defaults={"points_per_yuan": points_per_yuan},
        )
        before = None if created else rate.points_per_yuan
        if not created and rate.points_per_yuan != points_per_yuan:
            rate.points_per_yuan = points_per_yuan
            rate.save(update_fields=["points_per_yuan"])
        audit_record(
            actor=actor,
            action="loyalty.earning_rate_set",
            obj=rate,
            detail={"earning_category": earning_category, "before": before, "after": points_per_yuan},
        )
    return rate


def loyalty_settings_set(*, actor: Actor, points_lifetime_months: int) -> LoyaltySettings:
    """Set how many months earned points last (12 in the reference configuration)."""
    actor.require(Perm.CATALOG_MANAGE)
    if (
        isinstance(points_lifetime_months, bool)
        or not isinstance(points_lifetime_months, int)
        or not 1 <= points_lifetime_months <= MAX_LIFETIME_MONTHS
    ):
        raise ValidationFailed(
            "loyalty.invalid_lifetime",
            zh=f"积分有效期：需要 1 到 {MAX_LIFETIME_MONTHS} 个月。",
            en=f"points_lifetime_months: must be 1 to {MAX_LIFETIME_MONTHS} months.",
            field="points_lifetime_months",
        )
    with transaction.atomic():
        settings, _ = LoyaltySettings.objects.select_for_update().get_or_create(organisation=actor.organisation)
        before = settings.points_lifetime_months
        settings.points_lifetime_months = points_lifetime_months
        settings.save(update_fields=["points_lifetime_months"])
        audit_record(
            actor=actor,
            action="loyalty.settings_set",
            obj=settings,
            detail={"points_lifetime_months": [before, points_lifetime_months]},
        )
    return settings


# --- Arithmetic -------------------------------------------------------------------------------------------------


def points_for_amount(
    *, earning_fen: int, points_per_yuan: int, multiplier_num: int = 1, multiplier_den: int = 1
) -> int:
    """Points earned by ``earning_fen`` of real money: floor(fen × rate × num / (100 × den)).

    Integer arithmetic only; rounds down, never up (S-03: 99.99 元 × 1 × 6/5 = 119.988 → 119).
    A multiplier is an exact fraction: ×1.2 is 6/5, ×1.5 is 3/2, the birthday double is 2/1.
    """
    for name, value in (
        ("earning_fen", earning_fen),
        ("points_per_yuan", points_per_yuan),
        ("multiplier_num", multiplier_num),
        ("multiplier_den", multiplier_den),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
    if multiplier_den == 0:
        raise ValueError("multiplier_den must be positive")
    return (earning_fen * points_per_yuan * multiplier_num) // (100 * multiplier_den)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the end of a shorter month (2025-03-31 + 1 → 2025-04-30)."""
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# --- Points ------------------------------------------------------------------------------------------------------


def points_earn(
    *,
    actor: Actor,
    member: Member,
    points: int,
    source_code: str,
    reference_type: str,
    reference_id: str,
    idempotency_key: str,
    earned_on: date | None = None,
    lifetime_months: int | None = None,
) -> PointsLot | None:
    """Credit earned points: one ``points.earn`` journal (points_issued −p, member +p) and one lot.

    The lot expires ``lifetime_months`` (default: the organisation's setting, 12) after ``earned_on``
    (default: today in the actor's store), on the same day of the month. A member in debt (negative
    balance) repays it first: the lot's ``remaining`` is p − min(p, debt). ``points <= 0`` writes nothing
    and returns None. A replay returns the lot of the first call.
    """
    _check_actor(actor, member)
    _check_int("points", points)
    if points <= 0:
        return None
    _check_points(points)
    source_code = _check_text("source_code", source_code, 64)
    key = validate_key(idempotency_key)
    if lifetime_months is not None and not 1 <= lifetime_months <= MAX_LIFETIME_MONTHS:
        raise ValueError(f"lifetime_months must be 1 to {MAX_LIFETIME_MONTHS}, got {lifetime_months}")
    member = member_survivor(member)
    with transaction.atomic():
        # Both balance rows in one statement, in primary-key order (the ledger's order).
        locked = accounts_lock(
            organisation_id=member.organisation_id, keys=points_account_keys(member=member, earn=True)
        )
        account = locked.get(_points_key(member))
        issued = locked.get(_org_key(member.organisation_id, POINTS_ISSUED, POINTS_ASSET))
        balance = locked.balances[account.pk]
        first = journal_by_idempotency_key(organisation_id=member.organisation_id, key=key)
        journal = journal_post(
            organisation_id=member.organisation_id,
            code="points.earn",
            entries=[Leg(issued, -points), Leg(account, points)],
            reference_type=reference_type,
            reference_id=reference_id,
            staff_id=_staff_id(actor),
            store_id=_store_id(actor),
            idempotency_key=key,
            memo=source_code,
        )
        if first is not None:
            return PointsLot.objects.get(journal=journal)
        earned_on = earned_on or _today(actor)
        debt = max(0, -balance.amount)
        return PointsLot.objects.create(
            organisation_id=member.organisation_id,
            member=member,
            journal=journal,
            source_code=source_code,
            earned_on=earned_on,
            expires_on=add_months(earned_on, lifetime_months or points_lifetime_months(member.organisation_id)),
            amount=points,
            remaining=points - min(points, debt),
        )


def points_spend(
    *,
    actor: Actor,
    member: Member,
    points: int,
    reference_type: str,
    reference_id: str,
    idempotency_key: str,
    code: str = "points.spend",
) -> Journal:
    """Spend points (an offset at checkout, a gift from the points mall): member −p, points_redeemed +p.

    Refused with ``points.insufficient`` (nothing written) when the balance is below ``points``. Takes the
    points from the lots expiring first (a lot past its expiry that the nightly job has not yet swept is
    among those first) and records each as a ``PointsLotUse``, so ``points_restore`` can put them back.
    """
    _check_actor(actor, member)
    _check_int("points", points)
    if points <= 0:
        raise ValidationFailed(
            "points.invalid_amount",
            zh="积分数量：必须大于 0。",
            en="points: must be more than 0.",
            field="points",
        )
    _check_points(points)
    key = validate_key(idempotency_key)
    member = member_survivor(member)
    with transaction.atomic():
        locked = accounts_lock(
            organisation_id=member.organisation_id, keys=points_account_keys(member=member, spend=True)
        )
        account = locked.get(_points_key(member))
        redeemed = locked.get(_org_key(member.organisation_id, POINTS_REDEEMED, POINTS_ASSET))
        balance = locked.balances[account.pk]
        first = journal_by_idempotency_key(organisation_id=member.organisation_id, key=key)
        if first is None and balance.amount < points:
            raise ApplicationError(
                "points.insufficient",
                zh=f"积分不足：现有 {max(balance.amount, 0)} 积分，需要 {points} 积分。",
                en=f"Not enough points: the member has {max(balance.amount, 0)}, {points} are needed.",
                field="points",
                extra={"balance": balance.amount, "points": points},
            )
        journal = journal_post(
            organisation_id=member.organisation_id,
            code=code,
            entries=[Leg(account, -points), Leg(redeemed, points)],
            reference_type=reference_type,
            reference_id=reference_id,
            staff_id=_staff_id(actor),
            store_id=_store_id(actor),
            idempotency_key=key,
        )
        if first is None:
            _take_from_lots(member_id=member.pk, points=points, journal=journal)
        return journal


def points_restore(*, actor: Actor, spend_journal: Journal, idempotency_key: str) -> Journal:
    """Undo a spend exactly (a refunded bill returns its offset points; a rejected mall order its points).

    Posts the reversal of ``spend_journal`` and puts each ``PointsLotUse`` amount back on its lot. A lot
    that has expired in the meantime gets its points back too, and the next expiry job expires them again
    (simple, and the member loses nothing she would not have lost without the spend). If the member
    owes points at that moment, the restored points repay the debt first (``_settle``).
    """
    _check_journal_org(actor, spend_journal)
    _require_points_permission(actor)
    key = validate_key(idempotency_key)
    entries = list(spend_journal.entries.select_related("account"))
    member_entries = [e for e in entries if _is_member_points(e.account)]
    if (
        spend_journal.reversal_of_id is not None
        or len(entries) != 2
        or len(member_entries) != 1
        or member_entries[0].amount >= 0
        or not any(e.account.owner_type == "organisation" and e.account.kind == POINTS_REDEEMED for e in entries)
    ):
        raise ValidationFailed(
            "points.not_a_spend",
            zh=f"凭证 #{spend_journal.pk} 不是积分使用记录，不能退回积分。",
            en=f"Journal #{spend_journal.pk} is not a spending of points; nothing to restore.",
        )
    original_account = member_entries[0].account
    holder = member_survivor(Member.objects.get(pk=original_account.owner_id))
    with transaction.atomic():
        account = _member_points_account(holder)
        _lock_balances([*(e.account for e in entries), account])
        first = journal_by_idempotency_key(organisation_id=spend_journal.organisation_id, key=key)
        reversal = journal_reverse(journal=spend_journal, staff_id=_staff_id(actor), idempotency_key=key)
        if first is not None:
            return reversal
        _forward_to_survivor(actor, original_account, account, -member_entries[0].amount, reversal)
        uses = list(PointsLotUse.objects.filter(journal=spend_journal).order_by("pk"))
        lots = {
            lot.pk: lot
            for lot in PointsLot.objects.select_for_update()
            .filter(pk__in={use.lot_id for use in uses})
            .order_by("expires_on", "pk")
        }
        for use in uses:
            lots[use.lot_id].remaining += use.amount
        for lot in lots.values():
            lot.save(update_fields=["remaining"])
        _settle(member_id=holder.pk, account=account, journal=reversal)
        return reversal


def points_take_back(*, actor: Actor, earn_journal: Journal, idempotency_key: str) -> Journal:
    """Reverse an earning (its bill was refunded). The member's balance may go negative (S-22).

    The points come off the earning's own lot first (min(remaining, amount)). What the member already
    spent from that lot must still leave her balance: it is taken from her other lots, the first to
    expire first, and only what they cannot cover remains as debt (a negative balance), which later
    earnings repay before they create spendable points.
    """
    _check_journal_org(actor, earn_journal)
    _require_points_permission(actor)
    key = validate_key(idempotency_key)
    lot = PointsLot.objects.filter(journal=earn_journal).first()
    if lot is None:
        raise ValidationFailed(
            "points.not_an_earning",
            zh=f"凭证 #{earn_journal.pk} 不是积分获得记录，不能收回积分。",
            en=f"Journal #{earn_journal.pk} is not an earning of points; nothing to take back.",
        )
    entries = list(earn_journal.entries.select_related("account"))
    original_account = next(e.account for e in entries if _is_member_points(e.account))
    holder = member_survivor(lot.member)
    with transaction.atomic():
        account = _member_points_account(holder)
        _lock_balances([*(e.account for e in entries), account])
        first = journal_by_idempotency_key(organisation_id=earn_journal.organisation_id, key=key)
        reversal = journal_reverse(journal=earn_journal, staff_id=_staff_id(actor), idempotency_key=key)
        if first is not None:
            return reversal
        _forward_to_survivor(actor, original_account, account, -lot.amount, reversal)
        lot = PointsLot.objects.select_for_update().get(pk=lot.pk)
        taken = min(lot.remaining, lot.amount)
        if taken:
            lot.remaining -= taken
            lot.save(update_fields=["remaining"])
            PointsLotUse.objects.create(lot=lot, journal=reversal, amount=taken)
        _settle(member_id=holder.pk, account=account, journal=reversal)
        return reversal


def points_expire_due(*, actor: Actor, today: date) -> int:
    """The nightly job: expire every lot of the organisation whose ``expires_on`` is before ``today``.

    One ``points.expire`` journal per member (member −p, points_expired +p), each in its own transaction,
    with the key ``points.expire:<member>:<today>``; running the job twice the same day expires nothing
    more. Returns the number of points expired. S-08: the job of 2026-09-02 expires a lot that was
    valid until 2026-09-01.
    """
    if not actor.is_system:
        actor.require(Perm.MONEY_ADJUST)
    organisation_id = actor.organisation.pk
    member_ids = list(
        PointsLot.objects.filter(organisation_id=organisation_id, remaining__gt=0, expires_on__lt=today)
        .values_list("member_id", flat=True)
        .distinct()
        .order_by("member_id")
    )
    expired_total = 0
    expired_account = _org_account(organisation_id, POINTS_EXPIRED, POINTS_ASSET)
    for member_id in member_ids:
        member = Member.objects.get(pk=member_id)
        with transaction.atomic():
            account = _member_points_account(member)
            _lock_balances([account, expired_account])
            lots = list(
                PointsLot.objects.select_for_update()
                .filter(member_id=member_id, remaining__gt=0, expires_on__lt=today)
                .order_by("expires_on", "pk")
            )
            points = sum(lot.remaining for lot in lots)
            if not points:
                continue
            journal = journal_post(
                organisation_id=organisation_id,
                code="points.expire",
                entries=[Leg(account, -points), Leg(expired_account, points)],
                reference_type="members.Member",
                reference_id=str(member_id),
                staff_id=_staff_id(actor),
                idempotency_key=f"points.expire:{member_id}:{today.isoformat()}",
                memo=f"expired before {today.isoformat()}",
            )
            PointsLotUse.objects.bulk_create(
                [PointsLotUse(lot=lot, journal=journal, amount=lot.remaining) for lot in lots]
            )
            for lot in lots:
                lot.remaining = 0
                lot.save(update_fields=["remaining"])
            expired_total += points
    return expired_total


# --- Growth value ----------------------------------------------------------------------------------------------


def growth_add(
    *,
    actor: Actor,
    member: Member,
    amount_fen: int,
    reference_type: str,
    reference_id: str,
    idempotency_key: str,
) -> Journal | None:
    """Add growth value (fen of real money paid); a negative amount is a refund and lowers it.

    ``growth.earn`` or ``growth.refund``: growth_source −a, member growth +a. 0 writes nothing.
    """
    _check_actor(actor, member)
    _check_int("amount_fen", amount_fen)
    if amount_fen == 0:
        return None
    _check_points(abs(amount_fen), field="amount_fen")
    key = validate_key(idempotency_key)
    member = member_survivor(member)
    with transaction.atomic():
        locked = accounts_lock(organisation_id=member.organisation_id, keys=growth_account_keys(member=member))
        account = locked.get(_growth_key(member))
        source = locked.get(_org_key(member.organisation_id, GROWTH_SOURCE, GROWTH_ASSET))
        return journal_post(
            organisation_id=member.organisation_id,
            code="growth.earn" if amount_fen > 0 else "growth.refund",
            entries=[Leg(source, -amount_fen), Leg(account, amount_fen)],
            reference_type=reference_type,
            reference_id=reference_id,
            staff_id=_staff_id(actor),
            store_id=_store_id(actor),
            idempotency_key=key,
        )


# --- Building blocks of a checkout: one batch of journals over accounts locked once ----------------------------
#
# A checkout posts its CNY, points and growth journals in one ``ledger.services.journals_post`` over the
# accounts it locked in one ``accounts_lock`` (keys from ``points_account_keys`` / ``growth_account_keys``).
# These functions do the checks and arithmetic of ``points_spend`` / ``points_earn`` / ``growth_add`` against
# those locked balances and return what to post, and what to write once the journal exists (the lot, the
# lot uses). They take the live member (the checkout has checked she is active, so not merged) and do not
# check for a replay: the checkout's own key, claimed in the same transaction, covers its derived keys.


def points_account_keys(*, member: Member, earn: bool = False, spend: bool = False) -> list[AccountKey]:
    """The member's points account, with the organisation's ``points_issued`` (earn) / ``points_redeemed``."""
    keys = [_points_key(member)]
    if earn:
        keys.append(_org_key(member.organisation_id, POINTS_ISSUED, POINTS_ASSET))
    if spend:
        keys.append(_org_key(member.organisation_id, POINTS_REDEEMED, POINTS_ASSET))
    return keys


def growth_account_keys(*, member: Member) -> list[AccountKey]:
    return [_growth_key(member), _org_key(member.organisation_id, GROWTH_SOURCE, GROWTH_ASSET)]


@dataclass(frozen=True)
class PreparedSpending:
    posting: Posting
    member_id: int
    points: int

    def take_from_lots(self, journal: Journal) -> None:
        """After the journal is written: take the points from the lots expiring first (``points_spend``)."""
        _take_from_lots(member_id=self.member_id, points=self.points, journal=journal)


@dataclass(frozen=True)
class PreparedEarning:
    posting: Posting
    member: Member
    points: int
    source_code: str
    earned_on: date
    expires_on: date
    debt: int

    def create_lot(self, journal: Journal) -> PointsLot:
        """After the journal is written: the lot of these points, less the debt they repay (``points_earn``)."""
        return PointsLot.objects.create(
            organisation_id=self.member.organisation_id,
            member=self.member,
            journal=journal,
            source_code=self.source_code,
            earned_on=self.earned_on,
            expires_on=self.expires_on,
            amount=self.points,
            remaining=self.points - min(self.points, self.debt),
        )


def points_spend_prepare(
    *,
    actor: Actor,
    member: Member,
    points: int,
    locked: LockedAccounts,
    reference_type: str,
    reference_id: str,
    idempotency_key: str,
    code: str = "points.spend",
) -> PreparedSpending:
    """``points_spend`` against locked balances: same checks and ``points.insufficient``; nothing written."""
    _check_actor(actor, member)
    _check_live(member)
    _check_int("points", points)
    if points <= 0:
        raise ValidationFailed(
            "points.invalid_amount", zh="积分数量：必须大于 0。", en="points: must be more than 0.", field="points"
        )
    _check_points(points)
    key = validate_key(idempotency_key)
    account = locked.get(_points_key(member))
    redeemed = locked.get(_org_key(member.organisation_id, POINTS_REDEEMED, POINTS_ASSET))
    balance = locked.balance(account)
    if balance < points:
        raise ApplicationError(
            "points.insufficient",
            zh=f"积分不足：现有 {max(balance, 0)} 积分，需要 {points} 积分。",
            en=f"Not enough points: the member has {max(balance, 0)}, {points} are needed.",
            field="points",
            extra={"balance": balance, "points": points},
        )
    posting = Posting(
        code=code,
        entries=[Leg(account, -points), Leg(redeemed, points)],
        reference_type=reference_type,
        reference_id=reference_id,
        staff_id=_staff_id(actor),
        store_id=_store_id(actor),
        idempotency_key=key,
    )
    return PreparedSpending(posting=posting, member_id=member.pk, points=points)


def points_earn_prepare(
    *,
    actor: Actor,
    member: Member,
    points: int,
    locked: LockedAccounts,
    source_code: str,
    reference_type: str,
    reference_id: str,
    idempotency_key: str,
    earned_on: date,
    lifetime_months: int,
    posted_before: int = 0,
) -> PreparedEarning | None:
    """``points_earn`` against locked balances; None for ``points <= 0``. ``posted_before`` is the change to
    the member's points posted earlier in the same batch (a spend: negative), so the debt is the one the
    earning meets."""
    _check_actor(actor, member)
    _check_live(member)
    _check_int("points", points)
    if points <= 0:
        return None
    _check_points(points)
    source_code = _check_text("source_code", source_code, 64)
    key = validate_key(idempotency_key)
    if not 1 <= lifetime_months <= MAX_LIFETIME_MONTHS:
        raise ValueError(f"lifetime_months must be 1 to {MAX_LIFETIME_MONTHS}, got {lifetime_months}")
    account = locked.get(_points_key(member))
    issued = locked.get(_org_key(member.organisation_id, POINTS_ISSUED, POINTS_ASSET))
    posting = Posting(
        code="points.earn",
        entries=[Leg(issued, -points), Leg(account, points)],
        reference_type=reference_type,
        reference_id=reference_id,
        staff_id=_staff_id(actor),
        store_id=_store_id(actor),
        idempotency_key=key,
        memo=source_code,
    )
    return PreparedEarning(
        posting=posting,
        member=member,
        points=points,
        source_code=source_code,
        earned_on=earned_on,
        expires_on=add_months(earned_on, lifetime_months),
        debt=max(0, -(locked.balance(account) + posted_before)),
    )


def growth_add_prepare(
    *,
    actor: Actor,
    member: Member,
    amount_fen: int,
    locked: LockedAccounts,
    reference_type: str,
    reference_id: str,
    idempotency_key: str,
) -> Posting | None:
    """``growth_add`` against locked accounts; None for 0."""
    _check_actor(actor, member)
    _check_live(member)
    _check_int("amount_fen", amount_fen)
    if amount_fen == 0:
        return None
    _check_points(abs(amount_fen), field="amount_fen")
    key = validate_key(idempotency_key)
    account = locked.get(_growth_key(member))
    source = locked.get(_org_key(member.organisation_id, GROWTH_SOURCE, GROWTH_ASSET))
    return Posting(
        code="growth.earn" if amount_fen > 0 else "growth.refund",
        entries=[Leg(source, -amount_fen), Leg(account, amount_fen)],
        reference_type=reference_type,
        reference_id=reference_id,
        staff_id=_staff_id(actor),
        store_id=_store_id(actor),
        idempotency_key=key,
    )


# --- Member merge, export ------------------------------------------------------------------------------------


def points_merge(actor: Actor, survivor: Member, merged: Member) -> dict[str, Any]:
    """``members.services.MERGE_HOOKS`` entry: move the merged member's points (with her lots) and growth.

    Runs inside ``member_merge``'s transaction. Journals ``points.merge`` and ``growth.merge`` move the
    whole balances (a debt moves too, and is then settled against the survivor's lots).
    """
    moved: dict[str, Any] = {}
    from_points, to_points = _member_points_account(merged), _member_points_account(survivor)
    from_growth, to_growth = _member_growth_account(merged), _member_growth_account(survivor)
    balances = _lock_balances([from_points, to_points, from_growth, to_growth])
    points = balances[from_points.pk].amount
    growth = balances[from_growth.pk].amount
    lots = PointsLot.objects.filter(member=merged).update(member=survivor)
    if points:
        journal = journal_post(
            organisation_id=survivor.organisation_id,
            code="points.merge",
            entries=[Leg(from_points, -points), Leg(to_points, points)],
            staff_id=_staff_id(actor),
            store_id=_store_id(actor),
            reference_type="members.Member",
            reference_id=str(merged.pk),
            idempotency_key=f"member.merge:{merged.pk}:pts",
        )
        _settle(member_id=survivor.pk, account=to_points, journal=journal)
    if growth:
        journal_post(
            organisation_id=survivor.organisation_id,
            code="growth.merge",
            entries=[Leg(from_growth, -growth), Leg(to_growth, growth)],
            staff_id=_staff_id(actor),
            store_id=_store_id(actor),
            reference_type="members.Member",
            reference_id=str(merged.pk),
            idempotency_key=f"member.merge:{merged.pk}:grw",
        )
    moved["points"] = points
    moved["points_lots"] = lots
    moved["growth_fen"] = growth
    return moved


def points_export_section(member: Member) -> tuple[str, Any]:
    """``members.services.EXPORT_SECTIONS`` entry: points balance, every lot, growth value."""
    return (
        "points",
        {
            "balance": points_balance(member),
            "growth_fen": growth_balance(member),
            "lots": [
                {
                    "source": lot.source_code,
                    "earned_on": lot.earned_on.isoformat(),
                    "expires_on": lot.expires_on.isoformat(),
                    "amount": lot.amount,
                    "remaining": lot.remaining,
                }
                for lot in PointsLot.objects.filter(member=member).order_by("earned_on", "pk")
            ],
        },
    )


def verify_points_lots(*, organisation_id: int | None = None) -> list[str]:
    """Members whose open lots do not add up to max(points balance, 0); an empty list means all agree."""
    accounts = Account.objects.filter(owner_type="member", asset=POINTS_ASSET, kind=MEMBER_POINTS)
    lots = PointsLot.objects.all()
    if organisation_id is not None:
        accounts = accounts.filter(organisation_id=organisation_id)
        lots = lots.filter(organisation_id=organisation_id)
    balances = dict(accounts.values_list("owner_id", "balance__amount"))
    on_lots = dict(lots.values("member_id").annotate(total=Sum("remaining")).values_list("member_id", "total"))
    problems = []
    for member_id in sorted(set(balances) | set(on_lots)):
        expected = max(balances.get(member_id) or 0, 0)
        actual = on_lots.get(member_id) or 0
        if actual != expected:
            problems.append(f"member {member_id}: lots hold {actual} points but the balance allows {expected}")
    return problems


# --- internals ---------------------------------------------------------------------------------------------


def _member_points_account(member: Member) -> Account:
    return account_get_or_create(
        organisation_id=member.organisation_id,
        owner_type="member",
        owner_id=member.pk,
        asset=POINTS_ASSET,
        kind=MEMBER_POINTS,
        may_go_negative=True,
    )


def _member_growth_account(member: Member) -> Account:
    return account_get_or_create(
        organisation_id=member.organisation_id,
        owner_type="member",
        owner_id=member.pk,
        asset=GROWTH_ASSET,
        kind=MEMBER_GROWTH,
        may_go_negative=True,
    )


def _org_account(organisation_id: int, kind: str, asset: str) -> Account:
    return account_get_or_create(
        organisation_id=organisation_id,
        owner_type="organisation",
        owner_id=organisation_id,
        asset=asset,
        kind=kind,
        may_go_negative=True,
    )


def _points_key(member: Member) -> AccountKey:
    return AccountKey("member", member.pk, POINTS_ASSET, MEMBER_POINTS, may_go_negative=True)


def _growth_key(member: Member) -> AccountKey:
    return AccountKey("member", member.pk, GROWTH_ASSET, MEMBER_GROWTH, may_go_negative=True)


def _org_key(organisation_id: int, kind: str, asset: str) -> AccountKey:
    return AccountKey("organisation", organisation_id, asset, kind, may_go_negative=True)


def _check_live(member: Member) -> None:
    if member.status == MemberStatus.MERGED:
        raise ValueError(f"member #{member.pk} was merged; prepare for the member she was merged into")


def _is_member_points(account: Account) -> bool:
    return account.owner_type == "member" and account.asset == POINTS_ASSET and account.kind == MEMBER_POINTS


def _lock_balances(accounts: Iterable[Account]) -> dict[int, Balance]:
    """Lock the accounts' balance rows in primary-key order (the ledger's order, so no deadlock)."""
    ids = sorted({account.pk for account in accounts})
    return {
        balance.account_id: balance
        for balance in Balance.objects.select_for_update().filter(account_id__in=ids).order_by("account_id")
    }


def _take_from_lots(*, member_id: int, points: int, journal: Journal) -> None:
    """Take ``points`` from the member's open lots, the first to expire first, recorded against ``journal``."""
    left = points
    uses: list[PointsLotUse] = []
    lots = (
        PointsLot.objects.select_for_update().filter(member_id=member_id, remaining__gt=0).order_by("expires_on", "pk")
    )
    for lot in lots:
        taken = min(lot.remaining, left)
        lot.remaining -= taken
        lot.save(update_fields=["remaining"])
        uses.append(PointsLotUse(lot=lot, journal=journal, amount=taken))
        left -= taken
        if not left:
            break
    if left:
        raise ApplicationError(
            "points.lots_out_of_step",
            zh=f"会员 #{member_id} 的积分批次与余额不一致（缺 {left} 积分），请联系管理员核对。",
            en=f"Member #{member_id}'s points lots do not match her balance ({left} points short); please report it.",
            extra={"member_id": member_id, "short": left},
        )
    PointsLotUse.objects.bulk_create(uses)


def _settle(*, member_id: int, account: Account, journal: Journal) -> None:
    """Bring the member's lots back to max(balance, 0) by taking any excess from the lots expiring first."""
    balance = Balance.objects.get(account_id=account.pk).amount
    on_lots = PointsLot.objects.filter(member_id=member_id, remaining__gt=0).aggregate(total=Sum("remaining"))["total"]
    excess = (on_lots or 0) - max(balance, 0)
    if excess > 0:
        _take_from_lots(member_id=member_id, points=excess, journal=journal)


def _forward_to_survivor(actor: Actor, original: Account, holder: Account, change: int, journal: Journal) -> None:
    """A reversal posted to a merged member's account: move its effect on to the survivor's account.

    Runs in the reversal's transaction, after its replay check, so it needs no idempotency key of its own.
    """
    if original.pk == holder.pk or change == 0:
        return
    journal_post(
        organisation_id=original.organisation_id,
        code="points.merge",
        entries=[Leg(original, -change), Leg(holder, change)],
        reference_type=journal.reference_type,
        reference_id=journal.reference_id,
        staff_id=_staff_id(actor),
        store_id=_store_id(actor),
        memo=f"forwarded from merged member #{original.owner_id}",
    )


def _require_points_permission(actor: Actor) -> None:
    if not (actor.can(Perm.CHECKOUT) or actor.can(Perm.REFUND)):
        raise forbidden(Perm.CHECKOUT)


def _check_actor(actor: Actor, member: Member) -> None:
    if member.organisation_id != actor.organisation.pk:
        raise not_found("member.not_found", "会员", "Member")
    _require_points_permission(actor)


def _check_journal_org(actor: Actor, journal: Journal) -> None:
    if journal.organisation_id != actor.organisation.pk:
        raise not_found("ledger.journal_not_found", "凭证", "Journal")


def _check_int(field: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an int, got {type(value).__name__}")


def _check_points(value: int, *, field: str = "points") -> None:
    if value >= MAX_POINTS:
        raise ValidationFailed(
            "points.invalid_amount",
            zh=f"{field}：数值过大。",
            en=f"{field}: the number is too large.",
            field=field,
        )


def _check_text(field: str, value: str, max_length: int) -> str:
    value = (value or "").strip()
    if not value or len(value) > max_length:
        raise ValidationFailed(
            "input.invalid",
            zh=f"{field}：需要 1 到 {max_length} 个字符。",
            en=f"{field}: must be 1 to {max_length} characters.",
            field=field,
        )
    return value


def _staff_id(actor: Actor) -> int | None:
    return actor.staff.pk if actor.staff is not None else None


def _store_id(actor: Actor) -> int | None:
    return actor.store.pk if actor.store is not None else None


def _today(actor: Actor) -> date:
    if actor.store is not None:
        return timezone.localdate(timezone=ZoneInfo(actor.store.time_zone))
    return timezone.localdate()
