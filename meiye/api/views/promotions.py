"""Coupons (优惠券) and promotions (促销): coupon templates and promotions (read by anyone at the till, changed by
HQ with `promotions.manage`), how offers stack, a member's coupons, issuing one by hand (`member.edit`,
`Idempotency-Key` required) and voiding one.

A member's coupons are reached through ``members.selectors.member_get``: a member (or a coupon of a member)
of a store you may not see is 404. Coupons are applied at checkout by ``coupon_ids`` on
``POST /bills/{id}/checkout/`` and ``POST /bills/checkout/``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from meiye.api import serializers_promotions as s
from meiye.api.idempotency import IDEMPOTENCY_HEADER, idempotent
from meiye.api.params import bool_param
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.core.errors import NotFound, ValidationFailed
from meiye.members.models import Member
from meiye.members.selectors import member_get
from meiye.org.roles import Perm
from meiye.promotions.models import Coupon, CouponTemplate, Promotion
from meiye.promotions.selectors import (
    coupon_get,
    coupon_template_get,
    coupon_templates,
    coupons_held,
    promotion_get,
    promotions,
    stacking_policy,
)
from meiye.promotions.services import (
    coupon_issue,
    coupon_template_input,
    coupon_template_save,
    coupon_void,
    promotion_input,
    promotion_save,
    promotion_settings_set,
)

TAG = "promotions"

ACTIVE_ONLY = OpenApiParameter("active_only", bool, description="Only active entries. Default false.")


class CouponTemplateViewSet(ActorMixin, viewsets.GenericViewSet):
    """Coupon templates (优惠券模板): what a coupon of each kind does, and for how long."""

    queryset = CouponTemplate.objects.none()  # only for the schema; reads go through promotions.selectors
    lookup_value_regex = r"\d+"

    @extend_schema(
        tags=[TAG],
        summary="Coupon templates",
        parameters=[ACTIVE_ONLY],
        responses={200: s.CouponTemplateSerializer(many=True), **problems(400, 403)},
    )
    def list(self, request: Request) -> Response:
        found = coupon_templates(self.actor).order_by("pk")
        if bool_param(request, "active_only"):
            found = found.filter(is_active=True)
        page = self.paginate_queryset(found)
        return self.get_paginated_response(s.CouponTemplateSerializer(page, many=True).data)

    @extend_schema(
        tags=[TAG], summary="A coupon template", responses={200: s.CouponTemplateSerializer, **problems(403, 404)}
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.CouponTemplateSerializer(coupon_template_get(self.actor, pk)).data)

    @extend_schema(
        tags=[TAG],
        summary="Create a coupon template (HQ)",
        description="amount_off needs `amount_off`; percent_off a `pay_bp` below 10000; free_service a "
        "`free_item_id`. Validity: `valid_days` from issue, or both `valid_from` and `valid_until`. Needs "
        "`promotions.manage`.",
        request=s.CouponTemplateWriteSerializer,
        responses={201: s.CouponTemplateSerializer, **problems(400, 403, 409)},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        form = s.CouponTemplateWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        template = coupon_template_save(actor=self.actor, data=form.to_input())
        return Response(s.CouponTemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Change a coupon template (HQ)",
        description="Only the fields sent change; coupons already issued keep their dates. Needs `promotions.manage`.",
        request=s.CouponTemplatePatchSerializer,
        responses={200: s.CouponTemplateSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def partial_update(self, request: Request, pk: str) -> Response:
        template = coupon_template_get(self.actor, pk)
        form = s.CouponTemplatePatchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        saved = coupon_template_save(
            actor=self.actor, data=form.to_input(coupon_template_input(template)), template=template
        )
        return Response(s.CouponTemplateSerializer(saved).data)


class PromotionViewSet(ActorMixin, viewsets.GenericViewSet):
    """Promotions (促销): 满减 spend X save Y, a percentage off, buy X get Y — applied to every bill they fit."""

    queryset = Promotion.objects.none()  # only for the schema; reads go through promotions.selectors
    lookup_value_regex = r"\d+"  # /promotions/stacking/ is the stacking policy

    @extend_schema(
        tags=[TAG],
        summary="Promotions, in priority order",
        parameters=[ACTIVE_ONLY],
        responses={200: s.PromotionSerializer(many=True), **problems(400, 403)},
    )
    def list(self, request: Request) -> Response:
        found = promotions(self.actor)
        if bool_param(request, "active_only"):
            found = found.filter(is_active=True)
        page = self.paginate_queryset(found)
        return self.get_paginated_response(s.PromotionSerializer(page, many=True).data)

    @extend_schema(tags=[TAG], summary="A promotion", responses={200: s.PromotionSerializer, **problems(403, 404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.PromotionSerializer(promotion_get(self.actor, pk)).data)

    @extend_schema(
        tags=[TAG],
        summary="Create a promotion (HQ)",
        description="spend_save needs `threshold` and `save` (above 0, not above the threshold); percent_off a "
        "`pay_bp` below 10000; buy_x_get_y `buy_quantity` and `free_quantity` of at least 1. Needs "
        "`promotions.manage`.",
        request=s.PromotionWriteSerializer,
        responses={201: s.PromotionSerializer, **problems(400, 403, 409)},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        form = s.PromotionWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        promotion = promotion_save(actor=self.actor, data=form.to_input())
        return Response(s.PromotionSerializer(promotion).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Change a promotion (HQ)",
        description="Only the fields sent change. Needs `promotions.manage`.",
        request=s.PromotionPatchSerializer,
        responses={200: s.PromotionSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def partial_update(self, request: Request, pk: str) -> Response:
        promotion = promotion_get(self.actor, pk)
        form = s.PromotionPatchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        saved = promotion_save(actor=self.actor, data=form.to_input(promotion_input(promotion)), promotion=promotion)
        return Response(s.PromotionSerializer(saved).data)


class StackingView(ActorMixin, APIView):
    """How the tier discount and promotions combine (叠加规则)."""

    @extend_schema(tags=[TAG], summary="The stacking policy", responses={200: s.StackingSerializer, **problems(403)})
    def get(self, request: Request) -> Response:
        self.actor.require(Perm.MEMBER_VIEW)
        return Response(s.StackingSerializer({"stacking": stacking_policy(self.actor.organisation.pk)}).data)

    @extend_schema(
        tags=[TAG],
        summary="Set the stacking policy (HQ)",
        description="Needs `promotions.manage`. Applies to bills completed from now on.",
        request=s.StackingSerializer,
        responses={200: s.StackingSerializer, **problems(400, 403)},
    )
    @idempotent
    def put(self, request: Request) -> Response:
        form = s.StackingSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        row = promotion_settings_set(actor=self.actor, stacking=form.validated_data["stacking"])
        return Response(s.StackingSerializer(row).data)


class MemberCouponsView(ActorMixin, generics.GenericAPIView):
    """A member's coupons; issuing one by hand."""

    queryset = Member.objects.none()  # only for the schema (path parameter type); reads go through selectors

    def member(self, pk: int) -> Member:
        return member_get(self.actor, pk)

    @extend_schema(
        tags=[TAG],
        summary="A member's coupons",
        operation_id="v1_members_coupons_list",
        description="Active first (by expiry), then used and void.",
        parameters=[ACTIVE_ONLY],
        responses={200: s.CouponSerializer(many=True), **problems(400, 403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        found = coupons_held(self.actor, self.member(pk), active_only=bool_param(request, "active_only"))
        page = self.paginate_queryset(found.select_related("issued_by"))
        return self.get_paginated_response(s.CouponSerializer(page, many=True).data)

    @extend_schema(
        tags=[TAG],
        summary="Issue a coupon to a member by hand",
        description="One coupon of an active template, valid from today for the template's days (or its dates). "
        "Refused above the template's per-member limit (409 `coupon.limit_reached`). Needs `member.edit`; "
        "requires `Idempotency-Key` (the same key is the coupon's own key: a retry answers the same coupon).",
        request=s.CouponIssueSerializer,
        responses={201: s.CouponSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int) -> Response:
        member = self.member(pk)
        form = s.CouponIssueSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        coupon = coupon_issue(
            actor=self.actor,
            member=member,
            template=self._template(form.validated_data["template_id"]),
            source="manual",
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        )
        return Response(s.CouponSerializer(coupon).data, status=status.HTTP_201_CREATED)

    def _template(self, template_id: int) -> CouponTemplate:
        try:
            return coupon_template_get(self.actor, template_id)
        except NotFound:
            raise ValidationFailed(
                "coupon.invalid_template",
                zh="优惠券模板：找不到该模板。",
                en="template_id: no such coupon template.",
                field="template_id",
            ) from None


class CouponVoidView(ActorMixin, generics.GenericAPIView):
    """Void an active coupon (作废)."""

    queryset = Coupon.objects.none()  # only for the schema (path parameter type); reads go through selectors

    @extend_schema(
        tags=[TAG],
        summary="Void a member's active coupon",
        description="A used or void coupon: 409 `coupon.not_active`. Needs `member.edit`; audited with the reason.",
        request=s.CouponVoidSerializer,
        responses={200: s.CouponSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        coupon = coupon_get(self.actor, pk)
        form = s.CouponVoidSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        voided = coupon_void(actor=self.actor, coupon=coupon, reason=form.validated_data["reason"])
        return Response(s.CouponSerializer(_with_template(voided, coupon)).data)


def _with_template(coupon: Coupon, read: Coupon) -> Any:
    """The voided row with the template already read (no second query for it)."""
    coupon.template = read.template
    return coupon
