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
rows of that operation's journal. Each lot also keeps its own account: remaining = amount − uses
(``PointsLotUse``: spends, take-backs, expiries, settlements, and the debt an earning repaid) + returns
(``PointsLotReturn``: points of a spend given back, in full by ``points_restore`` or in part by
``points_restore_part``). ``verify_points_lots()`` checks both for a whole organisation.

Permissions: these services are building blocks of checkout, refunds and jobs. The member must belong to
the actor's organisation; writing points needs the checkout or the refund permission (a system actor,
i.e. a scheduled job, may always). Finding the member (``member_get``) is the caller's job. The exception
is ``points_adjust`` (points by hand): it needs ``money.adjust`` and a reason, finds the member itself and
is audited.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import BigIntegerField, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from meiye.audit.services import audit_record
from meiye.catalog.models import EarningCategory
from meiye.catalog.services import catalog_changed
from meiye.core.db.fastwrite import insert_rows
from meiye.core.errors import ApplicationError, Conflict, ValidationFailed, forbidden, not_found
from meiye.core.idempotency import validate_key
from meiye.ledger.models import Account, Balance, Entry, Journal
from meiye.ledger.selectors import journal_by_idempotency_key
from meiye.ledger.services import (
    AccountKey,
    BulkLine,
    Leg,
    LockedAccounts,
    Posting,
    account_get_or_create,
    accounts_lock,
    accounts_lock_owners,
    journal_post,
    journal_reverse,
    journals_post_bulk,
    rows_source,
    sql_in_list,
)
from meiye.loyalty.models import EarningRate, LoyaltySettings, PointsLot, PointsLotReturn, PointsLotUse
from meiye.loyalty.selectors import (
    GROWTH_ASSET,
    GROWTH_SOURCE,
    MEMBER_GROWTH,
    MEMBER_POINTS,
    POINTS_ASSET,
    POINTS_EXPIRED,
    POINTS_ISSUED,
    POINTS_REDEEMED,
    clearing_date_before,
    expiry_settings,
    growth_balance,
    points_balance,
    points_expiry_members,
    points_expiry_reminders_due,
    points_lifetime_months,
)
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_get, member_survivor
from meiye.notify.events import POINTS_EXPIRING
from meiye.notify.models import Message
from meiye.notify.services import notify_event
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
    "growth_version_locked",
    "loyalty_settings_set",
    "points_account_keys",
    "points_adjust",
    "points_balance",
    "points_earn",
    "points_earn_prepare",
    "points_expire_due",
    "points_expiry_remind",
    "points_export_section",
    "points_for_amount",
    "points_merge",
    "points_restore",
    "points_restore_part",
    "points_spend",
    "points_spend_prepare",
    "points_take_back",
    "verify_points_lots",
]

MAX_POINTS = 10**12
_T = TypeVar("_T")
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
        catalog_changed(actor.organisation.pk)  # first (see there): the checkout's copy of the items carries rates
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
    _check_lifetime(points_lifetime_months)
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


def loyalty_expiry_settings_set(
    *,
    actor: Actor,
    points_lifetime_months: int,
    expiry_reminder_days: int,
    clearing_month: int | None,
    clearing_day: int | None,
) -> LoyaltySettings:
    """How long points last, how many days before expiry members are told (0: never), and an optional yearly
    clearing date (both None: none; 29 February clears on the 28th in other years). Audited."""
    actor.require(Perm.CATALOG_MANAGE)
    _check_lifetime(points_lifetime_months)
    if (
        isinstance(expiry_reminder_days, bool)
        or not isinstance(expiry_reminder_days, int)
        or not 0 <= expiry_reminder_days <= 365
    ):
        raise ValidationFailed(
            "loyalty.invalid_reminder_days",
            zh="到期提醒提前天数：需要 0 到 365（0 为不提醒）。",
            en="expiry_reminder_days: 0 to 365 (0: no reminder).",
            field="expiry_reminder_days",
        )
    if (clearing_month is None) != (clearing_day is None):
        raise ValidationFailed(
            "loyalty.invalid_clearing_date",
            zh="年度清零日期：月和日需同时填写，或同时留空。",
            en="clearing_day: give both the month and the day, or neither.",
            field="clearing_day" if clearing_day is None else "clearing_month",
        )
    if clearing_month is not None and clearing_day is not None:
        try:
            date(2024, clearing_month, clearing_day)  # a leap year, so 29 February is allowed
        except (TypeError, ValueError):
            raise ValidationFailed(
                "loyalty.invalid_clearing_date",
                zh=f"年度清零日期：{clearing_month} 月 {clearing_day} 日不是有效日期。",
                en=f"clearing_day: month {clearing_month}, day {clearing_day} is not a date.",
                field="clearing_day",
            ) from None
    with transaction.atomic():
        settings, _ = LoyaltySettings.objects.select_for_update().get_or_create(organisation=actor.organisation)
        fields = ["points_lifetime_months", "expiry_reminder_days", "clearing_month", "clearing_day"]
        before = {name: getattr(settings, name) for name in fields}
        settings.points_lifetime_months = points_lifetime_months
        settings.expiry_reminder_days = expiry_reminder_days
        settings.clearing_month, settings.clearing_day = clearing_month, clearing_day
        settings.save(update_fields=fields)
        audit_record(
            actor=actor,
            action="loyalty.settings_set",
            obj=settings,
            detail={name: [before[name], getattr(settings, name)] for name in fields},
        )
    return settings


def _check_lifetime(points_lifetime_months: int) -> None:
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
        locked, account, issued, first = _lock_member_points(member, POINTS_ISSUED, key)
        balance = locked.balances[account.pk]
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
        return _create_lot(
            member=member,
            journal=journal,
            source_code=source_code,
            earned_on=earned_on,
            expires_on=add_months(earned_on, lifetime_months or points_lifetime_months(member.organisation_id)),
            points=points,
            debt=debt,
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
        locked, account, redeemed, first = _lock_member_points(member, POINTS_REDEEMED, key)
        balance = locked.balances[account.pk]
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

    Posts the reversal of ``spend_journal`` and puts each ``PointsLotUse`` amount back on its lot (one
    ``PointsLotReturn`` row each). A lot that has expired in the meantime gets its points back too, and the
    next expiry job expires them again (simple, and the member loses nothing she would not have lost without
    the spend). If the member owes points at that moment, the restored points repay the debt first
    (``_settle``).

    If part of the spend was already given back (``points_restore_part``), only what is left comes back,
    as a ``points.restore`` journal (not a reversal) spread like a partial return; nothing left is
    ``points.already_restored``.
    """
    _check_journal_org(actor, spend_journal)
    _require_points_permission(actor)
    key = validate_key(idempotency_key)
    entries, member_entry = _spend_entries(spend_journal)
    original_account = member_entry.account
    holder = member_survivor(Member.objects.get(pk=original_account.owner_id))
    with transaction.atomic():
        account = _member_points_account(holder)
        _lock_balances([*(e.account for e in entries), account])
        first = journal_by_idempotency_key(organisation_id=spend_journal.organisation_id, key=key)
        if first is not None and first.reversal_of_id != spend_journal.pk:
            returned_by_first = _returned(spend_journal, journal=first)
            if returned_by_first:  # the replay of a "what is left" restore
                return _post_restore(actor, spend_journal, entries, returned_by_first, key)
        reversed_in_full = Journal.objects.filter(reversal_of=spend_journal).exists()
        if first is None and not reversed_in_full and _returned(spend_journal):
            left = -member_entry.amount - _returned(spend_journal)
            if left <= 0:
                raise _already_restored(spend_journal)
            journal = _post_restore(actor, spend_journal, entries, left, key)
            _return_to_lots(actor, spend_journal, journal, left, original_account, account, holder)
            return journal
        reversal = journal_reverse(journal=spend_journal, staff_id=_staff_id(actor), idempotency_key=key)
        if first is not None:
            return reversal
        _forward_to_survivor(actor, original_account, account, -member_entry.amount, reversal)
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
        PointsLotReturn.objects.bulk_create(
            [
                PointsLotReturn(lot_id=use.lot_id, journal=reversal, spend_journal=spend_journal, amount=use.amount)
                for use in uses
            ]
        )
        _settle(member_id=holder.pk, account=account, journal=reversal)
        return reversal


def points_restore_part(*, actor: Actor, spend_journal: Journal, points: int, idempotency_key: str) -> Journal:
    """Give back part of a spend (a partial refund of a bill paid partly with points) to the lots it came from.

    At most what was spent less what was already given back (``points.restore_too_much``); a spend given
    back in full is ``points.already_restored``. Posts ``points.restore`` (points_redeemed −p, member +p)
    with the spend's reference, then spreads p over the spend's ``PointsLotUse`` rows less earlier returns,
    the lot expiring LAST first (the member gets her longest-lived points back first), each lot keeping its
    own expiry; one ``PointsLotReturn`` row per lot. A member in debt repays it first (``_settle``); a
    member merged since the spend gets the points on her survivor's account. A replay (same key) returns
    the first journal; the same key for another amount or spend is ``ledger.idempotency_conflict``.
    """
    _check_journal_org(actor, spend_journal)
    _require_points_permission(actor)
    _check_int("points", points)
    if points <= 0:
        raise ValidationFailed(
            "points.invalid_amount", zh="积分数量：必须大于 0。", en="points: must be more than 0.", field="points"
        )
    _check_points(points)
    key = validate_key(idempotency_key)
    entries, member_entry = _spend_entries(spend_journal)
    original_account = member_entry.account
    original = Member.objects.get(pk=original_account.owner_id)
    holder = member_survivor(original)
    redeemed = next(e.account for e in entries if e.account.pk != original_account.pk)
    with transaction.atomic():
        locked = accounts_lock(
            organisation_id=spend_journal.organisation_id,
            keys=[
                _points_key(original),
                _points_key(holder),
                _org_key(spend_journal.organisation_id, redeemed.kind, redeemed.asset),
            ],
        )
        account = locked.get(_points_key(holder))
        first = journal_by_idempotency_key(organisation_id=spend_journal.organisation_id, key=key)
        if first is None:
            spent = -member_entry.amount
            returned = _returned(spend_journal)
            if returned >= spent or Journal.objects.filter(reversal_of=spend_journal).exists():
                raise _already_restored(spend_journal)
            if points > spent - returned:
                raise ValidationFailed(
                    "points.restore_too_much",
                    zh=f"积分数量：最多可退回 {spent - returned} 积分（已用 {spent}，已退回 {returned}）。",
                    en=f"points: at most {spent - returned} can be given back "
                    f"({spent} were spent, {returned} already given back).",
                    field="points",
                    extra={"spent": spent, "returned": returned, "points": points},
                )
        journal = _post_restore(actor, spend_journal, entries, points, key)
        if first is None:
            _return_to_lots(actor, spend_journal, journal, points, original_account, account, holder)
        return journal


def points_adjust(*, actor: Actor, member: Member, points: int, reason: str, idempotency_key: str) -> Journal:
    """Adjust a member's points by hand (a correction, a goodwill gesture): needs ``money.adjust`` and a reason;
    audited (``loyalty.points_adjust`` with the reason). One ``points.adjust`` journal against points_issued:
    p > 0 credits a lot through the normal earning path (source ``adjust``, the organisation's lifetime; a
    debt is repaid first); p < 0 takes the points from the lots expiring first, like a spend, and is refused
    with ``points.insufficient`` below zero. A replay (same key) returns the first journal and audits nothing.
    """
    actor.require(Perm.MONEY_ADJUST)
    member = member_get(actor, member.pk)  # her organisation and a store the actor may see, else 404
    _check_int("points", points)
    if points == 0:
        raise ValidationFailed(
            "points.invalid_amount",
            zh="积分数量：不能为 0（正数增加，负数扣减）。",
            en="points: must not be 0 (positive adds, negative deducts).",
            field="points",
        )
    _check_points(abs(points))
    reason = (reason or "").strip()
    if not reason or len(reason) > 200:
        raise ValidationFailed(
            "points.reason_required",
            zh="调整原因：必须填写（1 到 200 个字符）。",
            en="reason: a reason is required (1 to 200 characters).",
            field="reason",
        )
    key = validate_key(idempotency_key)
    member = member_survivor(member)
    with transaction.atomic():
        locked, account, issued, first = _lock_member_points(member, POINTS_ISSUED, key)
        balance = locked.balance(account)
        if first is None and points < 0 and balance < -points:
            raise ApplicationError(
                "points.insufficient",
                zh=f"积分不足：现有 {max(balance, 0)} 积分，不能扣减 {-points} 积分。",
                en=f"Not enough points: the member has {max(balance, 0)}; {-points} cannot be deducted.",
                field="points",
                extra={"balance": balance, "points": points},
            )
        journal = journal_post(
            organisation_id=member.organisation_id,
            code="points.adjust",
            entries=[Leg(issued, -points), Leg(account, points)],
            reference_type="members.Member",
            reference_id=str(member.pk),
            staff_id=_staff_id(actor),
            store_id=_store_id(actor),
            idempotency_key=key,
            memo=reason[:255],
        )
        if first is not None:
            return journal
        if points > 0:
            earned_on = _today(actor)
            _create_lot(
                member=member,
                journal=journal,
                source_code="adjust",
                earned_on=earned_on,
                expires_on=add_months(earned_on, points_lifetime_months(member.organisation_id)),
                points=points,
                debt=max(0, -balance),
            )
        else:
            _take_from_lots(member_id=member.pk, points=-points, journal=journal)
        audit_record(
            actor=actor,
            action="loyalty.points_adjust",
            obj=member,
            detail={"points": points, "reason": reason, "journal": journal.pk, "balance_before": balance},
        )
        return journal


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


def points_take_back_part(
    *,
    actor: Actor,
    member: Member,
    points: int,
    reference_type: str,
    reference_id: str,
    idempotency_key: str,
    memo: str = "",
) -> Journal | None:
    """Take back part of what an earning gave, when part of what earned it is refunded outside a bill refund
    (a package refunded by its own formula): one ``points.take_back`` journal, member points −p,
    organisation ``points_issued`` +p. The points come off the lots expiring first; what she already spent
    stays as debt, which later earnings repay first (S-22). 0 writes nothing; a replay returns the first."""
    _require_points_permission(actor)
    _check_int("points", points)
    if points < 0:
        raise ValueError(f"points to take back must not be negative, got {points}")
    if points == 0:
        return None
    key = validate_key(idempotency_key)
    holder = member_survivor(member)
    with transaction.atomic():
        _locked, account, issued, first = _lock_member_points(holder, POINTS_ISSUED, key)
        journal = journal_post(
            organisation_id=holder.organisation_id,
            code="points.take_back",
            entries=[Leg(account, -points), Leg(issued, points)],
            reference_type=reference_type,
            reference_id=reference_id,
            staff_id=_staff_id(actor),
            store_id=_store_id(actor),
            idempotency_key=key,
            memo=memo[:255],
        )
        if first is None:
            _settle(member_id=holder.pk, account=account, journal=journal)
        return journal


EXPIRY_BATCH = 2_000


def points_expire_due(
    *,
    actor: Actor,
    today: date,
    member_ids: Sequence[int] | None = None,
    batch_size: int = EXPIRY_BATCH,
    progress: Callable[[int], None] | None = None,
) -> int:
    """The nightly job: expire every open lot of the organisation that is due on ``today`` — past its
    ``expires_on`` (S-08: the job of 2026-09-02 expires a lot valid until 2026-09-01), or earned before the
    last yearly clearing date when one is set. Returns the number of points expired.

    Set-based, in batches of ``batch_size`` members, one transaction each: lock the members' points balance
    rows (and the organisation's ``points_expired``) in primary-key order, sum their due lots in one query,
    post one ``points.expire`` journal per member (member −p, points_expired +p: the breakage) by bulk SQL
    (``ledger.services.journals_post_bulk``), write the ``PointsLotUse`` rows with one INSERT … SELECT and
    zero the lots with one UPDATE. A member's journal key is ``points.expire:<member>:<today>``: a member expired today is left out
    of a second run the same day (so it expires nothing more), and a run that stopped half-way resumes with
    the batches it had not committed. ``member_ids`` (from ``points_expiry_members``) only saves the command
    its count; the lots are selected again under the locks. ``progress`` is told each batch's size.

    Lots only ever hold points of a member whose balance is positive (see the lots invariant), so a member
    in debt has nothing to expire; a merged member's lots moved to the survivor (``points_merge``), so they
    expire on the survivor's account.
    """
    if not actor.is_system:
        actor.require(Perm.MONEY_ADJUST)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    organisation_id = actor.organisation.pk
    cleared_before = clearing_date_before(expiry_settings(organisation_id), today)
    ids = points_expiry_members(organisation_id=organisation_id, today=today) if member_ids is None else member_ids
    ids = sorted(set(ids))
    expired = 0
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        expired += _expire_batch(actor, organisation_id, today, cleared_before, batch)
        if progress is not None:
            progress(len(batch))
    return expired


def _expire_batch(
    actor: Actor, organisation_id: int, today: date, cleared_before: date | None, member_ids: list[int]
) -> int:
    """One batch of ``points_expire_due``, in one transaction."""
    keys = {member_id: f"points.expire:{member_id}:{today.isoformat()}" for member_id in member_ids}
    expired_key = _org_key(organisation_id, POINTS_EXPIRED, POINTS_ASSET)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Do not wait for the WAL flush at each batch's COMMIT: a crash loses at most the last batches
            # committed, and the next run (idempotent, resumable) expires them again. This transaction only.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        locked = _lock_points_of(organisation_id, member_ids, extra=[expired_key])
        key_in, key_params = sql_in_list("idempotency_key", list(keys.values()), "text")
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT idempotency_key FROM {connection.ops.quote_name(Journal._meta.db_table)} "  # noqa: S608
                f"WHERE organisation_id = %s AND {key_in}",
                [organisation_id, *key_params],
            )
            done = {key for (key,) in cursor.fetchall()}
        todo = [member_id for member_id in member_ids if keys[member_id] not in done]
        if not todo:
            return 0
        where, params = _due_lots_sql(organisation_id, todo, today, cleared_before)
        lot_table = connection.ops.quote_name(PointsLot._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT member_id, SUM(remaining) FROM {lot_table} WHERE {where} GROUP BY member_id",  # noqa: S608
                params,
            )
            due = {
                member_id: int(points)
                for member_id, points in cursor.fetchall()
                if ("member", member_id, POINTS_ASSET, MEMBER_POINTS) in locked.accounts
            }
        if not due:
            return 0
        expired_account = locked.get(expired_key)
        lines = []
        for member_id in sorted(due):
            account = locked.get(AccountKey("member", member_id, POINTS_ASSET, MEMBER_POINTS, may_go_negative=True))
            if locked.balance(account) < due[member_id]:
                raise ApplicationError(
                    "points.lots_out_of_step",
                    zh=f"会员 #{member_id} 的积分批次与余额不一致，请联系管理员核对。",
                    en=f"Member #{member_id}'s points lots do not match her balance; please report it.",
                    extra={"member_id": member_id, "due": due[member_id], "balance": locked.balance(account)},
                )
            lines.append(BulkLine(account, -due[member_id], str(member_id), keys[member_id]))
        # The keys were looked up above under the members' locks (a concurrent run waits on them), so none
        # of them can be in use; the unique index still refuses a duplicate. One journal per member, written
        # by bulk SQL (the same rows ``journals_post`` would write, see ``ledger.services.journals_post_bulk``).
        journal_ids = journals_post_bulk(
            organisation_id=organisation_id,
            code="points.expire",
            counter=expired_account,
            lines=lines,
            locked=locked,
            reference_type="members.Member",
            staff_id=_staff_id(actor),
            memo=f"expired before {today.isoformat()}",
            keys_claimed=True,
        )
        posted = sorted(due)
        qn = connection.ops.quote_name
        use_table = qn(PointsLotUse._meta.db_table)
        # v drives the join (SQLite: CROSS JOIN fixes the loop order; otherwise it loops over the lots and
        # scans v for each), and the lots are found through their member index.
        where, params = _due_lots_sql(organisation_id, None, today, cleared_before, alias="l")
        source, source_params = rows_source(
            "v", [("member_id", "bigint"), ("journal_id", "bigint")], list(zip(posted, journal_ids, strict=True))
        )
        with connection.cursor() as cursor:
            # Each lot's use names its member's journal of today: (member, journal) pairs joined to the lots.
            cursor.execute(
                f"WITH {source} "  # noqa: S608
                f"INSERT INTO {use_table} (lot_id, journal_id, amount, created_at) "
                f"SELECT l.id, v.journal_id, l.remaining, %s FROM v CROSS JOIN {lot_table} l "
                f"WHERE l.member_id = v.member_id AND {where}",
                [*source_params, connection.ops.adapt_datetimefield_value(timezone.now()), *params],
            )
            where, params = _due_lots_sql(organisation_id, posted, today, cleared_before)
            cursor.execute(f"UPDATE {lot_table} SET remaining = 0 WHERE {where}", params)  # noqa: S608
        return sum(due.values())


def _due_lots_sql(
    organisation_id: int, member_ids: Sequence[int] | None, today: date, cleared_before: date | None, alias: str = ""
) -> tuple[str, list[Any]]:
    """The WHERE of the members' lots due on ``today`` (``selectors.points_lots_due_q`` in SQL); with
    ``member_ids=None`` the caller restricts the members itself (a join)."""
    col = f"{alias}." if alias else ""
    ops = connection.ops
    members, member_params = (
        sql_in_list(f"{col}member_id", list(member_ids), "bigint") if member_ids is not None else ("1 = 1", [])
    )
    due = f"{col}expires_on < %s"
    params: list[Any] = [organisation_id, *member_params, ops.adapt_datefield_value(today)]
    if cleared_before is not None:
        due = f"({due} OR {col}earned_on < %s)"
        params.append(ops.adapt_datefield_value(cleared_before))
    return (f"{col}organisation_id = %s AND {members} AND {col}remaining > 0 AND {due}", params)


def _lock_points_of(organisation_id: int, member_ids: Sequence[int], *, extra: Sequence[AccountKey]) -> LockedAccounts:
    """Lock the members' points balance rows and the ``extra`` accounts' in primary-key order (the ledger's
    order), in one ``SELECT … FOR UPDATE`` (``ledger.services.accounts_lock_owners``), for the bulk posting.
    The members' accounts exist (a lot is created with its earning journal on her account); one that did not
    would only be left out of the batch (``_expire_batch`` finds no account for her and skips her).
    """
    return accounts_lock_owners(
        organisation_id=organisation_id,
        owner_type="member",
        owner_ids=member_ids,
        asset=POINTS_ASSET,
        kind=MEMBER_POINTS,
        extra=extra,
    )


def _chunks(items: list[_T], size: int) -> Iterable[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def points_expiry_remind(
    *,
    actor: Actor,
    today: date,
    due: Sequence[tuple[int, date, int]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """The daily reminder (S-08): tell every member with points expiring within the organisation's
    ``expiry_reminder_days`` (default 31; 0: no reminder) how many expire on which day — by the lot's own
    expiry or the next clearing date. One ``points.expiring`` message per member and expiry date (key
    ``points.expiring:<member>:<date>``): a later run, the same day or the next, sends nothing more for
    that date. The selection is one grouped query (``points_expiry_reminders_due``); members already told
    are skipped with one look-up per batch. Returns the number of members told now.
    """
    if not actor.is_system:
        actor.require(Perm.MONEY_ADJUST)
    organisation_id = actor.organisation.pk
    rows = list(due) if due is not None else points_expiry_reminders_due(organisation_id=organisation_id, today=today)
    told = 0
    for chunk in _chunks(rows, 1_000):
        keys = {(m, on): f"points.expiring:{m}:{on.isoformat()}" for m, on, _ in chunk}
        sent = set(
            Message.objects.filter(organisation_id=organisation_id, idempotency_key__in=keys.values()).values_list(
                "idempotency_key", flat=True
            )
        )
        members = Member.objects.in_bulk([m for m, on, _ in chunk if keys[(m, on)] not in sent])
        for member_id, on, points in chunk:
            member = members.get(member_id)
            if member is None or member.status == MemberStatus.MERGED:
                continue
            notify_event(
                actor=actor,
                member=member,
                event=POINTS_EXPIRING,
                context={"points": points, "date": on},
                idempotency_key=keys[(member_id, on)],
            )
            told += 1
        if progress is not None:
            progress(len(chunk))
    return told


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


def growth_version_locked(locked: LockedAccounts, member: Member) -> int:
    """The version of her growth balance as ``accounts_lock`` returned it (keys from ``growth_account_keys``);
    read it before posting, which bumps it (``tiers.tier_after_bill``'s ``locked_version``)."""
    return locked.balances[locked.get(_growth_key(member)).pk].version


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
        """After the journal is written: the lot of these points, less the debt they repay (``points_earn``). In a
        pipelined block (the checkout's) the lot's key is set when the block settles."""
        return _create_lot(
            member=self.member,
            journal=journal,
            source_code=self.source_code,
            earned_on=self.earned_on,
            expires_on=self.expires_on,
            points=self.points,
            debt=self.debt,
            keys_later=True,
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
    """Members whose open lots do not add up to max(points balance, 0), and lots whose remaining is not
    amount − uses + returns; an empty list means all agree."""
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

    # Each lot: remaining = amount − uses + returns (a debt an earning repaid is a use of its own journal).
    # Computed in the database; only the lots out of step come back.
    def total_of(model: type[PointsLotUse] | type[PointsLotReturn]) -> Coalesce:
        rows = model.objects.filter(lot_id=OuterRef("pk")).order_by().values("lot_id").annotate(total=Sum("amount"))
        return Coalesce(Subquery(rows.values("total")[:1]), Value(0), output_field=BigIntegerField())

    out_of_step = (
        lots.annotate(used=total_of(PointsLotUse), given_back=total_of(PointsLotReturn))
        .exclude(remaining=F("amount") - F("used") + F("given_back"))
        .order_by("pk")
        .values_list("pk", "amount", "remaining", "used", "given_back")
    )
    for lot_id, amount, remaining, used, given_back in out_of_step:
        problems.append(
            f"lot {lot_id}: remaining {remaining} but amount {amount} − uses {used} + returns {given_back}"
            f" = {amount - used + given_back}"
        )
    return problems


# --- internals ---------------------------------------------------------------------------------------------


def _lock_member_points(
    member: Member, org_kind: str, key: str
) -> tuple[LockedAccounts, Account, Account, Journal | None]:
    """The opening of a points writer: lock the member's points balance and the organisation's ``org_kind``
    account (``points_issued`` or ``points_redeemed``) in one statement, in primary-key order, then look up
    the journal already posted under ``key`` (a replay). Runs inside the writer's transaction."""
    keys = points_account_keys(member=member, earn=org_kind == POINTS_ISSUED, spend=org_kind == POINTS_REDEEMED)
    locked = accounts_lock(organisation_id=member.organisation_id, keys=keys)
    account = locked.get(_points_key(member))
    org_account = locked.get(_org_key(member.organisation_id, org_kind, POINTS_ASSET))
    first = journal_by_idempotency_key(organisation_id=member.organisation_id, key=key)
    return locked, account, org_account, first


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


def _create_lot(
    *,
    member: Member,
    journal: Journal,
    source_code: str,
    earned_on: date,
    expires_on: date,
    points: int,
    debt: int,
    keys_later: bool = False,
) -> PointsLot:
    """The lot of an earning. The part that repays a debt is a ``PointsLotUse`` of the earning journal itself,
    so every lot keeps remaining = amount − uses + returns. ``keys_later``: in a pipelined block, the lot's
    key is set when the block settles (``fastwrite.insert_rows``), unless a use of it needs the key now."""
    repaid = min(points, debt)
    lot = PointsLot(
        organisation_id=member.organisation_id,
        member=member,
        journal=journal,
        source_code=source_code,
        earned_on=earned_on,
        expires_on=expires_on,
        amount=points,
        remaining=points - repaid,
    )
    insert_rows([lot], keys_later=keys_later and not repaid)
    if repaid:
        PointsLotUse.objects.create(lot=lot, journal=journal, amount=repaid)
    return lot


def _spend_entries(spend_journal: Journal) -> tuple[list[Entry], Entry]:
    """The entries of a points spend (member −p, points_redeemed +p) and its member entry; else refused."""
    entries = list(spend_journal.entries.select_related("account").order_by("pk"))
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
    return entries, member_entries[0]


def _returned(spend_journal: Journal, *, journal: Journal | None = None) -> int:
    """Points of ``spend_journal`` already given back to lots (by ``journal`` only, when given)."""
    returns = PointsLotReturn.objects.filter(spend_journal=spend_journal)
    if journal is not None:
        returns = returns.filter(journal=journal)
    return returns.aggregate(total=Sum("amount"))["total"] or 0


def _already_restored(spend_journal: Journal) -> Conflict:
    return Conflict(
        "points.already_restored",
        zh=f"凭证 #{spend_journal.pk} 使用的积分已全部退回。",
        en=f"The points of journal #{spend_journal.pk} were already given back in full.",
    )


def _post_restore(actor: Actor, spend_journal: Journal, entries: list[Entry], points: int, key: str) -> Journal:
    """The ``points.restore`` journal: the spend's own accounts, points_redeemed −p, member +p (a replay
    returns the first journal; another amount under the same key is a conflict)."""
    member_account = next(e.account for e in entries if _is_member_points(e.account))
    redeemed = next(e.account for e in entries if e.account.pk != member_account.pk)
    return journal_post(
        organisation_id=spend_journal.organisation_id,
        code="points.restore",
        entries=[Leg(redeemed, -points), Leg(member_account, points)],
        reference_type=spend_journal.reference_type,
        reference_id=spend_journal.reference_id,
        staff_id=_staff_id(actor),
        store_id=_store_id(actor),
        idempotency_key=key,
        memo=f"part of journal #{spend_journal.pk}",
    )


def _return_to_lots(
    actor: Actor,
    spend_journal: Journal,
    journal: Journal,
    points: int,
    original_account: Account,
    account: Account,
    holder: Member,
) -> None:
    """Spread ``points`` over what the spend took from each lot less earlier returns, the lot expiring last
    first; forward to a merge survivor; settle a debt. Runs under the balance locks of the restore."""
    _forward_to_survivor(actor, original_account, account, points, journal)
    open_by_lot: dict[int, int] = {}
    for lot_id, amount in PointsLotUse.objects.filter(journal=spend_journal).values_list("lot_id", "amount"):
        open_by_lot[lot_id] = open_by_lot.get(lot_id, 0) + amount
    for lot_id, amount in PointsLotReturn.objects.filter(spend_journal=spend_journal).values_list("lot_id", "amount"):
        open_by_lot[lot_id] = open_by_lot.get(lot_id, 0) - amount
    lots = list(
        PointsLot.objects.select_for_update()
        .filter(pk__in=[lot_id for lot_id, amount in open_by_lot.items() if amount > 0])
        .order_by("expires_on", "pk")
    )
    left = points
    returns: list[PointsLotReturn] = []
    for lot in reversed(lots):  # the lot expiring last first
        given = min(open_by_lot[lot.pk], left)
        lot.remaining += given
        lot.save(update_fields=["remaining"])
        returns.append(PointsLotReturn(lot=lot, journal=journal, spend_journal=spend_journal, amount=given))
        left -= given
        if not left:
            break
    if left:
        raise ApplicationError(
            "points.lots_out_of_step",
            zh=f"凭证 #{spend_journal.pk} 的积分批次记录与退回数量不一致（缺 {left} 积分），请联系管理员核对。",
            en=f"The lot records of journal #{spend_journal.pk} do not cover the return ({left} points short); "
            "please report it.",
            extra={"journal_id": spend_journal.pk, "short": left},
        )
    PointsLotReturn.objects.bulk_create(returns)
    _settle(member_id=holder.pk, account=account, journal=journal)


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
