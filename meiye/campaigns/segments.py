"""Segment criteria: validation and the one queryset of the members they select.

Criteria are a JSON object; every key is optional and all given keys must hold (AND):

- ``tiers``: tier codes (a member with no tier row is on the lowest tier);
- ``birthday_month``: 1–12;
- ``dormant_days``: no completed bill in the last N days (never visited counts as dormant);
- ``visited_within_days``: at least one completed bill in the last N days;
- ``visited_before_days``: visited, but the last completed bill is more than N days old;
- ``visits_min``: ``{"days": N, "count": k}``: at least k completed bills in the last N days;
- ``spend_min``: ``{"days": N, "fen": X}``: completed bills of the last N days, payable minus what was
  refunded on them, at least X fen;
- ``tags``: tag names (any of them); ``store_ids``: home stores (any of them);
- ``points_min`` / ``points_max``: points balance bounds (inclusive);
- ``coupon_template_id``: holds an active, unexpired coupon of that template.

"In the last N days" is the moment ``now`` minus N × 24 hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import BigIntegerField, Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from meiye.core.errors import ValidationFailed
from meiye.ledger.models import Balance
from meiye.loyalty.models import MemberTier, Tier
from meiye.loyalty.selectors import MEMBER_POINTS, POINTS_ASSET
from meiye.members.models import Member, Tag
from meiye.members.selectors import members_visible
from meiye.org.context import Actor
from meiye.org.models import Store
from meiye.promotions.models import Coupon, CouponStatus, CouponTemplate
from meiye.sales.models import Bill, BillStatus, Refund

MAX_DAYS = 3650
MAX_POINTS = 1_000_000_000
MAX_FEN = 10**13

KEYS = (
    "tiers",
    "birthday_month",
    "dormant_days",
    "visited_within_days",
    "visited_before_days",
    "visits_min",
    "spend_min",
    "tags",
    "store_ids",
    "points_min",
    "points_max",
    "coupon_template_id",
)


def _invalid(field: str, zh: str, en: str) -> ValidationFailed:
    return ValidationFailed("segment.invalid_criteria", zh=zh, en=en, field=field)


def _int(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(
            field, f"{field} 须为 {low} 到 {high} 的整数。", f"{field} must be a whole number {low} to {high}."
        )
    return value


def _list(field: str, value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise _invalid(field, f"{field} 须为非空列表。", f"{field} must be a non-empty list.")
    return value


def criteria_clean(*, actor: Actor, criteria: Any) -> dict[str, Any]:
    """The criteria, checked and normalised; unknown keys, bad values and other organisations' tiers,
    tags, stores or coupon templates are refused (``segment.invalid_criteria`` naming the key)."""
    if not isinstance(criteria, dict):
        raise _invalid("criteria", "条件须为对象。", "Criteria must be an object.")
    unknown = sorted(set(criteria) - set(KEYS))
    if unknown:
        raise _invalid(unknown[0], f"未知条件：{', '.join(unknown)}。", f"Unknown criteria: {', '.join(unknown)}.")
    org = actor.organisation.pk
    out: dict[str, Any] = {}
    for key in KEYS:
        value = criteria.get(key)
        if value is None or value == [] or value == "":
            continue
        if key == "tiers":
            codes = sorted({str(c) for c in _list(key, value)})
            known = set(Tier.objects.filter(organisation_id=org, code__in=codes).values_list("code", flat=True))
            if set(codes) - known:
                missing = ", ".join(sorted(set(codes) - known))
                raise _invalid(key, f"没有等级 {missing}。", f"No tier {missing}.")
            out[key] = codes
        elif key == "birthday_month":
            out[key] = _int(key, value, 1, 12)
        elif key in ("dormant_days", "visited_within_days", "visited_before_days"):
            out[key] = _int(key, value, 1, MAX_DAYS)
        elif key in ("visits_min", "spend_min"):
            if not isinstance(value, dict) or set(value) != {"days", "count" if key == "visits_min" else "fen"}:
                raise _invalid(key, f"{key} 格式不正确。", f"{key} is not in the expected form.")
            if key == "visits_min":
                out[key] = {
                    "days": _int(key, value["days"], 1, MAX_DAYS),
                    "count": _int(key, value["count"], 1, 100_000),
                }
            else:
                out[key] = {"days": _int(key, value["days"], 1, MAX_DAYS), "fen": _int(key, value["fen"], 0, MAX_FEN)}
        elif key == "tags":
            names = sorted({str(t) for t in _list(key, value)})
            known = set(Tag.objects.filter(organisation_id=org, name__in=names).values_list("name", flat=True))
            if set(names) - known:
                missing = ", ".join(sorted(set(names) - known))
                raise _invalid(key, f"没有标签 {missing}。", f"No tag {missing}.")
            out[key] = names
        elif key == "store_ids":
            ids = sorted({_int(key, v, 1, 2**62) for v in _list(key, value)})
            if Store.objects.filter(organisation_id=org, pk__in=ids).count() != len(ids):
                raise _invalid(key, "门店不存在。", "No such store.")
            out[key] = ids
        elif key in ("points_min", "points_max"):
            out[key] = _int(key, value, -MAX_POINTS, MAX_POINTS)
        elif key == "coupon_template_id":
            pk = _int(key, value, 1, 2**62)
            if not CouponTemplate.objects.filter(organisation_id=org, pk=pk).exists():
                raise _invalid(key, "优惠券模板不存在。", "No such coupon template.")
            out[key] = pk
    if "points_min" in out and "points_max" in out and out["points_min"] > out["points_max"]:
        raise _invalid("points_max", "积分上限不能小于下限。", "The points maximum is below the minimum.")
    return out


def _completed_bills(since: datetime) -> QuerySet[Bill]:
    return Bill.objects.filter(member_id=OuterRef("pk"), status=BillStatus.COMPLETED, completed_at__gte=since)


def _sum_subquery(qs: QuerySet[Any], field: str, group: str) -> Coalesce:
    rows = qs.order_by().values(group).annotate(total=Sum(field)).values("total")
    return Coalesce(Subquery(rows, output_field=BigIntegerField()), 0, output_field=BigIntegerField())


def segment_members(*, actor: Actor, criteria: dict[str, Any], now: datetime | None = None) -> QuerySet[Member]:
    """The active members the actor may see who match ``criteria`` (already cleaned): one query, the
    conditions as subqueries and annotations."""
    now = now or timezone.now()
    org = actor.organisation.pk
    qs = members_visible(actor, include_inactive=False)
    if "tiers" in criteria:
        codes = criteria["tiers"]
        condition: Any = Q(tier_state__tier__code__in=codes)
        lowest = (
            Tier.objects.filter(organisation_id=org).order_by("threshold_fen").values_list("code", flat=True).first()
        )
        if lowest in codes:
            condition |= ~Exists(MemberTier.objects.filter(member_id=OuterRef("pk")))
        qs = qs.filter(condition)
    if "birthday_month" in criteria:
        qs = qs.filter(birthday__month=criteria["birthday_month"])
    if "dormant_days" in criteria:
        qs = qs.exclude(Exists(_completed_bills(now - timedelta(days=criteria["dormant_days"]))))
    if "visited_within_days" in criteria:
        qs = qs.filter(Exists(_completed_bills(now - timedelta(days=criteria["visited_within_days"]))))
    if "visited_before_days" in criteria:
        since = now - timedelta(days=criteria["visited_before_days"])
        ever = Bill.objects.filter(member_id=OuterRef("pk"), status=BillStatus.COMPLETED)
        qs = qs.filter(Exists(ever)).exclude(Exists(_completed_bills(since)))
    if "visits_min" in criteria:
        rule = criteria["visits_min"]
        rows = (
            _completed_bills(now - timedelta(days=rule["days"]))
            .order_by()
            .values("member_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        qs = qs.annotate(
            _visits=Coalesce(Subquery(rows, output_field=IntegerField()), 0, output_field=IntegerField())
        ).filter(_visits__gte=rule["count"])
    if "spend_min" in criteria:
        rule = criteria["spend_min"]
        since = now - timedelta(days=rule["days"])
        refunds = Refund.objects.filter(
            bill__member_id=OuterRef("pk"), bill__status=BillStatus.COMPLETED, bill__completed_at__gte=since
        )
        qs = qs.annotate(
            _paid=_sum_subquery(_completed_bills(since), "payable_total_fen", "member_id"),
            _refunded=_sum_subquery(refunds, "amount_fen", "bill__member_id"),
        ).alias(_net=F("_paid") - F("_refunded"))
        qs = qs.filter(_net__gte=rule["fen"])
    if "tags" in criteria:
        tagged = Member.tags.through.objects.filter(member_id=OuterRef("pk"), tag__name__in=criteria["tags"])
        qs = qs.filter(Exists(tagged))
    if "store_ids" in criteria:
        qs = qs.filter(home_store_id__in=criteria["store_ids"])
    if "points_min" in criteria or "points_max" in criteria:
        balance = Balance.objects.filter(
            account__organisation_id=org,
            account__owner_type="member",
            account__owner_id=OuterRef("pk"),
            account__asset=POINTS_ASSET,
            account__kind=MEMBER_POINTS,
        ).values("amount")[:1]
        qs = qs.annotate(
            _points=Coalesce(Subquery(balance, output_field=BigIntegerField()), 0, output_field=BigIntegerField())
        )
        if "points_min" in criteria:
            qs = qs.filter(_points__gte=criteria["points_min"])
        if "points_max" in criteria:
            qs = qs.filter(_points__lte=criteria["points_max"])
    if "coupon_template_id" in criteria:
        held = Coupon.objects.filter(
            member_id=OuterRef("pk"),
            template_id=criteria["coupon_template_id"],
            status=CouponStatus.ACTIVE,
            valid_until__gte=timezone.localdate(now),
        )
        qs = qs.filter(Exists(held))
    return qs.order_by("pk")


def segment_count(*, actor: Actor, criteria: dict[str, Any], now: datetime | None = None) -> int:
    """How many members the criteria select now (the live count of the segment screen)."""
    return segment_members(actor=actor, criteria=criteria, now=now).count()
