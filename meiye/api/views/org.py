"""Stores (门店), staff (员工) and the caller herself. Read only."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from meiye.api import serializers as s
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.org.models import Staff, Store
from meiye.org.selectors import staff_get, staff_list, store_get, stores_visible


class StoreViewSet(ActorMixin, viewsets.GenericViewSet):
    """The stores the staff member may see (HQ roles: every store of the organisation)."""

    queryset = Store.objects.none()  # only for the schema; reads go through org.selectors

    @extend_schema(
        tags=["stores"], summary="Stores you may see", responses={200: s.StoreSerializer(many=True), **problems()}
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(stores_visible(self.actor).order_by("id"))
        return self.get_paginated_response(s.StoreSerializer(page, many=True).data)

    @extend_schema(tags=["stores"], summary="A store", responses={200: s.StoreSerializer, **problems(404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.StoreSerializer(store_get(self.actor, pk)).data)


class StaffViewSet(ActorMixin, viewsets.GenericViewSet):
    """Staff of the stores you may see. Needs `staff.view` (store managers, finance, HQ)."""

    queryset = Staff.objects.none()  # only for the schema; reads go through org.selectors

    @extend_schema(tags=["staff"], summary="Staff", responses={200: s.StaffSerializer(many=True), **problems(403)})
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(staff_list(self.actor))
        return self.get_paginated_response(s.StaffSerializer(page, many=True).data)

    @extend_schema(tags=["staff"], summary="A staff member", responses={200: s.StaffSerializer, **problems(403, 404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.StaffSerializer(staff_get(self.actor, pk)).data)


class MeView(ActorMixin, APIView):
    """Who am I: position, permissions, the stores I may see and the store the API acts from."""

    @extend_schema(tags=["me"], summary="Who am I", responses={200: s.MeSerializer, **problems(404)})
    def get(self, request: Request) -> Response:
        actor = self.actor
        me = {
            "staff": actor.staff,
            "organisation": actor.organisation,
            "store": actor.store,
            "stores": list(stores_visible(actor).order_by("id")),
            "permissions_sorted": sorted(actor.staff.perms if actor.staff is not None else ()),
        }
        return Response(s.MeSerializer(me).data)
