"""Member tiers (会员等级): the ladder (read by anyone at the till, changed by HQ with `catalog.manage`), a
member's tier with the progress to the next one and her tier history, and granting a tier by hand
(`money.adjust`). A member's points lots are ``GET /members/{id}/points/lots/`` (``views.wallet``).

A member is reached through ``members.selectors.member_get``: a member of a store you may not see is 404
``member.not_found``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from meiye.api import serializers_loyalty as s
from meiye.api.idempotency import idempotent
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.core.errors import NotFound, ValidationFailed, not_found
from meiye.loyalty.models import Tier
from meiye.loyalty.selectors import member_tier_state, tier_history, tier_progress, tiers_list
from meiye.loyalty.tiers import tier_delete, tier_grant, tier_save
from meiye.members.models import Member
from meiye.members.selectors import member_get
from meiye.org.context import Actor
from meiye.org.roles import Perm

TAG = "tiers"


def _tier(actor: Actor, pk: int | str) -> Tier:
    found = next((t for t in tiers_list(actor.organisation) if str(t.pk) == str(pk)), None)
    if found is None:
        raise not_found("tier.not_found", "会员等级", "Tier")
    return found


def _member_tier(member: Member) -> dict[str, Any]:
    return {"member_id": member.pk, "progress": tier_progress(member), "state": member_tier_state(member)}


class TierViewSet(ActorMixin, viewsets.GenericViewSet):
    """The tier ladder (普通/银卡/金卡/钻石), lowest first."""

    queryset = Tier.objects.none()  # only for the schema; reads go through loyalty.selectors
    lookup_value_regex = r"\d+"

    @extend_schema(
        tags=[TAG],
        summary="The tier ladder, lowest first",
        responses={200: s.TierSerializer(many=True), **problems(403)},
    )
    def list(self, request: Request) -> Response:
        self.actor.require(Perm.MEMBER_VIEW)
        page = self.paginate_queryset(tiers_list(self.actor.organisation))
        return self.get_paginated_response(s.TierSerializer(page, many=True).data)

    @extend_schema(tags=[TAG], summary="A tier", responses={200: s.TierSerializer, **problems(403, 404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        self.actor.require(Perm.MEMBER_VIEW)
        return Response(s.TierSerializer(_tier(self.actor, pk)).data)

    @extend_schema(
        tags=[TAG],
        summary="Create or replace a tier (HQ)",
        description="Keyed by `code`: 201 when new, 200 when the tier with that code was replaced. The ladder must "
        "start at 0 with strictly increasing thresholds (400 `tier.lowest_not_zero`, "
        "`tier.threshold_not_increasing`). Members keep their tier until their next bill (upgrades) or their "
        "review (downgrades). Needs `catalog.manage`.",
        request=s.TierWriteSerializer,
        responses={201: s.TierSerializer, 200: s.TierSerializer, **problems(400, 403)},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        form = s.TierWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        code = str(form.validated_data.pop("code"))
        existed = any(t.code == code.strip() for t in tiers_list(self.actor.organisation))
        tier = tier_save(actor=self.actor, code=code, **form.save_kwargs())
        return Response(s.TierSerializer(tier).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Change a tier (HQ)",
        description="Only the fields sent change. Needs `catalog.manage`.",
        request=s.TierPatchSerializer,
        responses={200: s.TierSerializer, **problems(400, 403, 404)},
    )
    @idempotent
    def partial_update(self, request: Request, pk: str) -> Response:
        tier = _tier(self.actor, pk)
        form = s.TierPatchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        saved = tier_save(actor=self.actor, code=tier.code, **form.save_kwargs(s.tier_current(tier)))
        return Response(s.TierSerializer(saved).data)

    @extend_schema(
        tags=[TAG],
        summary="Delete a tier (HQ)",
        description="Only a tier no member has, had or was granted (409 `tier.in_use`: change it instead); the "
        "lowest only when it is the last (400 `tier.lowest_required`). Needs `catalog.manage`.",
        responses={204: None, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def destroy(self, request: Request, pk: str) -> Response:
        tier_delete(actor=self.actor, tier=_tier(self.actor, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class _MemberScoped(ActorMixin, generics.GenericAPIView):
    queryset = Member.objects.none()  # only for the schema (path parameter type); reads go through selectors

    def member(self, pk: int) -> Member:
        return member_get(self.actor, pk)


class MemberTierView(_MemberScoped):
    @extend_schema(
        tags=[TAG],
        summary="A member's tier and how far the next one is",
        description="The tier she has (max of the tier her 12-month growth earned and a tier granted by hand), "
        'her growth, the next tier and what it still needs ("距离金卡还差 ¥1,234").',
        responses={200: s.MemberTierSerializer, **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.MemberTierSerializer(_member_tier(self.member(pk))).data)


class MemberTierHistoryView(_MemberScoped):
    @extend_schema(
        tags=[TAG],
        summary="A member's tier changes",
        operation_id="v1_members_tier_history_list",
        description="Newest first: from, to, why (bill, review, grant, floor_end, merge), when, who.",
        responses={200: s.TierChangeSerializer(many=True), **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        page = self.paginate_queryset(tier_history(self.member(pk), limit=None))
        return self.get_paginated_response(s.TierChangeSerializer(page, many=True).data)


class MemberTierGrantView(_MemberScoped):
    @extend_schema(
        tags=[TAG],
        summary="Grant a member a tier by hand",
        description="A floor up to and including `until`: she has at least that tier at once, and the review of "
        "the day after brings her back to the tier her growth earned. A new grant replaces the previous one. "
        "Needs `money.adjust` and a reason; audited.",
        request=s.TierGrantSerializer,
        responses={200: s.MemberTierSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        self.actor.require(Perm.MONEY_ADJUST)
        member = self.member(pk)
        form = s.TierGrantSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        tier_grant(
            actor=self.actor,
            member=member,
            tier=self._tier(data["tier_id"]),
            until=data["until"],
            reason=data["reason"],
        )
        return Response(s.MemberTierSerializer(_member_tier(member_get(self.actor, member.pk))).data)

    def _tier(self, tier_id: int) -> Tier:
        try:
            return _tier(self.actor, tier_id)
        except NotFound:
            raise ValidationFailed(
                "tier.invalid_tier",
                zh="会员等级：找不到该等级。",
                en="tier_id: no such tier.",
                field="tier_id",
            ) from None
