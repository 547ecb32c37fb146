"""Members (会员). Every answer is masked; full values only through the audited reveal."""

from __future__ import annotations

from django.utils.cache import patch_cache_control
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from meiye.api import serializers as s
from meiye.api.idempotency import idempotency_exempt, idempotent
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.core.errors import not_found, required
from meiye.members.models import Member
from meiye.members.selectors import member_find_by_phone, member_get, member_search, member_view
from meiye.members.services import (
    consent_record,
    member_create,
    member_erase,
    member_export,
    member_reveal,
    member_update,
)

TAG = "members"


class MemberViewSet(ActorMixin, viewsets.GenericViewSet):
    """Members whose home store the staff member may see (HQ roles: the whole organisation)."""

    # Only for the schema (path parameter type). Every read goes through members.selectors.
    queryset = Member.objects.none()

    def _member(self, pk: str) -> Member:
        return member_get(self.actor, pk)

    def _shaped(self, member: Member) -> dict[str, object]:
        data: dict[str, object] = s.MemberSerializer(member_view(self.actor, member)).data
        return data

    @extend_schema(
        tags=[TAG],
        summary="List and search members",
        parameters=[
            OpenApiParameter(
                "q", str, description="Full phone (exact), member no. (prefix, e.g. M0001) or name (prefix)."
            ),
            OpenApiParameter("tag", str, description="Only members with this tag."),
        ],
        responses={200: s.MemberSummarySerializer(many=True), **problems(403)},
    )
    def list(self, request: Request) -> Response:
        members = member_search(
            self.actor, request.query_params.get("q", ""), tag=request.query_params.get("tag", ""), limit=0
        ).prefetch_related("tags")
        page = self.paginate_queryset(members)
        return self.get_paginated_response(s.MemberSummarySerializer(page, many=True).data)

    @extend_schema(
        tags=[TAG],
        summary="Register a member",
        request=s.MemberCreateSerializer,
        responses={201: s.MemberSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        form = s.MemberCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        member = member_create(
            actor=self.actor,
            data=form.to_member_input(),
            consents=form.consent_list(),
            consent_version=form.validated_data["consent_version"],
            consent_channel=form.validated_data["consent_channel"],
        )
        return Response(self._shaped(member), status=status.HTTP_201_CREATED)

    @extend_schema(tags=[TAG], summary="A member (masked)", responses={200: s.MemberSerializer, **problems(403, 404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self._shaped(self._member(pk)))

    @extend_schema(
        tags=[TAG],
        summary="Change a member",
        description="Only the fields sent change. Empty string clears email, address, ID number or notes.",
        request=s.MemberUpdateSerializer,
        responses={200: s.MemberSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def partial_update(self, request: Request, pk: str) -> Response:
        member = self._member(pk)
        form = s.MemberUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        member = member_update(actor=self.actor, member=member, data=form.to_member_input())
        return Response(self._shaped(member))

    @extend_schema(
        tags=[TAG],
        summary="Find a member by full phone number",
        description="Exact match through the blind index; 404 `member.not_found` when there is none.",
        parameters=[OpenApiParameter("phone", str, required=True, description="Full phone, e.g. 13812345678.")],
        responses={200: s.MemberSerializer, **problems(400, 403, 404)},
    )
    @action(detail=False, methods=["get"])
    def lookup(self, request: Request) -> Response:
        phone = request.query_params.get("phone", "").strip()
        if not phone:
            raise required("phone", "手机号", "phone")
        member = member_find_by_phone(self.actor, phone)
        if member is None:
            raise not_found("member.not_found", "会员", "Member")
        return Response(self._shaped(member))

    @extend_schema(
        tags=[TAG],
        summary="Reveal a masked value (audited)",
        description="Answers the full value of one field and records who saw it in the audit log.",
        request=s.RevealRequestSerializer,
        responses={200: s.RevealResultSerializer, **problems(400, 403, 404)},
    )
    @action(detail=True, methods=["post"])
    @idempotency_exempt("plaintext personal data must not be stored; every reveal is audited on its own")
    def reveal(self, request: Request, pk: str) -> Response:
        member = self._member(pk)
        form = s.RevealRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        field = form.validated_data["field"]
        value = member_reveal(actor=self.actor, member=member, field=field)
        response = Response(s.RevealResultSerializer({"field": field, "value": value}).data)
        patch_cache_control(response, no_store=True, private=True)  # a full value must not sit in a cache
        return response

    @extend_schema(
        tags=[TAG],
        summary="Export everything held about a member (audited)",
        description="The member's data as JSON (personal-information portability). Needs `member.export`.",
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="format meiye.member_export.v1"),
            **problems(403, 404),
        },
    )
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str) -> Response:
        member = self._member(pk)
        data = member_export(actor=self.actor, member=member)
        response = Response(data)
        response["Content-Disposition"] = f'attachment; filename="member-{member.member_no}.json"'
        patch_cache_control(response, no_store=True, private=True)
        return response

    @extend_schema(
        tags=[TAG],
        summary="Erase a member (right to be forgotten)",
        description="Anonymises the profile; what the law requires is kept, restricted. Needs `member.erase`.",
        request=s.EraseRequestSerializer,
        responses={200: s.ErasureSerializer, **problems(400, 403, 404)},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def erase(self, request: Request, pk: str) -> Response:
        member = self._member(pk)
        form = s.EraseRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        record = member_erase(actor=self.actor, member=member, reason=form.validated_data["reason"])
        return Response(s.ErasureSerializer(record).data)

    @extend_schema(
        tags=[TAG],
        summary="Record a consent or its withdrawal",
        request=s.ConsentRequestSerializer,
        responses={201: s.ConsentRecordSerializer, **problems(400, 403, 404)},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def consents(self, request: Request, pk: str) -> Response:
        member = self._member(pk)
        form = s.ConsentRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        record = consent_record(
            actor=self.actor,
            member=member,
            purpose=data["purpose"],
            granted=data["granted"],
            text_version=data["text_version"],
            channel=data["consent_channel"],
        )
        return Response(s.ConsentRecordSerializer(record).data, status=status.HTTP_201_CREATED)
