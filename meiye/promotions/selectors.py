"""Reading coupons and promotions."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from meiye.core.errors import NotFound, not_found
from meiye.members.models import Member
from meiye.members.selectors import member_get
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.promotions.models import Coupon, CouponStatus, CouponTemplate, Promotion, PromotionSettings, StackingPolicy


def promotions_live(organisation_id: int) -> list[Promotion]:
    """The organisation's active promotions, in priority order (dates and stores are checked per bill)."""
    return list(Promotion.objects.filter(organisation_id=organisation_id, is_active=True).order_by("priority", "pk"))


def promotions_live_with_policy(organisation_id: int) -> tuple[list[Promotion], str]:
    """``promotions_live`` and the organisation's stacking policy, in ONE query (the policy rides on each
    row as a scalar subquery; with no promotion it does not matter and the default is returned)."""
    policy = PromotionSettings.objects.filter(organisation_id=OuterRef("organisation_id")).values("stacking")[:1]
    rows: list[Promotion] = list(
        Promotion.objects.filter(organisation_id=organisation_id, is_active=True)
        .annotate(_stacking=Subquery(policy))
        .order_by("priority", "pk")
    )
    stacking = getattr(rows[0], "_stacking", None) if rows else None
    return rows, str(stacking or StackingPolicy.BEST_SINGLE)


# (organisation id) -> (version, promotions, policy): what a checkout prices with, per process. A checkout
# reads the organisation's ``PromotionSettings.version`` with its store row (no extra query) and asks here;
# the services bump the version on every change, so a stale entry is never used.
_LIVE_CACHE: dict[int, tuple[int, list[Promotion], str]] = {}


def promotions_live_cached(organisation_id: int, version: int | None) -> tuple[list[Promotion], str]:
    """``promotions_live_with_policy`` for a checkout that read ``version`` with its store row: from this
    process's cache when that version is the one cached. ``version`` None means the organisation has no
    settings row, which every promotion's save creates — so it has no promotions, and nothing is read."""
    if version is None:
        return [], StackingPolicy.BEST_SINGLE
    cached = _LIVE_CACHE.get(organisation_id)
    if cached is not None and cached[0] == version:
        return list(cached[1]), cached[2]
    rows, policy = promotions_live_with_policy(organisation_id)
    _LIVE_CACHE[organisation_id] = (version, rows, policy)
    return list(rows), policy


def promotions_version_subquery(organisation_ref: str) -> Subquery:
    """The organisation's promotions version as a scalar subquery (NULL without a settings row)."""
    return Subquery(PromotionSettings.objects.filter(organisation_id=OuterRef(organisation_ref)).values("version")[:1])


def stacking_policy(organisation_id: int) -> str:
    row = PromotionSettings.objects.filter(organisation_id=organisation_id).values_list("stacking", flat=True).first()
    return row or StackingPolicy.BEST_SINGLE


def coupons_held(actor: Actor, member: Member, *, active_only: bool = False) -> QuerySet[Coupon]:
    """A member's coupons (the caller has read the member through ``members.selectors.member_get``)."""
    actor.require(Perm.MEMBER_VIEW)
    qs = Coupon.objects.filter(organisation=actor.organisation, member=member).select_related("template")
    if active_only:
        qs = qs.filter(status=CouponStatus.ACTIVE)
    return qs.order_by("status", "valid_until", "pk")


def coupon_templates(actor: Actor) -> QuerySet[CouponTemplate]:
    actor.require(Perm.MEMBER_VIEW)
    return CouponTemplate.objects.filter(organisation=actor.organisation)


def promotions(actor: Actor) -> QuerySet[Promotion]:
    actor.require(Perm.MEMBER_VIEW)
    return Promotion.objects.filter(organisation=actor.organisation).order_by("priority", "pk")


def coupon_template_get(actor: Actor, pk: int | str) -> CouponTemplate:
    """One of the organisation's coupon templates, or 404 ``coupon.template_not_found``."""
    found = coupon_templates(actor).filter(pk=pk).first() if str(pk).isdigit() else None
    if found is None:
        raise not_found("coupon.template_not_found", "优惠券模板", "Coupon template")
    return found


def promotion_get(actor: Actor, pk: int | str) -> Promotion:
    """One of the organisation's promotions, or 404 ``promotion.not_found``."""
    found = promotions(actor).filter(pk=pk).first() if str(pk).isdigit() else None
    if found is None:
        raise not_found("promotion.not_found", "促销活动", "Promotion")
    return found


def coupon_get(actor: Actor, pk: int | str) -> Coupon:
    """A coupon held by a member the actor may see (``members.selectors.member_get``), else 404
    ``coupon.not_found`` — a coupon of another store's member is not found, not forbidden."""
    actor.require(Perm.MEMBER_VIEW)
    found = (
        Coupon.objects.filter(organisation=actor.organisation, pk=pk).select_related("template").first()
        if str(pk).isdigit()
        else None
    )
    if found is not None:
        try:
            member_get(actor, found.member_id)
        except NotFound:
            found = None
    if found is None:
        raise not_found("coupon.not_found", "优惠券", "Coupon")
    return found
