"""A member's stored value (储值) and points (积分): balances, movements, lots, and recharging.

The member is found through ``members.selectors.member_get`` first, so a member of a store you may not see
is 404 ``member.not_found`` for every endpoint here, reads and recharge alike.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from meiye.api import serializers_wallet as s
from meiye.api.fields import parse_amount
from meiye.api.idempotency import IDEMPOTENCY_HEADER, idempotent
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.core.errors import ValidationFailed
from meiye.core.money import Money
from meiye.loyalty.selectors import growth_balance, points_balance, points_history, points_lots
from meiye.loyalty.services import points_adjust
from meiye.members.models import Member
from meiye.members.selectors import member_get
from meiye.sales.selectors import points_offset_quote_for
from meiye.wallet.selectors import wallet_balance, wallet_history
from meiye.wallet.services import wallet_recharge

WALLET = "wallet"
POINTS = "points"


class _MemberScoped(ActorMixin, generics.GenericAPIView):
    queryset = Member.objects.none()  # only for the schema (path parameter type); reads go through selectors

    def member(self, pk: int) -> Member:
        return member_get(self.actor, pk)


def _wallet(member: Member) -> dict[str, Any]:
    return {"member_id": member.pk, "balance": wallet_balance(member)}


class WalletView(_MemberScoped):
    @extend_schema(
        tags=[WALLET],
        summary="A member's stored value: principal, bonus and total",
        responses={200: s.WalletSerializer, **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.WalletSerializer(_wallet(self.member(pk))).data)


class WalletHistoryView(_MemberScoped):
    @extend_schema(
        tags=[WALLET],
        summary="A member's stored-value movements",
        operation_id="v1_members_wallet_history_list",
        description="Newest first, one line per journal (recharge, bill, refund, merge …) with the balances after it.",
        responses={200: s.WalletHistoryLineSerializer(many=True), **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        page = self.paginate_queryset(wallet_history(self.member(pk), limit=None))
        return self.get_paginated_response(s.WalletHistoryLineSerializer(page, many=True).data)


class RechargeView(_MemberScoped):
    @extend_schema(
        tags=[WALLET],
        summary="Recharge a member's stored value in the acting store",
        description="One `wallet.recharge` journal: the tender's store account pays in the principal, the store's "
        "bonus account the bonus. A recharge earns no points and no growth (they come when the principal is "
        "spent). Needs `sales.checkout`; requires `Idempotency-Key` (the same key is the recharge's own key).",
        request=s.RechargeRequestSerializer,
        responses={201: s.RechargeSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int) -> Response:
        member = self.member(pk)
        form = s.RechargeRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        bonus = parse_amount(data["bonus"], field="bonus") if data.get("bonus") is not None else Money(0)
        recharge = wallet_recharge(
            actor=self.actor,
            member=member,
            amount=parse_amount(data["amount"], field="amount"),
            bonus=bonus,
            tender=data["tender"],
            external_ref=data["external_ref"],
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        )
        body = s.RechargeSerializer({"recharge": recharge, "wallet": _wallet(member)}).data
        return Response(body, status=status.HTTP_201_CREATED)


class PointsView(_MemberScoped):
    @extend_schema(
        tags=[POINTS],
        summary="A member's points and growth value",
        responses={200: s.PointsSerializer, **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.PointsSerializer(_points(self.member(pk))).data)


class PointsOffsetQuoteView(_MemberScoped):
    @extend_schema(
        tags=[POINTS],
        summary="How much the member's points may pay of a bill (S-06)",
        description="The most her points may pay of a bill of `payable` in the acting store (`X-Store-Id`): the "
        "smaller of the store's cap and what her balance buys at her tier's rate, in whole yuan. The checkout then "
        "tenders exactly `points`. Needs `sales.checkout`.",
        parameters=[OpenApiParameter("payable", str, required=True, description="The bill's payable, e.g. 500.00.")],
        responses={200: s.PointsOffsetQuoteSerializer, **problems(400, 403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        payable = parse_amount(request.query_params.get("payable"), field="payable")
        store = self.actor.store
        if store is None:
            raise ValidationFailed(
                "sales.store_required",
                zh="请先选择当前门店（X-Store-Id）。",
                en="Choose the current store first (X-Store-Id).",
                field="store",
            )
        quote = points_offset_quote_for(self.actor, self.member(pk), store=store, payable=payable)
        return Response(s.PointsOffsetQuoteSerializer(quote).data)


def _points(member: Member) -> dict[str, Any]:
    growth = growth_balance(member)
    return {"member_id": member.pk, "points": points_balance(member), "growth": Money(growth), "growth_fen": growth}


class PointsAdjustView(_MemberScoped):
    @extend_schema(
        tags=[POINTS],
        summary="Adjust a member's points by hand",
        description="One `points.adjust` journal: a positive number credits a new lot (source `adjust`, the "
        "organisation's lifetime; a debt is repaid first), a negative one takes the points from the lots expiring "
        "first and is refused below zero (`points.insufficient`). Needs `money.adjust` and a reason; audited. "
        "Requires `Idempotency-Key` (the same key is the adjustment's own key).",
        request=s.PointsAdjustRequestSerializer,
        responses={201: s.PointsAdjustSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int) -> Response:
        member = self.member(pk)
        form = s.PointsAdjustRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        journal = points_adjust(
            actor=self.actor,
            member=member,
            points=data["points"],
            reason=data["reason"],
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        )
        body = s.PointsAdjustSerializer({"journal": journal, "points": _points(member)}).data
        return Response(body, status=status.HTTP_201_CREATED)


class PointsLotsView(_MemberScoped):
    @extend_schema(
        tags=[POINTS],
        summary="A member's open points lots, the first to expire first",
        operation_id="v1_members_points_lots_list",
        responses={200: s.PointsLotSerializer(many=True), **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        page = self.paginate_queryset(points_lots(self.member(pk)))
        return self.get_paginated_response(s.PointsLotSerializer(page, many=True).data)


class PointsHistoryView(_MemberScoped):
    @extend_schema(
        tags=[POINTS],
        summary="A member's points movements",
        operation_id="v1_members_points_history_list",
        description="Newest first, each with the balance after it.",
        responses={200: s.PointsHistoryLineSerializer(many=True), **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        page = self.paginate_queryset(points_history(self.member(pk), limit=None))
        return self.get_paginated_response(s.PointsHistoryLineSerializer(page, many=True).data)
