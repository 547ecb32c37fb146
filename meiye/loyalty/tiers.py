"""Member tiers (普通/银卡/金卡/钻石): configuration, the checkout seams, grants by hand, the yearly review.

What a checkout asks of tiers (``sales.services`` calls these two):

- ``member_tier_info(member)`` — merged into the bill's member snapshot when the bill is priced; the
  pricing and earning steps read it from ``ctx.member_info`` (tier code and names, discounts in basis
  points by item kind or earning category, the points multiplier as a fraction, the points-offset rate,
  the points lifetime). ONE query, cached on the member instance (a checkout asks twice).
- ``tier_after_bill(actor=, member=, on=)`` — called inside the checkout's transaction after the bill's
  growth value was posted: ONE query (the ladder, her earned tier and her 12-month growth together), and
  writes only when she crosses a threshold, upgrading her at once (S-09). The new discount applies from
  the next bill: this bill's snapshot was taken when it was priced.

The rules (see ``MemberTier``): the tier a member has is max(the tier her growth earned, a tier granted by
hand while its end date lasts). The earned tier rises at once and falls only at the yearly review on the
anniversary of the day she earned it; a grant's floor ends the day after its end date, and the review of
that day brings her down to her earned tier. Every change of the tier she has is a ``TierChange`` row
(append-only) and an audit row.

Locks, in the order every writer takes them: the member row (merge, grant, ``bill_complete``), the member's
balance rows (a checkout; the review locks her growth balance), her ``MemberTier`` row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from math import gcd
from typing import Any

from django.db import transaction
from django.db.models import Q, Subquery

from meiye.audit.services import audit_record
from meiye.catalog.models import EarningCategory, ItemKind
from meiye.core.db.prepared import PreparedQuery
from meiye.core.errors import Conflict, ValidationFailed, not_found
from meiye.core.money import Money
from meiye.core.stamps import new_stamp
from meiye.ledger.models import Balance
from meiye.ledger.services import balances_touch
from meiye.loyalty.models import GrowthSource, LoyaltySettings, MemberTier, Tier, TierChange, TierChangeCause
from meiye.loyalty.selectors import (
    GROWTH_ASSET,
    MEMBER_GROWTH,
    growth_in_window,
    growth_window_bounds,
    growth_window_expression,
    local_today,
    member_growth_account,
    shift_months,
    store_zone,
    tier_for_growth,
    tier_history,
    tier_reviews_due,
    tiers_list,
)
from meiye.members.models import Member, MemberStatus
from meiye.members.selectors import member_get
from meiye.notify.events import TIER_CHANGED
from meiye.notify.services import notify_event
from meiye.org.context import Actor
from meiye.org.roles import Perm

__all__ = [
    "TIER_CHANGE_HOOKS",
    "GrowthSeen",
    "TierReviewResult",
    "member_tier_info",
    "tier_after_bill",
    "tier_change_notify",
    "tier_delete",
    "tier_export_section",
    "tier_grant",
    "tier_merge",
    "tier_review_due",
    "tier_save",
    "tier_view_known",
]

BASIS_POINTS = 10_000
MAX_MULTIPLIER_BP = 100_000  # ×10
MAX_OFFSET_RATE = 10_000
MAX_LIFETIME_MONTHS = 120
DISCOUNT_KEYS = frozenset(ItemKind.values) | frozenset(EarningCategory.values)
_CACHE = "_loyalty_tier_view"

# Called with each new ``TierChange`` inside the transaction that wrote it (e.g. a "tier change" notification
# queued with ``transaction.on_commit``). Registered by apps that may not be imported here.
TIER_CHANGE_HOOKS: list[Callable[[TierChange], None]] = []


# --- What a checkout asks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrowthSeen:
    """Her earned tier, growth balance version and own 12-month growth on ``on``, read before her bill's
    transaction locked her growth balance (``selectors.growth_seen_annotations``, on the checkout's store row).
    ``tier_after_bill`` uses them instead of reading them again when the version it locked is the one seen:
    every growth posting bumps it, and so does every other change of her earned tier or of the members merged
    into her (``_review_one``, ``tier_merge``), so nothing they describe has changed since."""

    on: date
    zone: str  # the time zone the window's bounds were taken in
    earned_id: int | None
    version: int | None
    growth: int | None  # None: not to be used (no tiers, or members merged into her)


@dataclass(frozen=True)
class _TierView:
    ladder: tuple[Tier, ...]  # lowest first
    tier: Tier | None  # the tier she has (None: the organisation has no tiers)
    seen: GrowthSeen | None = None


def tier_view_known(
    member: Member, *, version: int | None, held_tier_id: int | None, seen: GrowthSeen | None = None
) -> None:
    """Set the member's tier for a checkout that read, with its store row, the organisation's tiers version
    (``selectors.tiers_version_subquery``) and the tier she holds (``selectors.held_tier_subquery``): the ladder
    comes from this process's copy while the version is the one copied (no query; one to copy it again after
    a change), so ``member_tier_info`` and the steps after it read nothing. ``version`` None: no tiers.
    ``seen``: what the upgrade check after her bill may use instead of a query (``GrowthSeen``)."""
    if version is None:
        ladder: tuple[Tier, ...] = ()
    else:
        cached = _LADDER_CACHE.get(member.organisation_id)
        if cached is not None and cached[0] == version:
            ladder = cached[1]
        else:
            ladder = tuple(tiers_list(member.organisation_id))
            _LADDER_CACHE[member.organisation_id] = (version, ladder)
    tier = next((t for t in ladder if t.pk == held_tier_id), None)
    if tier is None and held_tier_id is not None:
        return  # a tier the copy does not know: read the ladder as usual
    setattr(member, _CACHE, _TierView(ladder=ladder, tier=tier or (ladder[0] if ladder else None), seen=seen))


def member_tier_info(member: Member) -> dict[str, Any]:
    """The member's tier and its rules, as plain JSON-able values; empty when the organisation has no tiers.

    Keys: ``tier`` (code), ``tier_name`` / ``tier_name_en``, ``tier_discounts_bp`` ({item kind or earning
    category: basis points off}), ``points_multiplier_num`` / ``_den`` (×1.2 is 6/5),
    ``points_per_yuan_offset`` and ``points_lifetime_months`` (None: the store's / organisation's own).
    """
    tier = _view(member).tier
    return tier_rules(tier) if tier is not None else {}


def tier_rules(tier: Tier) -> dict[str, Any]:
    """A tier's rules in the shape of ``member_tier_info``."""
    divisor = gcd(tier.points_multiplier_bp, BASIS_POINTS)
    return {
        "tier": tier.code,
        "tier_name": tier.name_zh,
        "tier_name_en": tier.name_en,
        # A 0 is kept: a category named with 0 is not discounted even if its kind is.
        "tier_discounts_bp": {key: int(value) for key, value in sorted((tier.discounts_bp or {}).items())},
        "points_multiplier_num": tier.points_multiplier_bp // divisor,
        "points_multiplier_den": BASIS_POINTS // divisor,
        "points_per_yuan_offset": tier.points_per_yuan_offset,
        "points_lifetime_months": tier.points_lifetime_months,
    }


def tier_after_bill(
    *, actor: Actor, member: Member, on: date, locked_version: int | None = None, added_fen: int = 0
) -> None:
    """Upgrade the member at once if her 12-month growth now reaches a tier above the one she earned (S-09).

    Runs in the checkout's transaction, which holds her growth balance row (so it is ordered with the
    review job and other checkouts of hers). No tiers: no query (when the snapshot was read on this
    instance); otherwise one query — her earned tier and growth alone when the ladder is known on the instance
    (``tier_view_known``, ``member_tier_info``), the ladder with them otherwise — and writes only on an upgrade.
    No query either when they were seen before the lock (``GrowthSeen``) and ``locked_version``, her growth
    balance's version as the bill locked it (before posting ``added_fen`` to it), is the version seen.
    """
    cached: _TierView | None = getattr(member, _CACHE, None)
    if cached is not None and not cached.ladder:
        return
    ladder: Sequence[Tier] = ()
    seen = cached.seen if cached is not None else None
    if cached is not None and seen is not None and _seen_holds(seen, cached.ladder, actor, on, locked_version):
        assert seen.growth is not None
        ladder = cached.ladder
        earned_id, growth = seen.earned_id, seen.growth + added_fen
    else:
        start, end = growth_window_bounds(on, store_zone(actor.store))
        if cached is not None:
            ladder = cached.ladder
            earned_id, growth = _EARNED_AND_GROWTH.first(member.pk, member.organisation_id, start, end) or (None, 0)
            if earned_id is not None and all(t.pk != earned_id for t in ladder):
                ladder = ()  # a tier the copy does not know: read the ladder with her growth as usual
        if not ladder:
            ladder = _LADDER_WITH_EARNED_AND_GROWTH.all(member.organisation_id, member.pk, start, end)
            if not ladder:
                return
            earned_id, growth = getattr(ladder[0], "earned_id", None), getattr(ladder[0], "growth", 0)
    growth = max(int(growth or 0), 0)
    earned = next((t for t in ladder if t.pk == earned_id), ladder[0])
    target = tier_for_growth(ladder, growth)
    if target is None or target.threshold_fen <= earned.threshold_fen:
        return
    with transaction.atomic():
        state_row = _lock_state(member, ladder, on)
        if target.threshold_fen <= _by_id(ladder)[state_row.earned_tier_id].threshold_fen:
            return
        state_row.earned_tier_id, state_row.earned_since = target.pk, on
        _settle(actor, state_row, ladder, on=on, cause=TierChangeCause.BILL, growth_fen=growth)
    _forget(member)


def _seen_holds(seen: GrowthSeen, ladder: Sequence[Tier], actor: Actor, on: date, locked_version: int | None) -> bool:
    """Whether what was seen before the lock still describes her (``GrowthSeen``): her growth balance is at the
    version seen, for the same day's window in the store's zone, and her earned tier is on the ladder."""
    return (
        seen.growth is not None
        and seen.version is not None
        and seen.version == locked_version
        and seen.on == on
        and seen.zone == store_zone(actor.store).key
        and (seen.earned_id is None or any(t.pk == seen.earned_id for t in ladder))
    )


# --- Configuration ------------------------------------------------------------------------------------------


def tier_save(
    *,
    actor: Actor,
    code: str,
    name_zh: str,
    name_en: str = "",
    threshold: Money,
    discounts_bp: Mapping[str, int] | None = None,
    points_multiplier_bp: int = BASIS_POINTS,
    points_per_yuan_offset: int | None = None,
    points_lifetime_months: int | None = None,
    perks_zh: str = "",
    perks_en: str = "",
) -> Tier:
    """Create the tier ``code`` or update it. The ladder must still start at 0 with no two equal thresholds.

    ``discounts_bp``: basis points off by item kind ("service", "product") or earning category
    ("basic_care" …, wins over the kind); Silver is ``{"service": 1000}``. ``points_multiplier_bp``: ×1.2 is
    12000. ``points_per_yuan_offset`` / ``points_lifetime_months``: None uses the store's / organisation's.
    Members keep their tier until their next bill (upgrades) or their review (downgrades).
    """
    actor.require(Perm.CATALOG_MANAGE)
    code = _check_code(code)
    name_zh = _check_text("name_zh", name_zh, 20, required=True)
    name_en = _check_text("name_en", name_en, 30)
    perks_zh = _check_text("perks_zh", perks_zh, 1000)
    perks_en = _check_text("perks_en", perks_en, 1000)
    if not isinstance(threshold, Money) or threshold.fen < 0:
        raise ValidationFailed(
            "tier.invalid_threshold",
            zh="门槛成长值：需要不小于 0 的金额。",
            en="threshold: must be an amount of at least 0.",
            field="threshold",
        )
    discounts = _check_discounts(discounts_bp or {})
    _check_int_range("points_multiplier_bp", points_multiplier_bp, 1, MAX_MULTIPLIER_BP, "积分倍数（基点）")
    if points_per_yuan_offset is not None:
        _check_int_range("points_per_yuan_offset", points_per_yuan_offset, 1, MAX_OFFSET_RATE, "每 1 元抵扣所需积分")
    if points_lifetime_months is not None:
        _check_int_range("points_lifetime_months", points_lifetime_months, 1, MAX_LIFETIME_MONTHS, "积分有效期（月）")
    with transaction.atomic():
        ladder = list(
            Tier.objects.select_for_update().filter(organisation=actor.organisation).order_by("threshold_fen")
        )
        tier = next((t for t in ladder if t.code == code), None)
        others = [t for t in ladder if t.code != code]
        _check_ladder(others, threshold.fen)
        before = _tier_detail(tier) if tier is not None else None
        if tier is None:
            tier = Tier(organisation=actor.organisation, code=code)
        tier.name_zh, tier.name_en, tier.threshold_fen = name_zh, name_en, threshold.fen
        tier.discounts_bp = discounts
        tier.points_multiplier_bp = points_multiplier_bp
        tier.points_per_yuan_offset = points_per_yuan_offset
        tier.points_lifetime_months = points_lifetime_months
        tier.perks_zh, tier.perks_en = perks_zh, perks_en
        tier.save()
        _new_tiers_version(actor.organisation.pk)
        audit_record(
            actor=actor, action="loyalty.tier_save", obj=tier, detail={"before": before, "after": _tier_detail(tier)}
        )
    return tier


def tier_delete(*, actor: Actor, tier: Tier) -> None:
    """Delete a tier no member has, had or was granted; the lowest cannot go while others remain."""
    actor.require(Perm.CATALOG_MANAGE)
    if tier.organisation_id != actor.organisation.pk:
        raise not_found("tier.not_found", "会员等级", "Tier")
    with transaction.atomic():
        ladder = list(
            Tier.objects.select_for_update().filter(organisation=actor.organisation).order_by("threshold_fen")
        )
        if not any(t.pk == tier.pk for t in ladder):
            raise not_found("tier.not_found", "会员等级", "Tier")
        if ladder[0].pk == tier.pk and len(ladder) > 1:
            raise ValidationFailed(
                "tier.lowest_required",
                zh="门槛成长值：最低等级必须从 0 开始，请先删除其他等级。",
                en="threshold: the lowest tier must start at 0; delete the other tiers first.",
                field="threshold",
            )
        used = (
            MemberTier.objects.filter(Q(tier=tier) | Q(earned_tier=tier) | Q(floor_tier=tier)).exists()
            or TierChange.objects.filter(Q(from_tier=tier) | Q(to_tier=tier)).exists()
        )
        if used:
            raise Conflict(
                "tier.in_use",
                zh=f"会员等级「{tier.name_zh}」已有会员使用或有历史记录，不能删除；可以修改它。",
                en=f"Tier {tier.name_en or tier.name_zh} is or was held by members and cannot be deleted; edit it instead.",
                field="tier",
            )
        detail = _tier_detail(tier)
        audit_record(actor=actor, action="loyalty.tier_delete", obj=tier, detail={"before": detail})
        tier.delete()
        _new_tiers_version(actor.organisation.pk)


# --- Granted by hand ------------------------------------------------------------------------------------------


def tier_grant(*, actor: Actor, member: Member, tier: Tier, until: date, reason: str) -> MemberTier:
    """Grant ``tier`` by hand as a floor up to and including ``until`` (S-09). Needs ``money.adjust`` and a
    reason; audited. She has at least that tier at once; the day after ``until`` the review brings her back
    to the tier her growth earned. A new grant replaces the previous one."""
    actor.require(Perm.MONEY_ADJUST)
    member = member_get(actor, member.pk)
    if tier.organisation_id != actor.organisation.pk:
        raise not_found("tier.not_found", "会员等级", "Tier")
    reason = _check_text("reason", reason, 200, required=True)
    today = local_today(actor.store)
    if not isinstance(until, date) or until < today:
        raise ValidationFailed(
            "tier.invalid_until",
            zh=f"截止日期：不能早于今天（{today.isoformat()}）。",
            en=f"until: must not be before today ({today.isoformat()}).",
            field="until",
        )
    with transaction.atomic():
        status = (
            Member.objects.select_for_update(no_key=True).filter(pk=member.pk).values_list("status", flat=True).first()
        )
        if status != MemberStatus.ACTIVE:
            raise Conflict(
                "member.inactive",
                zh=f"会员 {member} 不是正常状态，不能授予等级。",
                en=f"Member {member} is not active; a tier cannot be granted.",
                field="member",
            )
        ladder = tiers_list(actor.organisation)
        state = _lock_state(member, ladder, today)
        before = {"floor_tier": state.floor_tier_id, "floor_until": _iso(state.floor_until), "tier": state.tier_id}
        state.floor_tier_id, state.floor_until = tier.pk, until
        _settle(actor, state, ladder, on=today, cause=TierChangeCause.GRANT, note=reason)
        audit_record(
            actor=actor,
            action="loyalty.tier_grant",
            obj=member,
            detail={
                "tier": tier.code,
                "until": until.isoformat(),
                "reason": reason,
                "before": before,
                "now": _by_id(ladder)[state.tier_id].code,
            },
        )
    _forget(member)
    return state


# --- The yearly review ----------------------------------------------------------------------------------------


@dataclass
class TierReviewResult:
    reviewed: int = 0
    lowered: int = 0
    raised: int = 0

    @property
    def changed(self) -> int:
        return self.lowered + self.raised


def tier_review_due(
    *,
    actor: Actor,
    today: date,
    member_ids: list[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> TierReviewResult:
    """The daily job: review every member whose review day has come (``MemberTier.review_on <= today``).

    On the anniversary of the day she earned her tier, the earned tier becomes the one her 12-month growth
    reaches (it may fall: S-09, or rise); a grant whose end date has passed ends. She then has
    max(earned, a grant still running). Each member in her own transaction; the next review day is set
    in it, so running the job again the same day changes nothing. ``member_ids``: the due members if the
    caller already listed them (``selectors.tier_reviews_due``); ``progress`` is called once per member.
    """
    if not actor.is_system:
        actor.require(Perm.MONEY_ADJUST)
    organisation_id = actor.organisation.pk
    ids = member_ids if member_ids is not None else tier_reviews_due(organisation_id=organisation_id, today=today)
    result = TierReviewResult()
    ladder = tiers_list(organisation_id)
    for member_id in ids:
        outcome = _review_one(actor, organisation_id, member_id, ladder, today)
        if outcome is not None:
            result.reviewed += 1
            result.lowered += outcome < 0
            result.raised += outcome > 0
        if progress is not None:
            progress(1)
    return result


def _review_one(actor: Actor, organisation_id: int, member_id: int, ladder: Sequence[Tier], today: date) -> int | None:
    """Review one member; None if she was not due (any more), else -1 lowered, 0 kept, +1 raised."""
    by_id = _by_id(ladder)
    with transaction.atomic():
        # The checkout's order: her growth balance first (a bill in flight finishes first), then the state.
        growth_ids = list(
            Balance.objects.select_for_update()
            .filter(
                account__organisation_id=organisation_id,
                account__owner_type="member",
                account__owner_id=member_id,
                account__asset=GROWTH_ASSET,
                account__kind=MEMBER_GROWTH,
            )
            .values_list("account_id", flat=True)
        )
        state = MemberTier.objects.select_for_update().filter(member_id=member_id, review_on__lte=today).first()
        if state is None or state.organisation_id != organisation_id:
            return None
        member = Member.objects.select_related("home_store").get(pk=member_id)
        if member.status == MemberStatus.MERGED:
            state.review_on = None  # her tier lives on with the survivor (``tier_merge``)
            state.save(update_fields=["review_on", "updated_at"])
            return 0
        before = by_id[state.tier_id]
        growth = growth_in_window(member, on=today)
        cause = ""
        earned = by_id[state.earned_tier_id]
        assert state.review_on is not None
        if (
            earned.threshold_fen > ladder[0].threshold_fen
            and _anniversary_on_or_after(state.earned_since, state.review_on) <= today
        ):
            target = tier_for_growth(ladder, growth) or earned
            if target.pk != earned.pk:
                state.earned_tier_id, state.earned_since = target.pk, today
                balances_touch(growth_ids)  # a checkout that saw her earned tier before this reads it again
            cause = TierChangeCause.REVIEW
        if state.floor_until is not None and state.floor_until < today:
            state.floor_tier_id, state.floor_until = None, None
            cause = cause or TierChangeCause.FLOOR_END
        _settle(actor, state, ladder, on=today, cause=cause or TierChangeCause.REVIEW, growth_fen=growth)
        after = by_id[state.tier_id]
    _forget(member)
    return (after.threshold_fen > before.threshold_fen) - (after.threshold_fen < before.threshold_fen)


# --- Member merge, export ------------------------------------------------------------------------------------


def tier_merge(actor: Actor, survivor: Member, merged: Member) -> dict[str, Any]:
    """``members.services.MERGE_HOOKS`` entry, inside ``member_merge``'s transaction (member rows locked).

    Her growth: the merged member (and whoever was merged into her) count in the survivor's 12-month growth
    at their own dates (``GrowthSource``). Her tier: the survivor keeps the higher earned tier of the two,
    or the one their combined growth reaches, and the higher grant still running; a change is recorded.
    """
    sources = {merged.pk, *GrowthSource.objects.filter(member_id=merged.pk).values_list("source_id", flat=True)}
    sources.discard(survivor.pk)
    GrowthSource.objects.bulk_create(
        [GrowthSource(member_id=survivor.pk, source_id=source) for source in sorted(sources)], ignore_conflicts=True
    )
    # Her growth now counts theirs and her earned tier may rise: a checkout of hers that saw either before this
    # reads them again (``GrowthSeen``).
    survivor_growth = member_growth_account(survivor)
    if survivor_growth is not None:
        balances_touch([survivor_growth.pk])
    moved: dict[str, Any] = {"growth_sources": len(sources)}
    ladder = tiers_list(survivor.organisation_id)
    if not ladder:
        return moved
    by_id = _by_id(ladder)
    today = local_today(actor.store)
    states = {
        s.member_id: s
        for s in MemberTier.objects.select_for_update().filter(member_id__in=[survivor.pk, merged.pk]).order_by("pk")
    }
    theirs, ours = states.get(merged.pk), states.get(survivor.pk)
    growth = growth_in_window(survivor, on=today, zone=store_zone(actor.store))
    by_growth = tier_for_growth(ladder, growth) or ladder[0]
    if theirs is None and ours is None and by_growth.pk == ladder[0].pk:
        return moved
    state = _lock_state(survivor, ladder, today) if ours is None else ours
    earned = by_id[state.earned_tier_id]
    if theirs is not None and by_id[theirs.earned_tier_id].threshold_fen > earned.threshold_fen:
        state.earned_tier_id, state.earned_since = theirs.earned_tier_id, theirs.earned_since
        earned = by_id[theirs.earned_tier_id]
    if by_growth.threshold_fen > earned.threshold_fen:
        state.earned_tier_id, state.earned_since = by_growth.pk, today
    if theirs is not None and theirs.floor_tier_id is not None and theirs.floor_until is not None:
        theirs_floor = (by_id[theirs.floor_tier_id].threshold_fen, theirs.floor_until)
        ours_floor = (
            (by_id[state.floor_tier_id].threshold_fen, state.floor_until)
            if state.floor_tier_id is not None and state.floor_until is not None
            else None
        )
        if theirs.floor_until >= today and (ours_floor is None or theirs_floor > ours_floor):
            state.floor_tier_id, state.floor_until = theirs.floor_tier_id, theirs.floor_until
    if theirs is not None and theirs.review_on is not None:
        theirs.review_on = None  # the tombstone is never reviewed again
        theirs.save(update_fields=["review_on", "updated_at"])
    _settle(actor, state, ladder, on=today, cause=TierChangeCause.MERGE, growth_fen=growth, note=str(merged))
    _forget(survivor)
    moved["tier"] = by_id[state.tier_id].code
    return moved


def tier_export_section(member: Member) -> tuple[str, Any]:
    """``members.services.EXPORT_SECTIONS`` entry: her tier state and every tier change."""
    state = MemberTier.objects.filter(member_id=member.pk).select_related("tier", "earned_tier", "floor_tier").first()
    return (
        "tier",
        {
            "tier": state.tier.code if state is not None else None,
            "since": _iso(state.since) if state is not None else None,
            "earned_tier": state.earned_tier.code if state is not None else None,
            "earned_since": _iso(state.earned_since) if state is not None else None,
            "granted_tier": state.floor_tier.code if state is not None and state.floor_tier is not None else None,
            "granted_until": _iso(state.floor_until) if state is not None else None,
            "history": [
                {
                    "on": change.on.isoformat(),
                    "from": change.from_tier.code if change.from_tier is not None else None,
                    "to": change.to_tier.code,
                    "cause": change.cause,
                    "note": change.note,
                    "growth_fen": change.growth_fen,
                    "staff": str(change.staff) if change.staff is not None else None,
                }
                for change in reversed(tier_history(member, limit=None))
            ],
        },
    )


# --- Notification ------------------------------------------------------------------------------------------


def tier_change_notify(change: TierChange) -> None:
    """``TIER_CHANGE_HOOKS`` entry (registered in ``apps.py``): tell the member her new tier (event
    ``tier.changed``). The message is stored in the change's transaction and sent after it commits; the key
    names the change, so each change is told once."""
    notify_event(
        organisation_id=change.organisation_id,
        member=change.member,
        event=TIER_CHANGED,
        context={
            "tier": _tier_names(change.to_tier),
            "old_tier": _tier_names(change.from_tier) if change.from_tier is not None else "",
        },
        idempotency_key=f"{TIER_CHANGED}:{change.pk}",
    )


def _tier_names(tier: Tier) -> dict[str, str]:
    return {"zh-hans": tier.name_zh, "en": tier.name_en or tier.name_zh}


# --- internals ---------------------------------------------------------------------------------------------


# The ladder with the tier a member holds, compiled once per connection (read on every member checkout).
_LADDER_WITH_HELD: PreparedQuery[Tier] = PreparedQuery(
    lambda organisation_id, member_id: (
        Tier.objects.filter(organisation_id=organisation_id)
        .annotate(held_id=Subquery(MemberTier.objects.filter(member_id=member_id).values("tier_id")[:1]))
        .order_by("threshold_fen")
    ),
    [int, int],
)


# The ladder with the tier she earned and her growth in the window paid between two instants (the upgrade check
# after every member's bill): compiled once per connection, as building it costs several times running it.
_LADDER_WITH_EARNED_AND_GROWTH: PreparedQuery[Tier] = PreparedQuery(
    lambda organisation_id, member_id, start, end: (
        Tier.objects.filter(organisation_id=organisation_id)
        .annotate(
            earned_id=Subquery(MemberTier.objects.filter(member_id=member_id).values("earned_tier_id")[:1]),
            growth=growth_window_expression(member_id, organisation_id, between=(start, end)),
        )
        .order_by("threshold_fen")
    ),
    [int, int, datetime, datetime],
)


# Her earned tier and 12-month growth, for an upgrade check that knows the ladder already: one row of two numbers.
_EARNED_AND_GROWTH: PreparedQuery[Any] = PreparedQuery(
    lambda member_id, organisation_id, start, end: (
        Member.objects.filter(pk=member_id)
        .annotate(
            earned_id=Subquery(MemberTier.objects.filter(member_id=member_id).values("earned_tier_id")[:1]),
            growth=growth_window_expression(member_id, organisation_id, between=(start, end)),
        )
        .values_list("earned_id", "growth")
    ),
    [int, int, datetime, datetime],
)


def _view(member: Member) -> _TierView:
    """The ladder and the tier she has, in one query; kept on the instance until a tier service changes it."""
    cached: _TierView | None = getattr(member, _CACHE, None)
    if cached is not None:
        return cached
    ladder = tuple(_LADDER_WITH_HELD.all(member.organisation_id, member.pk))
    held_id = getattr(ladder[0], "held_id", None) if ladder else None
    tier = next((t for t in ladder if t.pk == held_id), ladder[0] if ladder else None)
    view = _TierView(ladder=ladder, tier=tier)
    setattr(member, _CACHE, view)
    return view


# (organisation id) -> (tiers version, ladder lowest first): each process's copy of the ladders checkouts price
# with (``tier_view_known``). Every change to a ladder sets a new random version in its transaction, so a copy is
# never used once the change has committed; the instances are shared and must not be modified.
_LADDER_CACHE: dict[int, tuple[int, tuple[Tier, ...]]] = {}


def _new_tiers_version(organisation_id: int) -> None:
    """A new stamp (``core.stamps``): a process's copy of the ladder is not used once this has committed."""
    row, _ = LoyaltySettings.objects.get_or_create(organisation_id=organisation_id)
    LoyaltySettings.objects.filter(pk=row.pk).update(tiers_version=new_stamp())


def _forget(member: Member) -> None:
    if hasattr(member, _CACHE):
        delattr(member, _CACHE)


def _by_id(ladder: Sequence[Tier]) -> dict[int, Tier]:
    return {tier.pk: tier for tier in ladder}


def _lock_state(member: Member, ladder: Sequence[Tier], on: date) -> MemberTier:
    """Her state row, locked; created on the lowest tier if she has none (a twin creating it at the same
    moment makes ``get_or_create`` read and lock the twin's row)."""
    if not ladder:
        raise ValidationFailed(
            "tier.none_configured",
            zh="会员等级：尚未设置任何等级。",
            en="tier: no tiers are configured.",
            field="tier",
        )
    lowest = ladder[0]
    state, _created = MemberTier.objects.select_for_update().get_or_create(
        member_id=member.pk,
        defaults={
            "organisation_id": member.organisation_id,
            "tier": lowest,
            "since": on,
            "earned_tier": lowest,
            "earned_since": on,
        },
    )
    return state


def _settle(
    actor: Actor,
    state: MemberTier,
    ladder: Sequence[Tier],
    *,
    on: date,
    cause: str,
    growth_fen: int | None = None,
    note: str = "",
) -> bool:
    """Set the tier she has to max(earned, a floor still running on ``on``) and her next review day; save.
    A change of tier writes a ``TierChange`` and an audit row. Returns whether her tier changed."""
    by_id = _by_id(ladder)
    earned = by_id[state.earned_tier_id]
    effective = earned
    if state.floor_tier_id is not None and state.floor_until is not None and state.floor_until >= on:
        floor = by_id[state.floor_tier_id]
        if floor.threshold_fen > earned.threshold_fen:
            effective = floor
    before = by_id[state.tier_id]
    changed = effective.pk != before.pk
    if changed:
        state.tier_id, state.since = effective.pk, on
    state.review_on = _next_review(state, by_id, ladder[0], after=on)
    state.save()
    if changed:
        change = TierChange.objects.create(
            organisation_id=state.organisation_id,
            member_id=state.member_id,
            from_tier=before,
            to_tier=effective,
            cause=cause,
            note=note[:200],
            growth_fen=growth_fen,
            on=on,
            staff=actor.staff,
        )
        audit_record(
            actor=actor,
            action="loyalty.tier_change",
            object_type="members.Member",
            object_id=str(state.member_id),
            detail={"from": before.code, "to": effective.code, "cause": cause, "growth_fen": growth_fen},
        )
        for hook in TIER_CHANGE_HOOKS:
            hook(change)
    return changed


def _next_review(state: MemberTier, by_id: dict[int, Tier], lowest: Tier, *, after: date) -> date | None:
    """The first day after ``after`` the review must look at her: the next anniversary of her earned tier
    (none on the lowest tier: nothing to fall from) or the day after her grant ends."""
    candidates: list[date] = []
    if by_id[state.earned_tier_id].threshold_fen > lowest.threshold_fen:
        candidates.append(_anniversary_on_or_after(state.earned_since, after + timedelta(days=1)))
    if state.floor_until is not None and state.floor_until >= after:
        candidates.append(state.floor_until + timedelta(days=1))
    return min(candidates) if candidates else None


def _anniversary_on_or_after(since: date, day: date) -> date:
    """The first anniversary of ``since`` (one year or more after it) falling on or after ``day``."""
    years = max(1, day.year - since.year - 1)
    anniversary = shift_months(since, 12 * years)
    while anniversary < day:
        years += 1
        anniversary = shift_months(since, 12 * years)
    return anniversary


def _check_ladder(others: list[Tier], threshold_fen: int) -> None:
    same = next((t for t in others if t.threshold_fen == threshold_fen), None)
    if same is not None:
        raise ValidationFailed(
            "tier.threshold_not_increasing",
            zh=f"门槛成长值：与「{same.name_zh}」相同（{Money(threshold_fen)}），各等级的门槛必须严格递增。",
            en=f"threshold: the same as {same.name_en or same.name_zh}'s ({Money(threshold_fen)}); "
            "tier thresholds must strictly increase.",
            field="threshold",
        )
    if min([t.threshold_fen for t in others] + [threshold_fen]) != 0:
        raise ValidationFailed(
            "tier.lowest_not_zero",
            zh="门槛成长值：最低等级必须从 0 开始。",
            en="threshold: the lowest tier must start at 0.",
            field="threshold",
        )


def _check_discounts(discounts: Mapping[str, int]) -> dict[str, int]:
    checked: dict[str, int] = {}
    for key, value in discounts.items():
        field = f"discounts_bp.{key}"
        if key not in DISCOUNT_KEYS:
            raise ValidationFailed(
                "tier.invalid_discount_category",
                zh=f"折扣：{key!r} 不是项目类型（service/product）或积分类别。",
                en=f"{field}: {key!r} is neither an item kind (service/product) nor an earning category.",
                field=field,
            )
        _check_int_range(field, value, 0, BASIS_POINTS, f"折扣 {key}（基点）")
        checked[key] = value
    return dict(sorted(checked.items()))


def _check_int_range(field: str, value: Any, low: int, high: int, label_zh: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(
            "tier.invalid_number",
            zh=f"{label_zh}：需要 {low} 到 {high} 之间的整数。",
            en=f"{field}: must be a whole number from {low} to {high}.",
            field=field,  # a discount names its own key: discounts_bp.service
        )


def _check_code(code: str) -> str:
    code = (code or "").strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", code):
        raise ValidationFailed(
            "tier.invalid_code",
            zh="编码：需要 1 到 32 个小写字母、数字、- 或 _。",
            en="code: must be 1 to 32 lowercase letters, digits, - or _.",
            field="code",
        )
    return code


_LABELS_ZH = {
    "name_zh": "名称",
    "name_en": "英文名称",
    "perks_zh": "权益",
    "perks_en": "英文权益",
    "reason": "原因",
}


def _check_text(field: str, value: str, max_length: int, *, required: bool = False) -> str:
    value = (value or "").strip()
    if (required and not value) or len(value) > max_length:
        need = f"1 到 {max_length}" if required else f"最多 {max_length}"
        need_en = f"1 to {max_length}" if required else f"at most {max_length}"
        raise ValidationFailed(
            "input.invalid",
            zh=f"{_LABELS_ZH.get(field, field)}：需要 {need} 个字符。",
            en=f"{field}: must be {need_en} characters.",
            field=field,
        )
    return value


def _tier_detail(tier: Tier) -> dict[str, Any]:
    return {
        "code": tier.code,
        "name_zh": tier.name_zh,
        "name_en": tier.name_en,
        "threshold_fen": tier.threshold_fen,
        "discounts_bp": dict(tier.discounts_bp or {}),
        "points_multiplier_bp": tier.points_multiplier_bp,
        "points_per_yuan_offset": tier.points_per_yuan_offset,
        "points_lifetime_months": tier.points_lifetime_months,
    }


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None
