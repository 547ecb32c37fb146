"""The points mall (积分商城, S-07): the items a store offers, redeeming, and a store manager's approval.

Redeeming moves points, stock and possibly cash: it requires an ``Idempotency-Key``, which is also the
redemption's own key (a retry of the same request returns the first redemption; the same key with another
request is 409 ``idempotency.key_reused``). Approving and rejecting require one too. A redemption of a store
you may not see is 404 ``mall.redemption_not_found``; a member you may not see 404 ``member.not_found``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from meiye.api import serializers_mall as s
from meiye.api.idempotency import IDEMPOTENCY_HEADER, idempotent
from meiye.api.params import bool_param, choice_param
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.core.errors import ValidationFailed
from meiye.loyalty.selectors import points_balance
from meiye.mall.models import MallItem, MallRedemption, RedemptionStatus
from meiye.mall.selectors import (
    mall_item_get,
    mall_items,
    mall_stock,
    mall_stock_held,
    redemption_get,
    store_redemptions,
)
from meiye.mall.services import mall_redeem, mall_redemption_approve, mall_redemption_reject
from meiye.members.selectors import member_get
from meiye.org.selectors import store_get

TAG = "mall"


def _shaped_items(found: list[MallItem]) -> list[dict[str, Any]]:
    stock, held = mall_stock(found), mall_stock_held(found)
    return [
        {
            "item": item,
            "stock": stock[item.pk],
            "held": held[item.pk],
            "store_ids": sorted(store.pk for store in item.stores.all()),
        }
        for item in found
    ]


def _redemption(redemption: MallRedemption) -> dict[str, Any]:
    data: dict[str, Any] = s.RedemptionSerializer(redemption).data
    return data


class MallItemViewSet(ActorMixin, viewsets.GenericViewSet):
    """Mall items of the organisation; by default those offered in the acting store."""

    queryset = MallItem.objects.none()  # only for the schema; reads go through mall.selectors

    @extend_schema(
        tags=[TAG],
        summary="Mall items offered in the acting store",
        description="Cheapest first, with the stock on the shelf (null: unlimited) and the units held for "
        "redemptions awaiting approval.",
        parameters=[
            OpenApiParameter("all_stores", bool, description="Every item of the organisation, wherever offered."),
            OpenApiParameter("include_inactive", bool, description="Also items no longer offered."),
        ],
        responses={200: s.MallItemSerializer(many=True), **problems(400)},
    )
    def list(self, request: Request) -> Response:
        store = None if bool_param(request, "all_stores") else self.actor.store
        found = mall_items(self.actor, store=store, active_only=not bool_param(request, "include_inactive"))
        page = self.paginate_queryset(found)
        return self.get_paginated_response(s.MallItemSerializer(_shaped_items(list(page or [])), many=True).data)

    @extend_schema(tags=[TAG], summary="A mall item", responses={200: s.MallItemSerializer, **problems(404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.MallItemSerializer(_shaped_items([mall_item_get(self.actor, pk)])[0]).data)


class MallRedemptionViewSet(ActorMixin, viewsets.GenericViewSet):
    """Redemptions made in the stores you may see."""

    queryset = MallRedemption.objects.none()  # only for the schema; reads go through mall.selectors
    lookup_value_regex = r"\d+"
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG],
        summary="Redemption history",
        description="Newest first, in the stores you may see (or one of them).",
        parameters=[
            OpenApiParameter("member_id", int, description="Only this member's redemptions."),
            OpenApiParameter("store_id", int, description="Only this store's."),
            OpenApiParameter("status", str, enum=RedemptionStatus.values),
        ],
        responses={200: s.RedemptionSerializer(many=True), **problems(400, 403, 404)},
    )
    def list(self, request: Request) -> Response:
        member_id = _int_param(request, "member_id")
        store_id = _int_param(request, "store_id")
        if member_id is not None:
            member_id = member_get(self.actor, member_id).pk
        if store_id is not None:
            store_id = store_get(self.actor, store_id).pk
        found = store_redemptions(
            self.actor,
            store_id=store_id,
            member_id=member_id,
            status=choice_param(request, "status", RedemptionStatus.values),
        )
        page = self.paginate_queryset(found)
        return self.get_paginated_response(s.RedemptionSerializer(page, many=True).data)

    @extend_schema(tags=[TAG], summary="A redemption", responses={200: s.RedemptionSerializer, **problems(403, 404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(_redemption(redemption_get(self.actor, pk)))

    @extend_schema(
        tags=[TAG],
        summary="Redeem points for a mall item in the acting store",
        description="Spends the points (the lots expiring first) and takes the stock. Below the approval "
        "threshold (S-07: 20,000 points) it is `completed`; at or above it, `pending` with the points held "
        "until a store manager approves or rejects. Refusals: `mall.below_minimum` (S-07: under 500 points), "
        "`mall.out_of_stock`, `mall.limit_reached`, `points.insufficient`, `mall.item_unavailable`, "
        "`mall.tender_required`. Needs `sales.checkout`; requires `Idempotency-Key`.",
        request=s.RedeemRequestSerializer,
        responses={201: s.RedeemResultSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def create(self, request: Request) -> Response:
        form = s.RedeemRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        member = member_get(self.actor, data["member_id"])
        redemption = mall_redeem(
            actor=self.actor,
            member=member,
            item=mall_item_get(self.actor, data["item_id"]),
            quantity=data["quantity"],
            tender=data["tender"],
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        )
        body = {"redemption": redemption, "points_balance": points_balance(member)}
        return Response(s.RedeemResultSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Approve a redemption awaiting approval (store manager)",
        description="Completes it: the held stock is handed out; the points stay spent. Not by whoever asked "
        "for it (403 `mall.self_approval`). Needs `mall.approve`; requires `Idempotency-Key`.",
        request=s.DecisionRequestSerializer,
        responses={200: s.RedemptionSerializer, **problems(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    @idempotent(required=True)
    def approve(self, request: Request, pk: str) -> Response:
        form = s.DecisionRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        redemption = mall_redemption_approve(
            actor=self.actor, redemption=redemption_get(self.actor, pk), note=form.validated_data["note"]
        )
        return Response(_redemption(redemption))

    @extend_schema(
        tags=[TAG],
        summary="Reject a redemption awaiting approval (store manager)",
        description="The points return in full to the lots they came from, the held stock to the shelf and a "
        "cash part to its tender. Needs `mall.approve`; requires `Idempotency-Key`.",
        request=s.RejectRequestSerializer,
        responses={200: s.RedemptionSerializer, **problems(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    @idempotent(required=True)
    def reject(self, request: Request, pk: str) -> Response:
        form = s.RejectRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        redemption = mall_redemption_reject(
            actor=self.actor, redemption=redemption_get(self.actor, pk), reason=form.validated_data["reason"]
        )
        return Response(_redemption(redemption))


def _int_param(request: Request, name: str) -> int | None:
    value = (request.query_params.get(name) or "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ValidationFailed(
            "input.invalid_number",
            zh=f"{name}：应为整数。",
            en=f"{name}: must be a whole number.",
            field=name,
        )
    return int(value)
