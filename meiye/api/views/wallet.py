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
from meiye.cards.selectors import member_live_card
from meiye.cards.services import card_transfer_balance
from meiye.core.errors import NotFound, ValidationFailed
from meiye.core.money import Money
from meiye.loyalty.selectors import growth_balance, local_today, points_balance, points_history, points_lots
from meiye.loyalty.services import points_adjust
from meiye.members.models import Member
from meiye.members.selectors import member_get
from meiye.sales.selectors import points_offset_quote_for
from meiye.wallet.models import CardProduct, RechargeRule
from meiye.wallet.selectors import (
    card_product_default,
    card_product_get,
    card_products,
    member_instalments,
    member_recharge_get,
    recharge_preview,
    recharge_rule_get,
    recharge_rules,
    wallet_balance,
    wallet_history,
)
from meiye.wallet.services import (
    CardProductInput,
    RechargeRuleInput,
    card_product_save,
    recharge_rule_save,
    wallet_close,
    wallet_recharge,
    wallet_recharge_refund,
)

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
        "bonus account the bonus. `product` (default: the organisation's default card product) brings its "
        "principal cap (`wallet.cap_exceeded`, named or anonymous by `named`) and its recharge rule (充X送Y: bonus "
        "now and in monthly parts, bonus points, coupons, a tier); a rule's bonus needs no `money.adjust`, a "
        "hand `bonus` does. A recharge earns no spend points and no growth. Creates the prepaid contract. "
        "Needs `sales.checkout`; requires `Idempotency-Key` (the same key is the recharge's own key).",
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
        product = (
            card_product_get(self.actor.organisation.pk, data["product"]) if data.get("product") is not None else None
        )
        recharge = wallet_recharge(
            actor=self.actor,
            member=member,
            amount=parse_amount(data["amount"], field="amount"),
            bonus=bonus,
            tender=data["tender"],
            external_ref=data["external_ref"],
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
            product=product,
            named=data["named"],
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


# --- card products and recharge rules (HQ) ----------------------------------------------------------------

CARDS = "card products"


def _optional_fen(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    return None if value is None else parse_amount(value, field=name).fen


def _product_input(data: dict[str, Any]) -> CardProductInput:
    return CardProductInput(
        code=data["code"],
        name=data["name"],
        named_cap_fen=_optional_fen(data, "named_cap"),
        anonymous_cap_fen=_optional_fen(data, "anonymous_cap"),
        cooling_off_days=data["cooling_off_days"],
        terms=data["terms"],
        is_default=data["is_default"],
        active=data["active"],
    )


def _rule_input(data: dict[str, Any]) -> RechargeRuleInput:
    return RechargeRuleInput(
        threshold_fen=parse_amount(data["threshold"], field="threshold").fen,
        bonus_fen=_optional_fen(data, "bonus") or 0,
        instalments=data["instalments"],
        bonus_points=data["bonus_points"],
        name=data["name"],
        coupon_template_id=data["coupon_template_id"],
        coupon_count=data["coupon_count"],
        grant_tier_id=data["grant_tier_id"],
        grant_months=data["grant_months"],
        active=data["active"],
        starts_on=data["starts_on"],
        ends_on=data["ends_on"],
    )


class CardProductListView(ActorMixin, generics.GenericAPIView):
    queryset = CardProduct.objects.none()

    @extend_schema(
        tags=[CARDS],
        summary="The organisation's stored-value card products",
        operation_id="v1_card_products_list",
        responses={200: s.CardProductSerializer(many=True), **problems(403)},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(card_products(self.actor.organisation.pk))
        return self.get_paginated_response(s.CardProductSerializer(page, many=True).data)

    @extend_schema(
        tags=[CARDS],
        summary="Create a card product (HQ)",
        description="Caps (named / anonymous principal), cooling-off days, contract terms, default. Needs `cards.manage`.",
        request=s.CardProductRequestSerializer,
        responses={201: s.CardProductSerializer, **problems(400, 403, 409)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        form = s.CardProductRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        product = card_product_save(actor=self.actor, data=_product_input(dict(form.validated_data)))
        return Response(s.CardProductSerializer(product).data, status=status.HTTP_201_CREATED)


class CardProductDetailView(ActorMixin, generics.GenericAPIView):
    queryset = CardProduct.objects.none()

    @extend_schema(tags=[CARDS], summary="A card product", responses={200: s.CardProductSerializer, **problems(404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.CardProductSerializer(card_product_get(self.actor.organisation.pk, pk)).data)

    @extend_schema(
        tags=[CARDS],
        summary="Change a card product (HQ)",
        description="Send the whole product (the code cannot change). Needs `cards.manage`.",
        request=s.CardProductRequestSerializer,
        responses={200: s.CardProductSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def put(self, request: Request, pk: int) -> Response:
        product = card_product_get(self.actor.organisation.pk, pk)
        form = s.CardProductRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        product = card_product_save(actor=self.actor, product=product, data=_product_input(dict(form.validated_data)))
        return Response(s.CardProductSerializer(product).data)


class RechargeRuleListView(ActorMixin, generics.GenericAPIView):
    queryset = RechargeRule.objects.none()

    @extend_schema(
        tags=[CARDS],
        summary="A card product's recharge rules (充X送Y), the highest threshold first",
        operation_id="v1_card_products_rules_list",
        responses={200: s.RechargeRuleSerializer(many=True), **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        page = self.paginate_queryset(recharge_rules(card_product_get(self.actor.organisation.pk, pk)))
        return self.get_paginated_response(s.RechargeRuleSerializer(page, many=True).data)

    @extend_schema(
        tags=[CARDS],
        summary="Add a recharge rule (HQ)",
        description="Of the active rules valid on the day, the highest threshold not above the amount applies. "
        "Needs `cards.manage`.",
        request=s.RechargeRuleRequestSerializer,
        responses={201: s.RechargeRuleSerializer, **problems(400, 403, 404)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        product = card_product_get(self.actor.organisation.pk, pk)
        form = s.RechargeRuleRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        rule = recharge_rule_save(actor=self.actor, product=product, data=_rule_input(dict(form.validated_data)))
        return Response(s.RechargeRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class RechargeRuleDetailView(ActorMixin, generics.GenericAPIView):
    queryset = RechargeRule.objects.none()

    @extend_schema(tags=[CARDS], summary="A recharge rule", responses={200: s.RechargeRuleSerializer, **problems(404)})
    def get(self, request: Request, pk: int, rule_id: int) -> Response:
        product = card_product_get(self.actor.organisation.pk, pk)
        return Response(s.RechargeRuleSerializer(recharge_rule_get(product, rule_id)).data)

    @extend_schema(
        tags=[CARDS],
        summary="Change a recharge rule (HQ)",
        description="Send the whole rule; switch it off with `active: false` (rules are never deleted). Later "
        "recharges only. Needs `cards.manage`.",
        request=s.RechargeRuleRequestSerializer,
        responses={200: s.RechargeRuleSerializer, **problems(400, 403, 404)},
    )
    @idempotent
    def put(self, request: Request, pk: int, rule_id: int) -> Response:
        product = card_product_get(self.actor.organisation.pk, pk)
        rule = recharge_rule_get(product, rule_id)
        form = s.RechargeRuleRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        rule = recharge_rule_save(
            actor=self.actor, product=product, rule=rule, data=_rule_input(dict(form.validated_data))
        )
        return Response(s.RechargeRuleSerializer(rule).data)


# --- a member's recharge preview, instalments, refunds, transfer ------------------------------------------


class RechargePreviewView(_MemberScoped):
    @extend_schema(
        tags=[WALLET],
        summary="The bonus a recharge would get (the recharge rule's preview)",
        description="Today in the acting store. `product`: a card product id (default: the default product).",
        parameters=[
            OpenApiParameter("amount", str, required=True, description="The recharge, e.g. 3000.00."),
            OpenApiParameter("product", int, description="Card product id."),
        ],
        responses={200: s.RechargePreviewSerializer, **problems(400, 403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        self.member(pk)
        amount = parse_amount(request.query_params.get("amount"), field="amount")
        raw = (request.query_params.get("product") or "").strip()
        organisation_id = self.actor.organisation.pk
        product = card_product_get(organisation_id, raw) if raw else card_product_default(organisation_id)
        plan = recharge_preview(product=product, amount=amount, on=local_today(self.actor.store))
        text = plan.describe()
        body = {
            "rule_id": plan.rule.pk if plan.rule is not None else None,
            "now": plan.now,
            "pending": plan.pending,
            "total": plan.total,
            "points": plan.points,
            "later": plan.later,
            "text_zh": text["zh-hans"],
            "text_en": text["en"],
        }
        return Response(s.RechargePreviewSerializer(body).data)


class InstalmentsView(_MemberScoped):
    @extend_schema(
        tags=[WALLET],
        summary="A member's bonus instalments, the next due first",
        operation_id="v1_members_wallet_instalments_list",
        parameters=[OpenApiParameter("pending", bool, description="Only those not released yet.")],
        responses={200: s.InstalmentSerializer(many=True), **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        pending = request.query_params.get("pending") in {"1", "true", "yes"}
        page = self.paginate_queryset(member_instalments(self.member(pk), pending_only=pending))
        return self.get_paginated_response(s.InstalmentSerializer(page, many=True).data)


class RechargeRefundView(_MemberScoped):
    @extend_schema(
        tags=[WALLET],
        summary="Cooling-off refund of a recharge (S-14)",
        description="Within the product's cooling-off days and only if nothing left her principal or bonus since: "
        "the principal back by `tender`, the bonus (released and pending) cancelled, the rule's points taken "
        "back and its unused coupons voided. Refusals: `wallet.cooling_off_over`, `wallet.recharge_used`, "
        "`wallet.recharge_refunded`. Needs `prepaid.refund`; requires `Idempotency-Key`.",
        request=s.WalletRefundRequestSerializer,
        responses={200: s.RechargeSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int, recharge_id: int) -> Response:
        member = self.member(pk)
        recharge = member_recharge_get(member, recharge_id)
        form = s.WalletRefundRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        recharge = wallet_recharge_refund(
            actor=self.actor,
            recharge=recharge,
            tender=form.validated_data["tender"],
            reason=form.validated_data["reason"],
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        )
        return Response(s.RechargeSerializer({"recharge": recharge, "wallet": _wallet(member)}).data)


class WalletCloseView(_MemberScoped):
    @extend_schema(
        tags=[WALLET],
        summary="Close the member's stored value with a refund (退卡结清, S-15)",
        description="Pays the remaining principal back by `tender`, forfeits the released bonus and cancels the "
        "pending parts: one `wallet.close` journal. Refused `wallet.nothing_to_close`. Needs `prepaid.refund`; "
        "requires `Idempotency-Key`.",
        request=s.WalletRefundRequestSerializer,
        responses={201: s.WalletClosureSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int) -> Response:
        member = self.member(pk)
        form = s.WalletRefundRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        closure = wallet_close(
            actor=self.actor,
            member=member,
            tender=form.validated_data["tender"],
            reason=form.validated_data["reason"],
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        )
        return Response(s.WalletClosureSerializer(closure).data, status=status.HTTP_201_CREATED)


class WalletTransferView(_MemberScoped):
    @extend_schema(
        tags=[WALLET],
        summary="Move the member's whole stored value to another member",
        description="Principal, bonus and pending bonus (with the pending instalments): one `wallet.transfer` "
        "journal, through her card: only where the store allows transfers (`card.transfer_not_allowed`), with her "
        "card active, and with her payment password or a code when she needs one to pay. Needs `prepaid.refund`; "
        "requires `Idempotency-Key`.",
        request=s.WalletTransferRequestSerializer,
        responses={201: s.WalletTransferSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int) -> Response:
        source = self.member(pk)
        form = s.WalletTransferRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        target = self.member(form.validated_data["target_id"])
        card = member_live_card(source)
        if card is None:
            raise NotFound(
                "card.not_found",
                zh="转赠：该会员没有会员卡，储值余额只能通过会员卡转赠。",
                en="transfer: the member has no card; stored value is transferred through her card only.",
                field="member",
            )
        # The card layer's checks (the store's setting, the card's status, her password) apply to every transfer.
        journal = card_transfer_balance(
            actor=self.actor,
            card=card,
            target=target,
            reason=form.validated_data["reason"],
            password=form.validated_data.get("password", ""),
            code=form.validated_data.get("code", ""),
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        )
        body = {"journal": journal, "source": _wallet(source), "target": _wallet(target)}
        return Response(s.WalletTransferSerializer(body).data, status=status.HTTP_201_CREATED)
