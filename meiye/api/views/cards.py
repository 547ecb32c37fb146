"""API endpoints (v1): member cards (会员卡), card settings, import of old numbers, one-time codes and the
payment password.

Cards are found through their member (``members.selectors.member_get``): a card of a member of a store you
may not see is 404 ``card.not_found``, a member 404 ``member.not_found``. Replacement, closing and transfer
move money and require an ``Idempotency-Key``; setting a payment password is exempt (nothing derived from the
password is stored outside its hash). No answer ever carries a password or a code.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from meiye.api import serializers_cards as s
from meiye.api.fields import parse_amount
from meiye.api.idempotency import IDEMPOTENCY_HEADER, idempotency_exempt, idempotent
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.cards.models import MemberCard
from meiye.cards.selectors import (
    card_for_number,
    card_get,
    card_settings,
    member_cards,
    payment_auth_required,
    payment_password_state,
)
from meiye.cards.services import (
    card_bind,
    card_close,
    card_freeze,
    card_issue,
    card_replace,
    card_report_lost,
    card_settings_set,
    card_transfer_balance,
    card_unfreeze,
    cards_import,
    payment_code_send,
    payment_password_set,
)
from meiye.core.errors import ValidationFailed
from meiye.members.models import Member
from meiye.members.selectors import member_get
from meiye.org.selectors import store_get
from meiye.wallet.models import CardProduct

TAG = "cards"


def _member_cards(actor: Any, member: Member) -> dict[str, Any]:
    state = payment_password_state(member)
    return {
        "member_id": member.pk,
        "has_password": bool(state and state.is_set),
        "auth_required": payment_auth_required(member, actor.store),
        "cards": list(member_cards(member)),
    }


def _card(card: MemberCard) -> dict[str, Any]:
    data: dict[str, Any] = s.CardSerializer(card).data
    return data


def _key(request: Request) -> str:
    return request.headers.get(IDEMPOTENCY_HEADER, "")


class _Scoped(ActorMixin, generics.GenericAPIView):
    queryset: Any = MemberCard.objects.none()  # only for the schema; reads go through cards.selectors

    def card(self, pk: int) -> MemberCard:
        return card_get(self.actor, pk)

    def member(self, pk: int) -> Member:
        return member_get(self.actor, pk)

    def form(self, serializer: type[Any], request: Request) -> dict[str, Any]:
        form = serializer(data=request.data)
        form.is_valid(raise_exception=True)
        data: dict[str, Any] = form.validated_data
        return data


class MemberCardsView(_Scoped):
    queryset = Member.objects.none()

    @extend_schema(
        tags=[TAG],
        summary="A member's cards",
        description="Live card first, then the replaced and closed ones, newest first; whether she set a payment "
        "password and whether paying from stored value in the acting store needs one (or a code).",
        responses={200: s.MemberCardsSerializer, **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.MemberCardsSerializer(_member_cards(self.actor, self.member(pk))).data)

    @extend_schema(
        tags=[TAG],
        summary="Issue a card to a member",
        description="A virtual card gets a generated number (MY + 8 digits); a physical card takes `number`. "
        "Refused 409 `card.already_has_card` when she holds a live card. Needs `cards.service`.",
        request=s.CardIssueRequestSerializer,
        responses={201: s.CardSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int) -> Response:
        member = self.member(pk)
        data = self.form(s.CardIssueRequestSerializer, request)
        product = None
        if data["product_id"] is not None:
            product = CardProduct(pk=data["product_id"], organisation_id=self.actor.organisation.pk)
        card = card_issue(
            actor=self.actor,
            member=member,
            product=product,
            medium=data["medium"],
            number=data["number"],
            named=data["named"],
            idempotency_key=_key(request),
        )
        return Response(_card(card), status=status.HTTP_201_CREATED)


class CardLookupView(_Scoped):
    @extend_schema(
        tags=[TAG],
        summary="Find a card by its number or an imported old number",
        description="A replaced card's number is 400 `card.replaced` (with the new number), a closed card's "
        "`card.closed`: the old number never works again.",
        parameters=[OpenApiParameter("number", str, required=True)],
        responses={200: s.CardSerializer, **problems(400, 403, 404)},
    )
    def get(self, request: Request) -> Response:
        return Response(_card(card_for_number(self.actor, request.query_params.get("number", ""))))


class CardBindView(_Scoped):
    @extend_schema(
        tags=[TAG],
        summary="Put a physical card's number on a virtual card",
        description="The virtual number keeps finding the card.",
        request=s.CardBindRequestSerializer,
        responses={200: s.CardSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        data = self.form(s.CardBindRequestSerializer, request)
        return Response(_card(card_bind(actor=self.actor, card=self.card(pk), number=data["number"])))


class _StatusView(_Scoped):
    operation: Any = None

    def change(self, request: Request, pk: int) -> Response:
        data = self.form(s.ReasonRequestSerializer, request)
        card = type(self).operation(actor=self.actor, card=self.card(pk), reason=data["reason"])
        return Response(_card(card))


class CardFreezeView(_StatusView):
    operation = staticmethod(card_freeze)

    @extend_schema(
        tags=[TAG],
        summary="Freeze a card (reason required)",
        description="Stored-value payment of the member stops (`card.frozen`) until the card is unfrozen.",
        request=s.ReasonRequestSerializer,
        responses={200: s.CardSerializer, **problems(400, 403, 404)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        return self.change(request, pk)


class CardUnfreezeView(_StatusView):
    operation = staticmethod(card_unfreeze)

    @extend_schema(
        tags=[TAG],
        summary="Unfreeze a card, or cancel its loss report (reason required)",
        request=s.ReasonRequestSerializer,
        responses={200: s.CardSerializer, **problems(400, 403, 404)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        return self.change(request, pk)


class CardLostView(_StatusView):
    operation = staticmethod(card_report_lost)

    @extend_schema(
        tags=[TAG],
        summary="Report a card lost (S-18)",
        description="Every stored-value payment of the member is refused (`card.lost`) until the card is "
        "replaced or found; her balance stays visible. Audited.",
        request=s.ReasonRequestSerializer,
        responses={200: s.CardSerializer, **problems(400, 403, 404)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        return self.change(request, pk)


class CardReplaceView(_Scoped):
    @extend_schema(
        tags=[TAG],
        summary="Replace a card (S-18)",
        description="A new card carries everything (balances are the member's); the old number never works again. "
        "The acting store's replacement fee, if set, is paid by `fee_tender` (`cards.replace_fee` journal); "
        "from stored value it needs her password or code when she has one. Requires `Idempotency-Key`.",
        request=s.CardReplaceRequestSerializer,
        responses={201: s.CardSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int) -> Response:
        data = self.form(s.CardReplaceRequestSerializer, request)
        card = card_replace(
            actor=self.actor,
            card=self.card(pk),
            medium=data["medium"],
            number=data["number"],
            fee_tender=data["fee_tender"],
            password=data["password"],
            code=data["code"],
            reason=data["reason"],
            idempotency_key=_key(request),
        )
        return Response(_card(card), status=status.HTTP_201_CREATED)


class CardCloseView(_Scoped):
    @extend_schema(
        tags=[TAG],
        summary="Close a card and the member's stored value",
        description="`wallet.close`: the remaining principal is paid back by `tender`, bonus forfeited, pending "
        "bonus cancelled; the card's number never works again. Needs `prepaid.refund`; requires `Idempotency-Key`.",
        request=s.CardCloseRequestSerializer,
        responses={200: s.CardCloseSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int) -> Response:
        data = self.form(s.CardCloseRequestSerializer, request)
        card = self.card(pk)
        closure = card_close(
            actor=self.actor, card=card, tender=data["tender"], reason=data["reason"], idempotency_key=_key(request)
        )
        card.refresh_from_db()
        return Response(s.CardCloseSerializer({"card": card, "closure": closure}).data)


class CardTransferView(_Scoped):
    @extend_schema(
        tags=[TAG],
        summary="Transfer the card holder's whole stored value to another member",
        description="Only where the acting store allows it (`card.transfer_not_allowed`). One `wallet.transfer` "
        "journal. Needs `prepaid.refund`; requires `Idempotency-Key`.",
        request=s.CardTransferRequestSerializer,
        responses={200: s.CardTransferSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int) -> Response:
        data = self.form(s.CardTransferRequestSerializer, request)
        card = self.card(pk)
        target = self.member(data["target_member_id"])
        journal = card_transfer_balance(
            actor=self.actor,
            card=card,
            target=target,
            reason=data["reason"],
            password=data["password"],
            code=data["code"],
            idempotency_key=_key(request),
        )
        body = {"journal_id": journal.pk, "source_member_id": card.member_id, "target_member_id": target.pk}
        return Response(s.CardTransferSerializer(body).data)


class CardImportView(_Scoped):
    @extend_schema(
        tags=[TAG],
        summary="Import old card numbers (dry run, then for real)",
        description="Each bad row is reported with its line, column and rule (zh and en). A real import with any "
        "bad row writes nothing and answers 400 `cards.import_invalid` with `extra.errors`.",
        request=s.CardImportRequestSerializer,
        responses={200: s.CardImportSerializer, **problems(400, 403)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = self.form(s.CardImportRequestSerializer, request)
        result = cards_import(self.actor, data["csv"], dry_run=data["dry_run"])
        body = {
            "dry_run": result.dry_run,
            "ok": result.ok,
            "cards_created": result.cards_created,
            "aliases_created": result.aliases_created,
            "rows": result.rows,
            "errors": [e.as_dict() for e in result.errors],
        }
        return Response(s.CardImportSerializer(body).data)


class PaymentCodeView(_Scoped):
    queryset = Member.objects.none()

    @extend_schema(
        tags=[TAG],
        summary="Send a one-time code to the member's phone",
        description="6 digits, valid 5 minutes, by SMS (`wallet.payment_code`). One a minute, 10 a day per "
        "member (`cards.code_too_soon` with `extra.retry_after`, `cards.code_daily_limit`). The code is never "
        "returned or shown to staff.",
        request=s.PaymentCodeRequestSerializer,
        responses={201: s.PaymentCodeSerializer, **problems(400, 403, 404)},
    )
    @idempotency_exempt("each send is a new code, rate-limited; a stored answer must not hide a refused send")
    def post(self, request: Request, pk: int) -> Response:
        data = self.form(s.PaymentCodeRequestSerializer, request)
        record = payment_code_send(actor=self.actor, member=self.member(pk), purpose=data["purpose"])
        body = {"id": record.pk, "purpose": record.purpose, "expires_at": record.expires_at}
        return Response(s.PaymentCodeSerializer(body).data, status=status.HTTP_201_CREATED)


class PaymentPasswordView(_Scoped):
    queryset = Member.objects.none()

    @extend_schema(
        tags=[TAG],
        summary="Set or reset the member's payment password",
        description="6 digits, not trivial (`cards.password_trivial`), with the code of purpose `password` sent "
        "to her phone. Answers 204: the password is never returned.",
        request=s.PaymentPasswordRequestSerializer,
        responses={204: None, **problems(400, 403, 404)},
    )
    @idempotency_exempt("the request holds the password: nothing derived from it may be stored")
    def post(self, request: Request, pk: int) -> Response:
        data = self.form(s.PaymentPasswordRequestSerializer, request)
        payment_password_set(actor=self.actor, member=self.member(pk), password=data["password"], code=data["code"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class CardSettingsView(ActorMixin, generics.GenericAPIView):
    queryset = MemberCard.objects.none()

    def _body(self, store_id: int) -> dict[str, Any]:
        store = store_get(self.actor, store_id)
        settings = card_settings(store)
        data: dict[str, Any] = s.CardSettingsSerializer(
            {
                "store_id": store.pk,
                "replacement_fee_fen": settings.replacement_fee_fen,
                "allow_balance_transfer": settings.allow_balance_transfer,
                "require_payment_auth": settings.require_payment_auth,
            }
        ).data
        return data

    @extend_schema(
        tags=[TAG],
        summary="A store's card settings",
        responses={200: s.CardSettingsSerializer, **problems(403, 404)},
    )
    def get(self, request: Request, store_id: int) -> Response:
        return Response(self._body(store_id))

    @extend_schema(
        tags=[TAG],
        summary="Set a store's card settings",
        description="Replacement fee, balance transfers, and whether every member needs a password or a code to "
        "pay from stored value. Needs `store.manage`; audited.",
        request=s.CardSettingsRequestSerializer,
        responses={200: s.CardSettingsSerializer, **problems(400, 403, 404)},
    )
    @idempotent
    def put(self, request: Request, store_id: int) -> Response:
        form = s.CardSettingsRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if data.get("replacement_fee") is None:
            raise ValidationFailed(
                "input.required",
                zh="补卡工本费：必填。",
                en="replacement_fee: this field is required.",
                field="replacement_fee",
            )
        card_settings_set(
            actor=self.actor,
            store=store_get(self.actor, store_id),
            replacement_fee=parse_amount(data["replacement_fee"], field="replacement_fee"),
            allow_balance_transfer=data["allow_balance_transfer"],
            require_payment_auth=data["require_payment_auth"],
        )
        return Response(self._body(store_id))


urlpatterns: list[URLPattern | URLResolver] = [
    path("members/<int:pk>/cards/", MemberCardsView.as_view(), name="member-cards"),
    path("members/<int:pk>/payment-code/", PaymentCodeView.as_view(), name="member-payment-code"),
    path("members/<int:pk>/payment-password/", PaymentPasswordView.as_view(), name="member-payment-password"),
    path("cards/lookup/", CardLookupView.as_view(), name="card-lookup"),
    path("cards/import/", CardImportView.as_view(), name="card-import"),
    path("cards/<int:pk>/bind/", CardBindView.as_view(), name="card-bind"),
    path("cards/<int:pk>/freeze/", CardFreezeView.as_view(), name="card-freeze"),
    path("cards/<int:pk>/unfreeze/", CardUnfreezeView.as_view(), name="card-unfreeze"),
    path("cards/<int:pk>/lost/", CardLostView.as_view(), name="card-lost"),
    path("cards/<int:pk>/replace/", CardReplaceView.as_view(), name="card-replace"),
    path("cards/<int:pk>/close/", CardCloseView.as_view(), name="card-close"),
    path("cards/<int:pk>/transfer/", CardTransferView.as_view(), name="card-transfer"),
    path("stores/<int:store_id>/card-settings/", CardSettingsView.as_view(), name="store-card-settings"),
]
