"""API endpoints (v1): prepaid contracts (read, sign, PDF, a member's list) and the prepaid liability report.

Contracts are found through ``contracts.selectors`` (a contract of a member of a store you may not see is 404
``contract.not_found``; a member's list checks the member first, ``member.not_found``).
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from meiye.api import serializers_contracts as s
from meiye.api.idempotency import idempotent
from meiye.api.params import date_param
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.cards.liability import prepaid_liability
from meiye.contracts.models import Contract
from meiye.contracts.pdf import contract_pdf
from meiye.contracts.selectors import contract_get, member_contracts
from meiye.contracts.services import contract_sign, signature_png_from_text
from meiye.core.errors import ValidationFailed
from meiye.members.models import Member
from meiye.members.selectors import member_get

CONTRACTS = "contracts"
REPORTS = "reports"


class PDFRenderer(BaseRenderer):
    """Lets clients ask for ``Accept: application/pdf``; errors still go out as problem+json."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, bytes):
            return data
        return json.dumps(data, ensure_ascii=False).encode()


class _ContractScoped(ActorMixin, generics.GenericAPIView):
    queryset = Contract.objects.none()  # only for the schema; reads go through selectors


class ContractDetailView(_ContractScoped):
    @extend_schema(
        tags=[CONTRACTS],
        summary="A prepaid contract",
        description="Its frozen text in Chinese and English, the price, the status and who signed when. "
        "Needs `member.view`.",
        responses={200: s.ContractSerializer, **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.ContractSerializer(contract_get(self.actor, pk)).data)


class ContractSignView(_ContractScoped):
    @extend_schema(
        tags=[CONTRACTS],
        summary="The member signs a contract",
        description="Stores the signature PNG (encrypted) and marks the contract signed. A signed contract is "
        "never signed again (409 `contract.already_signed`). A bad image is 400 `contract.signature_invalid`. "
        "Needs `sales.checkout`; an `Idempotency-Key` makes a retry return the first answer.",
        request=s.ContractSignRequestSerializer,
        responses={200: s.ContractSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent()
    def post(self, request: Request, pk: int) -> Response:
        contract = contract_get(self.actor, pk)
        form = s.ContractSignRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        signed = contract_sign(
            actor=self.actor,
            contract=contract,
            signature_png=signature_png_from_text(form.validated_data["signature_png"]),
        )
        return Response(s.ContractSerializer(signed).data)


class ContractPdfView(_ContractScoped):
    renderer_classes = [JSONRenderer, PDFRenderer]

    @extend_schema(
        tags=[CONTRACTS],
        summary="A prepaid contract as PDF (A4, Chinese and English, the signature if signed)",
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The contract (A4)."),
            **problems(403, 404),
        },
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        contract = contract_get(self.actor, pk)
        response = HttpResponse(contract_pdf(contract), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{contract.number}.pdf"'
        response["Cache-Control"] = "private, no-store"
        return response


class MemberContractsView(ActorMixin, generics.GenericAPIView):
    queryset = Member.objects.none()

    @extend_schema(
        tags=[CONTRACTS],
        summary="A member's prepaid contracts, newest first",
        responses={200: s.ContractSerializer(many=True), **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        member = member_get(self.actor, pk)
        rows = member_contracts(self.actor, member).select_related("member")
        return Response(s.ContractSerializer(rows, many=True).data)


class PrepaidLiabilityView(ActorMixin, generics.GenericAPIView):
    @extend_schema(
        tags=[REPORTS],
        summary="The prepaid liability report (预付卡负债表)",
        description="Per store and in total: stored value (principal, bonus, pending bonus), package sessions at "
        "their value, gift-card balances, counted from the ledger up to the end of `date` in each store's time "
        "zone. Needs `prepaid.report`; only the stores one may see.",
        parameters=[
            OpenApiParameter("store", int, required=False, description="One store (default: every visible store)."),
            OpenApiParameter("date", OpenApiTypes.DATE, required=False, description="YYYY-MM-DD (default: today)."),
        ],
        responses={200: s.LiabilityReportSerializer, **problems(400, 403, 404)},
    )
    def get(self, request: Request) -> Response:
        store = (request.query_params.get("store") or "").strip()
        if store and not store.isdigit():
            raise ValidationFailed(
                "input.invalid", zh=f"门店：{store!r} 无效。", en=f"store: {store!r} is not a store id.", field="store"
            )
        on = date_param(request, "date")
        report = prepaid_liability(self.actor, on=on, store=int(store) if store else None)
        return Response(s.LiabilityReportSerializer(report).data)


urlpatterns: list[URLPattern | URLResolver] = [
    path("contracts/<int:pk>/", ContractDetailView.as_view(), name="contract-detail"),
    path("contracts/<int:pk>/sign/", ContractSignView.as_view(), name="contract-sign"),
    path("contracts/<int:pk>/pdf/", ContractPdfView.as_view(), name="contract-pdf"),
    path("members/<int:pk>/contracts/", MemberContractsView.as_view(), name="member-contracts"),
    path("reports/prepaid-liability/", PrepaidLiabilityView.as_view(), name="prepaid-liability"),
]
