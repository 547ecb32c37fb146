"""API endpoints (v1): gift cards (礼品卡). Routes are collected in ``urlpatterns`` and included by ``meiye.api.urls``.

- ``POST /gift-cards/``: sell (``sales.checkout``). The answer holds the codes in full, so it is NOT stored by the
  HTTP idempotency layer; the sale keeps its own ``Idempotency-Key`` (required): a retry returns the same cards.
- ``POST /gift-cards/lookup/``: a card by its code, sent in the body so that codes never land in access logs.
- ``GET /gift-cards/``, ``GET /gift-cards/{id}/``: cards sold in the stores you may see, codes masked.
- ``POST /gift-cards/{id}/void/``: take back an unused card sold by mistake (``money.adjust``).
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from meiye.api import serializers_giftcards as s
from meiye.api.fields import parse_amount
from meiye.api.idempotency import IDEMPOTENCY_HEADER, idempotency_exempt, idempotent, key_required_error
from meiye.api.params import choice_param, date_param
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.core.errors import ValidationFailed
from meiye.core.money import Money
from meiye.giftcards.models import GiftCard, GiftCardStatus
from meiye.giftcards.selectors import (
    CardFilter,
    gift_card_balance,
    gift_card_balances,
    gift_card_for_code,
    gift_card_get,
    gift_card_uses,
    gift_cards,
)
from meiye.giftcards.services import gift_card_sell, gift_card_void
from meiye.members.selectors import member_get
from meiye.org.selectors import store_get

TAG = "gift cards"


def _detail(card: GiftCard) -> dict[str, Any]:
    body = {"card": card, "balance": gift_card_balance(card), "uses": list(gift_card_uses(card))}
    data: dict[str, Any] = s.GiftCardDetailSerializer(body).data
    return data


class GiftCardListView(ActorMixin, GenericAPIView):
    queryset = GiftCard.objects.none()  # only for the schema; reads go through giftcards.selectors
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG],
        operation_id="gift_cards_list",
        summary="Gift cards sold in the stores you may see",
        description="Newest first, codes masked. Needs `sales.checkout` or `money.adjust`.",
        parameters=[
            OpenApiParameter("status", str, enum=GiftCardStatus.values),
            OpenApiParameter("store_id", int, description="Only cards sold in this store."),
            OpenApiParameter("sold_from", str, description="Sold on or after this day (YYYY-MM-DD)."),
            OpenApiParameter("sold_to", str, description="Sold on or before this day (YYYY-MM-DD)."),
            OpenApiParameter("expires_before", str, description="Last day before this day (YYYY-MM-DD)."),
        ],
        responses={200: s.GiftCardSerializer(many=True), **problems(400, 403, 404)},
    )
    def get(self, request: Request) -> Response:
        store_id = _int_param(request, "store_id")
        if store_id is not None:
            store_id = store_get(self.actor, store_id).pk
        filters = CardFilter(
            status=choice_param(request, "status", GiftCardStatus.values),
            store_id=store_id,
            sold_from=date_param(request, "sold_from"),
            sold_to=date_param(request, "sold_to"),
            expires_before=date_param(request, "expires_before"),
        )
        page = list(self.paginate_queryset(gift_cards(self.actor, filters)) or [])
        balances = gift_card_balances(page)
        rows = [{"card": card, "balance": Money(balances[card.pk])} for card in page]
        return self.get_paginated_response(s.GiftCardSerializer(rows, many=True).data)

    @extend_schema(
        tags=[TAG],
        summary="Sell gift cards in the acting store",
        description="One `giftcards.sell` journal: the tender's store account −price×quantity, `gift_card_discount` "
        "−(face−price)×quantity, each card +face. The answer holds each card's full `code` — show it once, to print "
        "or hand over; it is not stored by the HTTP idempotency layer. Refusals: `giftcard.invalid_price`, "
        "`giftcard.invalid_face`, `giftcard.invalid_quantity`, `giftcard.invalid_expiry`, `giftcard.invalid_tender`. "
        "Needs `sales.checkout`; requires `Idempotency-Key` (the sale's own key: a retry returns the same cards).",
        request=s.GiftCardSellRequestSerializer,
        responses={201: s.GiftCardSellResultSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotency_exempt("the answer holds gift-card codes in plaintext; the sale keeps its own idempotency key")
    def post(self, request: Request) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            raise key_required_error()
        form = s.GiftCardSellRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        buyer = member_get(self.actor, data["buyer_id"]) if data.get("buyer_id") is not None else None
        cards = gift_card_sell(
            actor=self.actor,
            face=parse_amount(data["face"], field="face"),
            price=parse_amount(data["price"], field="price"),
            tender=data["tender"],
            external_ref=data["external_ref"],
            multi_use=data["multi_use"],
            expires_on=data["expires_on"],
            buyer=buyer,
            quantity=data["quantity"],
            idempotency_key=key,
        )
        balances = gift_card_balances(cards)
        body = {
            "sale": cards[0].sale,
            "cards": [{"card": card, "balance": Money(balances[card.pk])} for card in cards],
        }
        response = Response(s.GiftCardSellResultSerializer(body).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class GiftCardLookupView(ActorMixin, GenericAPIView):
    queryset = GiftCard.objects.none()
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG],
        summary="Look a gift card up by its code",
        description="The code goes in the body, not the URL, so it never lands in access logs. Any store of the "
        "organisation may look up (and take) a card. 404 `giftcard.not_found` for an unknown code, whether or "
        "not it exists elsewhere. Needs `sales.checkout`. Writes nothing.",
        request=s.GiftCardLookupRequestSerializer,
        responses={200: s.GiftCardDetailSerializer, **problems(400, 403, 404)},
    )
    @idempotency_exempt("a read: writes nothing, and the request holds a code")
    def post(self, request: Request) -> Response:
        form = s.GiftCardLookupRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return Response(_detail(gift_card_for_code(self.actor, form.validated_data["code"])))


class GiftCardDetailView(ActorMixin, GenericAPIView):
    queryset = GiftCard.objects.none()

    @extend_schema(
        tags=[TAG],
        operation_id="gift_cards_retrieve",
        summary="A gift card (code masked) with its uses",
        responses={200: s.GiftCardDetailSerializer, **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(_detail(gift_card_get(self.actor, pk)))


class GiftCardVoidView(ActorMixin, GenericAPIView):
    queryset = GiftCard.objects.none()
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG],
        summary="Void a gift card sold by mistake",
        description="Only an unused card: `giftcards.void` takes the face value off the card and gives the price "
        "back through the sale's tender. Refusals: `giftcard.already_used`, `giftcard.expired`, `giftcard.void`. "
        "Needs `money.adjust`; requires `Idempotency-Key`.",
        request=s.GiftCardVoidRequestSerializer,
        responses={200: s.GiftCardDetailSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int) -> Response:
        form = s.GiftCardVoidRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        card = gift_card_void(
            actor=self.actor,
            card=gift_card_get(self.actor, pk),
            reason=form.validated_data["reason"],
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        )
        return Response(_detail(card))


def _int_param(request: Request, name: str) -> int | None:
    value = (request.query_params.get(name) or "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ValidationFailed(
            "input.invalid_number", zh=f"{name}：应为整数。", en=f"{name}: must be a whole number.", field=name
        )
    return int(value)


urlpatterns: list[URLPattern | URLResolver] = [
    path("gift-cards/", GiftCardListView.as_view(), name="gift-card-list"),
    path("gift-cards/lookup/", GiftCardLookupView.as_view(), name="gift-card-lookup"),
    path("gift-cards/<int:pk>/", GiftCardDetailView.as_view(), name="gift-card-detail"),
    path("gift-cards/<int:pk>/void/", GiftCardVoidView.as_view(), name="gift-card-void"),
]
