"""Earning rules (积分规则): the organisation's rules (read by anyone at the till, changed by HQ with
`catalog.manage`), a member's daily check-in (签到, `sales.checkout`), the members flagged for earning more
than the daily limit (`money.adjust`: store managers, finance, HQ; store-scoped), and the offers preview of an
open bill (what completing it now with some coupons would charge, and which of her coupons apply).

Every rule and range is the services' (``loyalty.rules``); a refusal is problem+json naming the field.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from meiye.api import serializers_rules as s
from meiye.api.idempotency import idempotent
from meiye.api.params import date_param
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.core.errors import ApplicationError, Conflict, ValidationFailed
from meiye.loyalty.models import CheckIn, EarningFlag
from meiye.loyalty.rules import checkin_record, earning_flag_review, rules_config, rules_settings_save
from meiye.loyalty.selectors import local_today
from meiye.members.models import Member
from meiye.members.selectors import member_get, members_visible
from meiye.org.context import Actor
from meiye.org.roles import Perm
from meiye.promotions.selectors import coupons_held
from meiye.sales.models import Bill, BillStatus
from meiye.sales.selectors import OffersPreview, bill_get, bill_offers_preview

TAG = "rules"
MAX_COUPON_IDS = 20
MAX_COUPONS_TRIED = 20  # the member's active coupons each tried against the bill (one preview each)


def _rules(actor: Actor) -> dict[str, Any]:
    return asdict(rules_config(actor.organisation.pk))


class RulesSettingsView(ActorMixin, APIView):
    """The organisation's earning rules (birthday, member day, check-in, dormant, referral, daily limit)."""

    @extend_schema(tags=[TAG], summary="The earning rules", responses={200: s.RulesSettingsSerializer, **problems(403)})
    def get(self, request: Request) -> Response:
        self.actor.require(Perm.MEMBER_VIEW)
        return Response(s.RulesSettingsSerializer(_rules(self.actor)).data)

    @extend_schema(
        tags=[TAG],
        summary="Change the earning rules (HQ)",
        description="Only the fields sent change. Multipliers in basis points (×2 = 20000), money in fen, coupon "
        "templates by id. A value out of range is 400 `loyalty.invalid_rule` naming the field, and nothing "
        "changes. Needs `catalog.manage`; audited.",
        request=s.RulesSettingsWriteSerializer,
        responses={200: s.RulesSettingsSerializer, **problems(400, 403)},
    )
    @idempotent
    def put(self, request: Request) -> Response:
        self.actor.require(Perm.CATALOG_MANAGE)
        form = s.RulesSettingsWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        rules_settings_save(actor=self.actor, **form.save_kwargs())
        return Response(s.RulesSettingsSerializer(_rules(self.actor)).data)


class MemberCheckInView(ActorMixin, generics.GenericAPIView):
    queryset = Member.objects.none()  # only for the schema (path parameter type); reads go through selectors

    @extend_schema(
        tags=[TAG],
        summary="Record a member's check-in today (签到)",
        description="Once a store-local day: the check-in points, and on every streak-length-th consecutive day "
        "the streak bonus (S-11: 10 a day, 50 more on the 7th). 201 when recorded; 200 with "
        "`already_checked_in` when she had already checked in today (nothing more is given). Needs "
        "`sales.checkout`.",
        request=None,
        responses={201: s.CheckInSerializer, 200: s.CheckInSerializer, **problems(400, 403, 404)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        self.actor.require(Perm.CHECKOUT)
        member = member_get(self.actor, pk)
        on = local_today(self.actor.store)
        already = CheckIn.objects.filter(member=member, on=on).exists()
        checkin = checkin_record(actor=self.actor, member=member, on=on)
        body = {
            "member_id": member.pk,
            "on": checkin.on,
            "streak_day": checkin.streak_day,
            "points": checkin.points,
            "bonus": checkin.bonus,
            "already_checked_in": already,
        }
        return Response(
            s.CheckInSerializer(body).data, status=status.HTTP_200_OK if already else status.HTTP_201_CREATED
        )


def earning_flags_visible(actor: Actor) -> QuerySet[EarningFlag]:
    """The daily-limit flags of the members the actor may see, newest day first."""
    actor.require(Perm.MONEY_ADJUST)
    return (
        EarningFlag.objects.filter(organisation=actor.organisation, member__in=members_visible(actor))
        .select_related("member", "reviewed_by")
        .order_by("-on", "member_id")
    )


class EarningFlagsView(ActorMixin, generics.GenericAPIView):
    queryset = EarningFlag.objects.none()  # only for the schema

    @extend_schema(
        tags=[TAG],
        summary="Members who earned more than the daily limit",
        operation_id="v1_earning_flags_list",
        description="Newest day first; members of the stores you may see. A flag never refused or reversed an "
        "earning: it asks a manager to look. Needs `money.adjust`.",
        parameters=[
            OpenApiParameter("date_from", OpenApiTypes.DATE, description="YYYY-MM-DD, inclusive."),
            OpenApiParameter("date_to", OpenApiTypes.DATE, description="YYYY-MM-DD, inclusive."),
        ],
        responses={200: s.EarningFlagSerializer(many=True), **problems(400, 403)},
    )
    def get(self, request: Request) -> Response:
        found = earning_flags_visible(self.actor)
        date_from, date_to = date_param(request, "date_from"), date_param(request, "date_to")
        if date_from is not None:
            found = found.filter(on__gte=date_from)
        if date_to is not None:
            found = found.filter(on__lte=date_to)
        page = self.paginate_queryset(found)
        return self.get_paginated_response(s.EarningFlagSerializer(page, many=True).data)


class EarningFlagReviewView(ActorMixin, generics.GenericAPIView):
    queryset = EarningFlag.objects.none()  # only for the schema

    @extend_schema(
        tags=[TAG],
        summary="Mark a daily-limit flag as reviewed",
        operation_id="v1_earning_flag_review",
        description="Records who reviewed it, when, and the note (required). A flag is reviewed once: again is 409 "
        "`loyalty.flag_already_reviewed`. Needs `money.adjust` and a member of a store you may see; audited.",
        request=s.EarningFlagReviewSerializer,
        responses={200: s.EarningFlagSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        form = s.EarningFlagReviewSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        flag = earning_flag_review(actor=self.actor, flag_id=pk, note=form.validated_data["note"])
        return Response(s.EarningFlagSerializer(flag).data)


# --- The offers preview of an open bill ------------------------------------------------------------------------


def _coupon_ids(request: Request) -> list[int]:
    raw = (request.query_params.get("coupon_ids") or "").strip()
    if not raw:
        return []
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if len(parts) > MAX_COUPON_IDS or not all(p.isdigit() and len(p) <= 18 for p in parts):
        raise ValidationFailed(
            "input.invalid_ids",
            zh=f"coupon_ids：需要以逗号分隔的优惠券编号，最多 {MAX_COUPON_IDS} 个。",
            en=f"coupon_ids: comma-separated coupon ids, at most {MAX_COUPON_IDS}.",
            field="coupon_ids",
        )
    return list(dict.fromkeys(int(p) for p in parts))


def _discounts(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "step": str(step.get("step", "")),
            "reason": str(step.get("reason", "")),
            "unit_price_fen": step.get("unit_price_fen"),
            "amount_fen": step.get("discount_fen"),
        }
        for step in steps
        if step.get("step") != "list_price"
    ]


def _preview_body(bill: Bill, ids: list[int], preview: OffersPreview, coupons: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "bill_id": bill.pk,
        "coupon_ids": ids,
        "payable_before_fen": preview.list_total.fen,
        "discount_fen": preview.discount_total.fen,
        "payable_after_fen": preview.payable_total.fen,
        "lines": [
            {
                "id": line.pk,
                "item_id": line.item_id,
                "name": line.name,
                "quantity": line.quantity,
                "list_price_fen": line.list_price_fen,
                "unit_price_fen": line.unit_price_fen,
                "discount_fen": line.discount_fen,
                "line_total_fen": line.line_total_fen,
                "discounts": _discounts(list(line.price_steps or [])),
            }
            for line in preview.lines
        ],
        "coupons": coupons,
    }


def _coupon_options(actor: Actor, bill: Bill, ids: list[int]) -> list[dict[str, Any]]:
    """The member's active coupons, each tried with the ones applied (a preview each, nothing written)."""
    if bill.member is None or not actor.can(Perm.MEMBER_VIEW):
        return []
    options = []
    for coupon in list(coupons_held(actor, bill.member, active_only=True)[:MAX_COUPONS_TRIED]):
        applied = coupon.pk in ids
        refusal_code = refusal = ""
        if not applied:
            try:
                bill_offers_preview(actor, bill, coupon_ids=[*ids, coupon.pk])
            except ApplicationError as exc:
                refusal_code, refusal = exc.code, exc.message
        options.append(
            {
                "id": coupon.pk,
                "code": coupon.code,
                "name": coupon.template.name,
                "valid_until": coupon.valid_until,
                "applied": applied,
                "applicable": not refusal_code,
                "refusal_code": refusal_code,
                "refusal": refusal,
            }
        )
    return options


class BillOffersView(ActorMixin, generics.GenericAPIView):
    queryset = Bill.objects.none()  # only for the schema (path parameter type); reads go through selectors

    @extend_schema(
        tags=["bills"],
        summary="Preview an open bill's offers with some coupons",
        operation_id="v1_bills_offers_retrieve",
        description="What completing the bill now would charge with the coupons `coupon_ids` (comma-separated): "
        "the payable before and after the offers, each line's discounts with their reasons (tier discount, "
        "promotions, coupons), and the member's active coupons with whether each still applies. Writes "
        "nothing. A coupon the offers refuse is the refusal completion would give (400 `coupon.min_spend`, "
        "`coupon.not_stackable` …); a bill that is not open is 409 `sales.bill_not_open`.",
        parameters=[OpenApiParameter("coupon_ids", str, description="Comma-separated coupon ids, e.g. 12,15.")],
        responses={200: s.OffersPreviewSerializer, **problems(400, 403, 404, 409)},
    )
    def get(self, request: Request, pk: int) -> Response:
        self.actor.require(Perm.CHECKOUT)
        bill = bill_get(self.actor, pk)
        if bill.status != BillStatus.OPEN:
            raise Conflict(
                "sales.bill_not_open",
                zh=f"消费单 {bill.number} 已不是未结账状态，不能预览优惠。",
                en=f"Bill {bill.number} is {bill.status}; offers are previewed on open bills only.",
            )
        ids = _coupon_ids(request)
        preview = bill_offers_preview(self.actor, bill, coupon_ids=ids)
        body = _preview_body(bill, ids, preview, _coupon_options(self.actor, bill, ids))
        return Response(s.OffersPreviewSerializer(body).data)
