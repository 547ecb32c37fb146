"""Bills (消费单): open, add, change and remove lines, pay, one-shot checkout, refund, void, receipt; the daily close.

Every call that moves money — checkout, one-shot checkout, refund — and void requires an ``Idempotency-Key``
(400 ``idempotency.key_required`` without one). The same key is passed to the sales service, so a retry is
answered once by the HTTP layer (the stored response) and the bill is charged once by the service even when
the key was first used elsewhere (the front desk): the same key with another request is 409
``idempotency.key_reused``.

A manager's approval PIN (``approval_pin``, S-20) is taken out of the request body before the idempotency
fingerprint is computed, as the service leaves it out of its own request hash: a hash of a short PIN is
easy to reverse, and a retry with the same key need not repeat it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from django.db.models import prefetch_related_objects
from django.http import QueryDict
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from meiye.api import serializers_sales as s
from meiye.api.fields import parse_optional_amount
from meiye.api.idempotency import IDEMPOTENCY_HEADER, TYPED_PIN_DETACHED, idempotent
from meiye.api.params import choice_param, date_param
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.catalog.selectors import item_get
from meiye.core.errors import ValidationFailed, not_found
from meiye.members.models import Member
from meiye.members.selectors import member_get
from meiye.org.context import Actor
from meiye.org.models import Staff, Store
from meiye.org.selectors import colleague_get, store_get
from meiye.sales.models import Bill, BillStatus, Refund
from meiye.sales.selectors import bill_get, bill_rows_in_memory, bills_list, daily_close, receipt
from meiye.sales.services import (
    CLEAR,
    Clear,
    bill_add_line,
    bill_checkout,
    bill_complete,
    bill_line_update,
    bill_open,
    bill_refund,
    bill_remove_line,
    bill_void,
    checkout_store_get,
)

TAG = "bills"
Handler = TypeVar("Handler", bound=Callable[..., Response])
ValueT = TypeVar("ValueT")

TOP_LEVEL = -1  # the key of a PIN sent beside the line fields (add a line), not inside ``lines[i]``


def detach_approval_pins(handler: Handler) -> Handler:
    """Take every ``approval_pin`` out of the JSON body into ``view.approval_pins`` before the idempotency
    layer fingerprints the request (put this decorator above ``@idempotent``)."""

    @functools.wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        pins: dict[int, str] = {}
        data: Any = request.data
        if isinstance(data, dict) and not isinstance(data, QueryDict):
            if "approval_pin" in data:
                pins[TOP_LEVEL] = _pin_text(data.pop("approval_pin"))
            lines = data.get("lines")
            for index, line in enumerate(lines if isinstance(lines, list) else []):
                if isinstance(line, dict) and "approval_pin" in line:
                    pins[index] = _pin_text(line.pop("approval_pin"))
        view.approval_pins = pins
        if pins:
            setattr(request, TYPED_PIN_DETACHED, True)
        return handler(view, request, *args, **kwargs)

    return cast(Handler, wrapper)


def _pin_text(value: Any) -> str:
    """A PIN sent as a string or a number; anything else is no PIN (the approval then fails)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value)


def _or_clear(data: Mapping[str, Any], name: str, value: ValueT | None) -> ValueT | Clear | None:
    """A PATCH field: absent keeps the line's value (None), null takes it off (CLEAR), else the new value."""
    if name not in data:
        return None
    return CLEAR if data[name] is None else value


def _key(request: Request) -> str:
    """The Idempotency-Key header (present: the handlers below require it), passed on to the service."""
    return request.headers.get(IDEMPOTENCY_HEADER, "")


def _member(actor: Actor, member_id: int | None) -> Member | None:
    return member_get(actor, member_id) if member_id is not None else None


def _staff(actor: Actor, staff_id: int | None, field: str) -> Staff | None:
    """A colleague named on a line (beautician, seller, approver): an active staff member of the organisation."""
    if staff_id is None:
        return None
    found = colleague_get(actor, staff_id)
    if found is None:
        raise ValidationFailed(
            "sales.invalid_staff",
            zh=f"{field}：不是本机构的在职员工。",
            en=f"{field}: not an active staff member of this organisation.",
            field=field,
        )
    return found


def _shaped(actor: Actor, bill: Bill) -> dict[str, Any]:
    """The bill as it is now, with lines, tenders and refunds: straight from memory when the service has
    just completed it in this request, else read again through the scoped selector."""
    if bill_rows_in_memory(bill):
        data: dict[str, Any] = s.BillSerializer(bill).data
        return data
    fresh = bill_get(actor, bill.pk)
    prefetch_related_objects(
        [fresh], "lines__approved_by", "tenders", "refunds__lines", "refunds__tenders__tender", "refunds__created_by"
    )
    shaped: dict[str, Any] = s.BillSerializer(fresh).data
    return shaped


def _shaped_refund(refund: Refund) -> dict[str, Any]:
    prefetch_related_objects([refund], "bill", "lines", "tenders__tender", "created_by")
    data: dict[str, Any] = s.RefundSerializer(refund).data
    return data


def _acting_store(actor: Actor) -> Store:
    if actor.store is None:
        raise ValidationFailed(
            "sales.store_required",
            zh="请先选择当前门店（X-Store-Id）。",
            en="Choose the current store first (X-Store-Id).",
            field="store",
        )
    return actor.store


def _member_id_hint(request: Request) -> int | None:
    """The checkout body's ``member_id`` if it is a plausible id, else None (the body is validated later)."""
    try:
        data = request.data
    except APIException:  # unreadable: the view answers that
        return None
    value = data.get("member_id") if isinstance(data, dict) else None
    return value if type(value) is int and 0 < value < 2**63 else None


class BillViewSet(ActorMixin, viewsets.GenericViewSet):
    """Bills of the stores you may see; a bill of another store is 404 `sales.bill_not_found`."""

    queryset = Bill.objects.none()  # only for the schema; reads go through sales.selectors
    lookup_value_regex = r"\d+"
    parser_classes = [JSONParser]
    approval_pins: dict[int, str] = {}  # replaced per request by detach_approval_pins, never mutated

    def _bill(self, pk: str) -> Bill:
        return bill_get(self.actor, pk)

    def store_reader(self) -> Callable[[Actor, str], Store]:
        # The one-shot checkout reads its store's rules with the acting store, and the tier its member holds:
        # one query, not three. The member id is only a hint here; the checkout reads and scopes her itself.
        if self.action != "checkout_now":
            return super().store_reader()
        member_id = _member_id_hint(self.request)
        return lambda actor, store_id: checkout_store_get(actor, store_id, member_id)

    @extend_schema(
        tags=[TAG],
        summary="Bills of the acting store",
        description="Newest first, by store-local day (completion time; opening time while not completed).",
        parameters=[
            OpenApiParameter("date_from", OpenApiTypes.DATE, description="YYYY-MM-DD, store-local, inclusive."),
            OpenApiParameter("date_to", OpenApiTypes.DATE, description="YYYY-MM-DD, store-local, inclusive."),
            OpenApiParameter("status", str, enum=BillStatus.values),
        ],
        responses={200: s.BillSummarySerializer(many=True), **problems(400, 403)},
    )
    def list(self, request: Request) -> Response:
        found = bills_list(
            self.actor,
            _acting_store(self.actor),
            date_from=date_param(request, "date_from"),
            date_to=date_param(request, "date_to"),
            status=choice_param(request, "status", BillStatus.values) or None,
        )
        page = self.paginate_queryset(found)
        return self.get_paginated_response(s.BillSummarySerializer(page, many=True).data)

    @extend_schema(
        tags=[TAG],
        summary="A bill with its lines, price steps, tenders and refunds",
        responses={200: s.BillSerializer, **problems(403, 404)},
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(_shaped(self.actor, self._bill(pk)))

    @extend_schema(
        tags=[TAG],
        summary="Open a bill in the acting store",
        request=s.BillOpenSerializer,
        responses={201: s.BillSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        form = s.BillOpenSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        member = _member(self.actor, form.validated_data.get("member_id"))
        bill = bill_open(actor=self.actor, member=member)
        return Response(_shaped(self.actor, bill), status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Add an item to an open bill",
        description="Priced by the store's pipeline; `unit_price` sets a manual price (S-20: below 95% of the "
        "member price needs `approver_id` and `approval_pin`, else 400 `pricing.approval_required`). "
        "Answers the whole bill.",
        request=s.AddLineSerializer,
        responses={201: s.BillSerializer, **problems(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    @detach_approval_pins
    @idempotent
    def lines(self, request: Request, pk: str) -> Response:
        bill = self._bill(pk)
        form = s.AddLineSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        line = s.line_input(data, where="", approval_pin=self.approval_pins.get(TOP_LEVEL, ""))
        bill_add_line(
            actor=self.actor,
            bill=bill,
            item=item_get(self.actor, line.item_id),
            quantity=line.quantity,
            performed_by=_staff(self.actor, line.performed_by_id, "performed_by_id"),
            sold_by=_staff(self.actor, line.sold_by_id, "sold_by_id"),
            unit_price=line.unit_price,
            approver=_staff(self.actor, line.approver_id, "approver_id"),
            approval_pin=line.approval_pin,
        )
        return Response(_shaped(self.actor, bill), status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Take a line off an open bill",
        parameters=[OpenApiParameter("line_id", int, OpenApiParameter.PATH)],
        request=None,
        responses={200: s.BillSerializer, **problems(403, 404, 409)},
    )
    @action(detail=True, methods=["delete"], url_path=r"lines/(?P<line_id>\d+)")
    @idempotent
    def remove_line(self, request: Request, pk: str, line_id: str) -> Response:
        bill = self._bill(pk)
        line = bill.lines.filter(pk=int(line_id)).first()
        if line is None:
            raise not_found("sales.line_not_found", "消费单明细", "Bill line")
        bill_remove_line(actor=self.actor, bill=bill, line=line)
        return Response(_shaped(self.actor, bill))

    @extend_schema(
        tags=[TAG],
        summary="Change a line of an open bill in place",
        description="Quantity, performer, seller, manual price. A field left out keeps its value; `null` takes "
        "the performer, the seller or the manual price off. The line keeps its id and place and is priced "
        "again by the store's pipeline. A manual price a manager already approved stays approved (no PIN "
        "again) unless it is set lower; lower, or below the floor for the first time, needs `approver_id` and "
        "`approval_pin` (400 `pricing.approval_required`). Answers the whole bill.",
        parameters=[OpenApiParameter("line_id", int, OpenApiParameter.PATH)],
        request=s.LineUpdateSerializer,
        responses={200: s.BillSerializer, **problems(400, 403, 404, 409)},
    )
    @remove_line.mapping.patch
    @detach_approval_pins
    @idempotent
    def update_line(self, request: Request, pk: str, line_id: str) -> Response:
        bill = self._bill(pk)
        line = bill.lines.filter(pk=int(line_id)).first()
        if line is None:
            raise not_found("sales.line_not_found", "消费单明细", "Bill line")
        form = s.LineUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        unit_price = parse_optional_amount(data, "unit_price", field="unit_price")
        bill_line_update(
            actor=self.actor,
            bill=bill,
            line=line,
            quantity=data.get("quantity"),
            unit_price=_or_clear(data, "unit_price", unit_price),
            performed_by=_or_clear(
                data, "performed_by_id", _staff(self.actor, data.get("performed_by_id"), "performed_by_id")
            ),
            sold_by=_or_clear(data, "sold_by_id", _staff(self.actor, data.get("sold_by_id"), "sold_by_id")),
            approver=_staff(self.actor, data.get("approver_id"), "approver_id"),
            approval_pin=self.approval_pins.get(TOP_LEVEL, ""),
        )
        return Response(_shaped(self.actor, bill))

    @extend_schema(
        tags=[TAG],
        summary="Pay an open bill",
        description="The tenders must add up to the payable amount (400 `sales.tender_mismatch`). Stored value "
        "is split into principal and bonus by the store's rule; points are earned on real money only. "
        "Requires `Idempotency-Key`.",
        request=s.CheckoutSerializer,
        responses={200: s.BillSerializer, **problems(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    @idempotent(required=True)
    def checkout(self, request: Request, pk: str) -> Response:
        bill = self._bill(pk)
        form = s.CheckoutSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        paid = bill_complete(
            actor=self.actor,
            bill=bill,
            tenders=form.to_tenders(),
            idempotency_key=_key(request),
            coupon_ids=form.validated_data["coupon_ids"],
        )
        return Response(_shaped(self.actor, paid))

    @extend_schema(
        tags=[TAG],
        summary="One-shot checkout: open, price and pay a bill in one call",
        operation_id="v1_bills_checkout_one_shot",
        description="Lines and tenders in one request, one transaction. The same `Idempotency-Key` and request "
        "answers the first bill again and charges nothing more (S-23); the same key with another request is "
        "409 `idempotency.key_reused`. Requires `Idempotency-Key`.",
        request=s.OneShotCheckoutSerializer,
        responses={201: s.BillSerializer, **problems(400, 403, 404, 409)},
    )
    @action(detail=False, methods=["post"], url_path="checkout")
    @detach_approval_pins
    @idempotent(required=True, look_up_first=False)
    def checkout_now(self, request: Request) -> Response:
        # A plainly valid body skips DRF's per-request copy of every field; anything else is validated (and
        # refused) by OneShotCheckoutSerializer exactly as before.
        form = s.one_shot_checkout_input(request.data)
        member_id = form.validated_data.get("member_id")
        bill = bill_checkout(
            actor=self.actor,
            # Only the id: bill_checkout reads and scopes the member itself, inside its transaction (member_get:
            # 404 member.not_found, 409 sales.member_inactive), so reading her here too would only cost queries.
            member=Member(pk=member_id) if member_id is not None else None,
            lines=form.to_lines(self.approval_pins),
            tenders=form.to_tenders(),
            idempotency_key=_key(request),
            coupon_ids=form.validated_data["coupon_ids"],
            key_unused=True,  # @idempotent answers a repeat from its record (it looks it up after any failure)
            savepoint=False,  # …and rolls it back whole if this raises
        )
        return Response(_shaped(self.actor, bill), status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Refund a completed bill, in full or by line",
        description="Without `lines`, everything not yet refunded. Reverses exactly what the bill did for the "
        "part refunded: tenders in proportion, stored value to principal and bonus as charged, offset points "
        "back, earned points and growth taken back. More than is left: 400 `refund.exceeds_paid`. Needs "
        "`sales.refund`; requires `Idempotency-Key`.",
        request=s.RefundRequestSerializer,
        responses={201: s.RefundSerializer, **problems(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    @idempotent(required=True)
    def refund(self, request: Request, pk: str) -> Response:
        bill = self._bill(pk)
        form = s.RefundRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        refund = bill_refund(
            actor=self.actor,
            bill=bill,
            lines=form.to_lines(),
            destination=form.validated_data["destination"],
            reason=form.validated_data["reason"],
            idempotency_key=_key(request),
        )
        return Response(_shaped_refund(refund), status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Void an open bill",
        description="Nothing was paid; a completed bill is refunded instead (409 `sales.bill_not_open`). "
        "Requires `Idempotency-Key`.",
        request=s.VoidSerializer,
        responses={200: s.BillSerializer, **problems(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    @idempotent(required=True)
    def void(self, request: Request, pk: str) -> Response:
        bill = self._bill(pk)
        form = s.VoidSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        bill_void(actor=self.actor, bill=bill, reason=form.validated_data["reason"])
        return Response(_shaped(self.actor, bill))

    @extend_schema(
        tags=[TAG],
        summary="The receipt (小票) data of a bill",
        responses={200: s.ReceiptSerializer, **problems(403, 404)},
    )
    @action(detail=True, methods=["get"])
    def receipt(self, request: Request, pk: str) -> Response:
        return Response(s.ReceiptSerializer(receipt(self.actor, self._bill(pk))).data)


class DailyCloseView(ActorMixin, APIView):
    """The close of the till (日结) of one store and day. Needs `sales.daily_close`."""

    @extend_schema(
        tags=[TAG],
        summary="Daily close of a store",
        parameters=[
            OpenApiParameter(
                "date", OpenApiTypes.DATE, description="YYYY-MM-DD, store-local. Default: today in the store."
            )
        ],
        responses={200: s.DailyCloseSerializer, **problems(400, 403, 404)},
    )
    def get(self, request: Request, store_id: int) -> Response:
        store = store_get(self.actor, store_id)
        day: date = date_param(request, "date") or _today(store)
        return Response(s.DailyCloseSerializer(daily_close(self.actor, store, day)).data)


def _today(store: Store) -> date:
    return timezone.localtime(timezone.now(), ZoneInfo(store.time_zone or "Asia/Shanghai")).date()
