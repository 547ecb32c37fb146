"""API endpoints (v1): packages (计次卡/套餐/时间卡). Routes are collected in ``urlpatterns`` and included by
``meiye.api.urls``.

Package products are the organisation's (``cards.manage`` to write). A member's packages are read through
the member (404 ``member.not_found`` / ``package.not_found`` when not visible). Using sessions (划卡),
refunds, transfers require an ``Idempotency-Key`` (also the operation's own key); freeze and extend take one
optionally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import URLPattern, URLResolver, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from meiye.api import serializers_packages as s
from meiye.api.idempotency import IDEMPOTENCY_HEADER, idempotent
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.catalog.models import Category
from meiye.core.errors import ValidationFailed
from meiye.core.money import money_from_api
from meiye.loyalty.selectors import local_today
from meiye.members.selectors import member_get
from meiye.packages.models import MemberPackage
from meiye.packages.selectors import (
    member_package_get,
    member_packages,
    package_product_get,
    package_products,
    package_refund_preview,
)
from meiye.packages.services import (
    ProductItemInput,
    package_extend,
    package_freeze,
    package_product_save,
    package_quick_use,
    package_refund,
    package_transfer,
    package_unfreeze,
)

TAG = "packages"


def _package(package: MemberPackage) -> dict[str, Any]:
    return s.as_dict(s.MemberPackageSerializer(package))


def _save_product(view: ActorMixin, request: Request) -> Any:
    form = s.PackageProductRequestSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    category = None
    if data["category_id"] is not None:
        category = Category.objects.filter(organisation=view.actor.organisation, pk=data["category_id"]).first()
        if category is None:
            raise ValidationFailed(
                "package.invalid_category", zh="分类：找不到。", en="category_id: not found.", field="category_id"
            )
    return package_product_save(
        actor=view.actor,
        code=data["code"],
        name=data["name"],
        price=money_from_api(data["price"], field="price"),
        kind=data["kind"],
        category=category,
        refund_formula=data["refund_formula"],
        cooling_off_days=data["cooling_off_days"],
        transferable=data["transferable"],
        is_active=data["is_active"],
        items=[
            ProductItemInput(
                service_id=line["service_id"],
                count=line["count"],
                validity_value=line["validity_value"],
                validity_unit=line["validity_unit"],
                valid_from=line["valid_from"],
                daily_limit=line["daily_limit"],
                min_days_between=line["min_days_between"],
            )
            for line in data["items"]
        ],
    )


class PackageProductsView(ActorMixin, APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG],
        summary="Package products (计次卡/套餐/时间卡)",
        operation_id="v1_package_products_list",
        parameters=[OpenApiParameter("active", bool, description="Only products on sale.")],
        responses={200: s.PackageProductSerializer(many=True), **problems(403)},
    )
    def get(self, request: Request) -> Response:
        active = (request.query_params.get("active") or "").lower() in ("1", "true", "yes")
        return Response(s.PackageProductSerializer(package_products(self.actor, active_only=active), many=True).data)

    @extend_schema(
        tags=[TAG],
        summary="Create or update (by code) a package product and its catalogue item",
        description="The catalogue item (kind `package`) gives the name, price and category, so a bill line sells "
        "it. `items` replaces the product's services; packages already sold keep their own terms. Needs "
        "`cards.manage`.",
        request=s.PackageProductRequestSerializer,
        responses={201: s.PackageProductSerializer, **problems(400, 403, 409)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        product = _save_product(self, request)
        product = package_product_get(self.actor, product.pk)
        return Response(s.PackageProductSerializer(product).data, status=status.HTTP_201_CREATED)


class PackageProductView(ActorMixin, APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG], summary="A package product", responses={200: s.PackageProductSerializer, **problems(404)}
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.PackageProductSerializer(package_product_get(self.actor, pk)).data)

    @extend_schema(
        tags=[TAG],
        summary="Update a package product (deactivate with is_active false)",
        request=s.PackageProductRequestSerializer,
        responses={200: s.PackageProductSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def put(self, request: Request, pk: int) -> Response:
        current = package_product_get(self.actor, pk)
        sent = request.data if isinstance(request.data, dict) else {}
        if sent.get("code") != current.item.code:
            raise ValidationFailed(
                "package.code_mismatch",
                zh="编码：不能修改套餐编码。",
                en="code: a package product's code cannot change.",
                field="code",
            )
        product = _save_product(self, request)
        return Response(s.PackageProductSerializer(package_product_get(self.actor, product.pk)).data)


class MemberPackagesView(ActorMixin, APIView):
    @extend_schema(
        tags=[TAG],
        summary="A member's packages with their items, sessions left and validity",
        parameters=[OpenApiParameter("open", bool, description="Only active and frozen packages.")],
        responses={200: s.MemberPackageSerializer(many=True), **problems(404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        member = member_get(self.actor, pk)
        only_open = (request.query_params.get("open") or "").lower() in ("1", "true", "yes")
        found = member_packages(self.actor, member, include_closed=not only_open)
        return Response(s.MemberPackageSerializer(found, many=True).data)


class MemberPackageView(ActorMixin, APIView):
    @extend_schema(
        tags=[TAG], summary="A member's package", responses={200: s.MemberPackageSerializer, **problems(404)}
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(_package(member_package_get(self.actor, pk)))


class SessionUseView(ActorMixin, APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG],
        summary="Use sessions of a package item (划卡) outside a bill",
        description="Today's use in the acting store, recording the beautician (`performed_by_id`). Refusals: "
        "`package.expired`, `package.frozen`, `package.insufficient_sessions`, `package.daily_limit`, "
        "`package.too_soon`, `package.not_found`. Needs `sales.checkout`; requires `Idempotency-Key`.",
        request=s.PackageSessionUseRequestSerializer,
        responses={201: s.PackageSessionUseSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int) -> Response:
        package = member_package_get(self.actor, pk)
        form = s.PackageSessionUseRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if not package.items.filter(pk=data["member_item_id"]).exists():
            raise ValidationFailed(
                "package.not_found",
                zh="次卡项目：不属于这张次卡。",
                en="member_item_id: not an item of this package.",
                field="member_item_id",
            )
        use = package_quick_use(
            actor=self.actor,
            member=package.member,
            member_item_id=data["member_item_id"],
            sessions=data["sessions"],
            performed_by_id=data["performed_by_id"],
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        )
        return Response(s.PackageSessionUseSerializer(use).data, status=status.HTTP_201_CREATED)


class RefundPreviewView(ActorMixin, APIView):
    @extend_schema(
        tags=[TAG],
        summary="Preview a package refund: the amount and the formula, item by item",
        description="Nothing is written. Within the cooling-off days and unused: the full price; otherwise "
        "the product's formula (`unit_price`: share − floor(share × used / count); `list_price`: share − used × "
        "list price), each item floored at 0, expired items 0.",
        responses={200: s.PackageRefundPreviewSerializer, **problems(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        package = member_package_get(self.actor, pk)
        quote = package_refund_preview(self.actor, package, local_today(self.actor.store))
        return Response(s.PackageRefundPreviewSerializer(quote).data)


class RefundView(ActorMixin, APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG],
        summary="Refund a package",
        description="Pays the preview's amount out by `tender`, returns the sessions left, marks it refunded. "
        "Needs `prepaid.refund`; requires `Idempotency-Key`.",
        request=s.PackageRefundRequestSerializer,
        responses={200: s.MemberPackageSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int) -> Response:
        form = s.PackageRefundRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        package = package_refund(
            actor=self.actor,
            member_package=member_package_get(self.actor, pk),
            tender=form.validated_data["tender"],
            reason=form.validated_data["reason"],
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        )
        return Response(_package(member_package_get(self.actor, package.pk)))


def _with_reason(view: ActorMixin, request: Request, pk: int, service: Callable[..., MemberPackage]) -> Response:
    """Freeze / unfreeze: the member's package, a reason, the package as it is after."""
    form = s.PackageReasonSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    package = service(
        actor=view.actor, member_package=member_package_get(view.actor, pk), reason=form.validated_data["reason"]
    )
    return Response(_package(member_package_get(view.actor, package.pk)))


class FreezeView(ActorMixin, APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG],
        summary="Freeze a package (no sessions, no expiry until unfrozen)",
        description="Needs `packages.adjust` and a reason; audited.",
        request=s.PackageReasonSerializer,
        responses={200: s.MemberPackageSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        return _with_reason(self, request, pk, package_freeze)


class UnfreezeView(ActorMixin, APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG],
        summary="Unfreeze a package; the days it was frozen are added to its validity",
        description="Needs `packages.adjust`; audited.",
        request=s.PackageReasonSerializer,
        responses={200: s.MemberPackageSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        return _with_reason(self, request, pk, package_unfreeze)


class ExtendView(ActorMixin, APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG],
        summary="Extend a package's validity by a number of days",
        description="Every item not yet expired. Needs `packages.adjust` and a reason; audited.",
        request=s.PackageExtendRequestSerializer,
        responses={200: s.MemberPackageSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        form = s.PackageExtendRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        package = package_extend(
            actor=self.actor,
            member_package=member_package_get(self.actor, pk),
            days=form.validated_data["days"],
            reason=form.validated_data["reason"],
        )
        return Response(_package(member_package_get(self.actor, package.pk)))


class TransferView(ActorMixin, APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        tags=[TAG],
        summary="Transfer what is left of a transferable package to another member",
        description="Returns the new package. `package.not_transferable` unless the product allows it. Needs "
        "`prepaid.refund`; requires `Idempotency-Key`.",
        request=s.PackageTransferRequestSerializer,
        responses={201: s.MemberPackageSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent(required=True)
    def post(self, request: Request, pk: int) -> Response:
        form = s.PackageTransferRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        new = package_transfer(
            actor=self.actor,
            member_package=member_package_get(self.actor, pk),
            to_member=member_get(self.actor, form.validated_data["to_member_id"]),
            reason=form.validated_data["reason"],
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
        )
        return Response(_package(member_package_get(self.actor, new.pk)), status=status.HTTP_201_CREATED)


urlpatterns: list[URLPattern | URLResolver] = [
    path("package-products/", PackageProductsView.as_view(), name="package-products"),
    path("package-products/<int:pk>/", PackageProductView.as_view(), name="package-product"),
    path("members/<int:pk>/packages/", MemberPackagesView.as_view(), name="member-packages"),
    path("member-packages/<int:pk>/", MemberPackageView.as_view(), name="member-package"),
    path("member-packages/<int:pk>/use/", SessionUseView.as_view(), name="member-package-use"),
    path("member-packages/<int:pk>/refund/preview/", RefundPreviewView.as_view(), name="member-package-refund-preview"),
    path("member-packages/<int:pk>/refund/", RefundView.as_view(), name="member-package-refund"),
    path("member-packages/<int:pk>/freeze/", FreezeView.as_view(), name="member-package-freeze"),
    path("member-packages/<int:pk>/unfreeze/", UnfreezeView.as_view(), name="member-package-unfreeze"),
    path("member-packages/<int:pk>/extend/", ExtendView.as_view(), name="member-package-extend"),
    path("member-packages/<int:pk>/transfer/", TransferView.as_view(), name="member-package-transfer"),
]
